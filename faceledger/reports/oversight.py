"""The oversight report: how search was used in a period, by whom, for what, with what
result, who was affected, and whether the ledger behind it all is whole.

The records (read by `records`) are aggregated into tables of plain values, so the HTML
page, the CSV files and the JSON summary are the same numbers in three forms.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.orm import Session

from faceledger.auth.clock import utcnow
from faceledger.auth.roles import Role, require_role
from faceledger.ledger import log
from faceledger.ledger.verify import VerifyReport, verify
from faceledger.reports.records import (
    ConfirmedMatch,
    DecisionFact,
    IngestVolume,
    Period,
    SearchFact,
    Shown,
    load_activity,
    load_confirmed,
    load_decisions,
    load_ingestion,
    load_searches,
    load_shown,
)
from faceledger.reports.signals import Signal, SignalRules, find_signals
from faceledger.search.outcome import APPROVED, DENIED, DONE, EXPIRED, PENDING, PURGED, REFUSED
from faceledger.store.models import User

# Outcome columns in this order; any other status found is appended after them.
STATUSES = (DONE, PENDING, APPROVED, DENIED, REFUSED, EXPIRED, PURGED)

Cell = str | int | float | None


@dataclass(frozen=True)
class Table:
    """One table of the report: a section of the page and one CSV file (`name`.csv)."""

    name: str
    title: str
    columns: tuple[str, ...]
    rows: Sequence[tuple[Cell, ...]]

    def records(self) -> list[dict[str, Cell]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


@dataclass(frozen=True)
class OversightReport:
    period: Period
    generated_by: str
    searches: list[SearchFact]
    decisions: list[DecisionFact]
    confirmed: list[ConfirmedMatch]
    shown: list[Shown]
    ingestion: list[IngestVolume]
    activity: dict[str, int]
    ledger: VerifyReport
    signals: list[Signal]
    rules: SignalRules
    generated_at: datetime = field(default_factory=utcnow)

    def outcomes(self) -> Counter[str]:
        return Counter(search.status for search in self.searches)

    def refusals(self) -> Counter[str]:
        return Counter(s.refusal_code or "unknown" for s in self.searches if s.status == REFUSED)

    def people_affected(self) -> int:
        """Distinct faces in the exposure register: each is a person shown to someone."""
        return len({entry.face_id for entry in self.shown if entry.face_id is not None})

    def summary(self) -> dict[str, Any]:
        """The figures that answer 'how often, by whom, with what result, who was affected'."""
        outcomes = self.outcomes()
        return {
            "searches": len(self.searches),
            "users_who_searched": len({search.requester for search in self.searches}),
            **{status: outcomes.get(status, 0) for status in self.statuses()},
            "results_shown": sum(search.result_count for search in self.searches),
            # Looking again at results is use too ("page visits" beside searches).
            "result_views": self.activity.get("results.viewed", 0),
            "confirmed_matches": len(self.confirmed),
            "people_affected": self.people_affected(),
            "approvals": sum(d.decision == APPROVED for d in self.decisions),
            "denials": sum(d.decision == DENIED for d in self.decisions),
            "faces_indexed": sum(job.faces_indexed for job in self.ingestion),
            "signals": len(self.signals),
            "ledger_ok": self.ledger.ok,
        }

    def delays(self) -> dict[str, dict[str, float | int]]:
        """Seconds from request to decision: count, min, median, max, per kind of decision."""
        waits: dict[str, list[float]] = defaultdict(list)
        for decision in self.decisions:
            waits[decision.decision].append(decision.waited_seconds)
        return {
            kind: {
                "count": len(values),
                "min": round(min(values), 1),
                "median": round(statistics.median(values), 1),
                "max": round(max(values), 1),
            }
            for kind, values in sorted(waits.items())
        }

    def statuses(self) -> list[str]:
        present = set(self.outcomes())
        return [s for s in STATUSES if s in present] + sorted(present - set(STATUSES))

    def _crosstab(
        self, name: str, label: str, keys: Callable[[SearchFact], Iterable[tuple[str, int]]]
    ) -> Table:
        """Searches per key with their outcomes and results (a search may have several keys)."""
        statuses = self.statuses()
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        for search in self.searches:
            for key, results in keys(search):
                counts[key].update({"searches": 1, search.status: 1, "results": results})
        columns = ("searches", *statuses, "results")
        rows: list[tuple[Cell, ...]] = [
            (key, *(counts[key][c] for c in columns)) for key in sorted(counts)
        ]
        return Table(name, f"Searches by {label}", (label, *columns), rows)

    def tables(self) -> list[Table]:
        """Every table, in the order the page shows them."""
        refusals = sorted(self.refusals().items(), key=lambda item: (-item[1], item[0]))
        return [
            self._crosstab("by_user", "user", lambda s: [(s.requester, s.result_count)]),
            self._crosstab(
                "by_purpose", "purpose", lambda s: [(s.purpose or "(none)", s.result_count)]
            ),
            self._crosstab(
                "by_collection",
                "collection",
                lambda s: [(name, s.results.get(name, 0)) for name in s.collections],
            ),
            self._crosstab(
                "by_day", "day", lambda s: [(s.created_at.date().isoformat(), s.result_count)]
            ),
            Table(
                "refusals",
                "Refusals by reason",
                ("reason", "refusals"),
                refusals,
            ),
            self._decision_table(),
            Table(
                "approval_delays",
                "Waiting time for a decision (seconds)",
                ("decision", "count", "min", "median", "max"),
                [(kind, *stats.values()) for kind, stats in self.delays().items()],
            ),
            self._confirmed_table(),
            *self._shown_tables(),
            self._ingestion_table(),
            Table(
                "activity",
                "Ledgered actions in the period",
                ("action", "entries"),
                sorted(self.activity.items()),
            ),
            Table(
                "signals",
                "Misuse signals",
                ("kind", "summary", "request_ids", "ledger_seqs"),
                [
                    (s.kind, s.summary, _joined(s.request_ids), _joined(s.seqs))
                    for s in self.signals
                ],
            ),
            self._searches_table(),
        ]

    def _decision_table(self) -> Table:
        return Table(
            "decisions",
            "Approvals and denials",
            ("request_id", "requester", "approver", "decision", "decided_at", "waited_s", "seq"),
            [
                (
                    d.request_id,
                    d.requester,
                    d.approver,
                    d.decision,
                    _when(d.decided_at),
                    round(d.waited_seconds, 1),
                    d.seq,
                )
                for d in self.decisions
            ],
        )

    def _confirmed_table(self) -> Table:
        return Table(
            "confirmed_matches",
            "Confirmed matches (confirmed by the searcher and a second person)",
            ("request_id", "result_id", "collection", "face_id", "score", "confirmed_by", "image"),
            [
                (
                    m.request_id,
                    m.result_id,
                    m.collection,
                    m.face_id,
                    round(m.score, 4),
                    ", ".join(m.confirmed_by),
                    m.image_url,
                )
                for m in self.confirmed
            ],
        )

    def _shown_tables(self) -> list[Table]:
        """The exposure register in the period, by who saw faces and by where they came from."""
        tables = []
        by: tuple[tuple[str, str, Callable[[Shown], str]], ...] = (
            ("affected_by_viewer", "viewer", lambda e: e.viewer),
            ("affected_by_collection", "collection", lambda e: e.collection),
        )
        for name, label, key in by:
            shown: Counter[str] = Counter()
            faces: dict[str, set[int]] = defaultdict(set)
            for entry in self.shown:
                shown[key(entry)] += 1
                if entry.face_id is not None:
                    faces[key(entry)].add(entry.face_id)
            rows = [(k, shown[k], len(faces[k])) for k in sorted(shown)]
            title = f"People affected (faces shown), by {label}"
            tables.append(Table(name, title, (label, "times_shown", "distinct_faces"), rows))
        return tables

    def _ingestion_table(self) -> Table:
        totals: dict[str, Counter[str]] = defaultdict(Counter)
        for job in self.ingestion:
            totals[job.collection].update(
                {
                    "jobs": 1,
                    "images": job.images,
                    "images_with_faces": job.images_with_faces,
                    "faces_indexed": job.faces_indexed,
                    "skipped": job.skipped,
                    "errors": job.errors,
                }
            )
        columns = ("jobs", "images", "images_with_faces", "faces_indexed", "skipped", "errors")
        rows: list[tuple[Cell, ...]] = [
            (name, *(totals[name][c] for c in columns)) for name in sorted(totals)
        ]
        return Table("ingestion", "Ingestion", ("collection", *columns), rows)

    def _searches_table(self) -> Table:
        return Table(
            "searches",
            "Every search request",
            (
                "request_id",
                "created_at",
                "requester",
                "purpose",
                "case_ref",
                "collections",
                "status",
                "refusal_code",
                "results",
                "probe_hash",
                "ledger_seqs",
            ),
            [
                (
                    s.request_id,
                    _when(s.created_at),
                    s.requester,
                    s.purpose,
                    s.case_ref,
                    _joined(s.collections),
                    s.status,
                    s.refusal_code,
                    s.result_count,
                    s.probe_hash,
                    _joined(s.seqs),
                )
                for s in self.searches
            ],
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": self.period.as_dict(),
            "generated_at": self.generated_at.isoformat(),
            "generated_by": self.generated_by,
            "summary": self.summary(),
            "refusals": dict(self.refusals()),
            "delays": self.delays(),
            "ledger": self.ledger.as_dict(),
            "signals": [signal.as_dict() for signal in self.signals],
            "tables": {table.name: table.records() for table in self.tables()},
        }


def _joined(values: Iterable[object]) -> str:
    return " ".join(str(value) for value in values)


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _gather(
    session: Session,
    period: Period,
    *,
    generated_by: str,
    public_key: Ed25519PublicKey | None,
    rules: SignalRules | None = None,
) -> OversightReport:
    """Read everything the report shows (nothing is written)."""
    rules = rules or SignalRules()
    searches = load_searches(session, period)
    decisions = load_decisions(session, period)
    return OversightReport(
        period=period,
        generated_by=generated_by,
        searches=searches,
        decisions=decisions,
        confirmed=load_confirmed(session, period),
        shown=load_shown(session, period),
        ingestion=load_ingestion(session, period),
        activity=load_activity(session, period),
        ledger=verify(session, public_key),
        signals=find_signals(searches, decisions, rules),
        rules=rules,
    )


def oversight_report(
    session: Session,
    actor: User,
    period: Period,
    *,
    public_key: Ed25519PublicKey | None,
    rules: SignalRules | None = None,
) -> OversightReport:
    """The report, for auditors and admins; its making is ledgered (the caller commits)."""
    require_role(actor, Role.AUDITOR, Role.ADMIN)
    report = _gather(session, period, generated_by=actor.name, public_key=public_key, rules=rules)
    summary = report.summary()
    log.append(
        session,
        actor=actor.name,
        action="report.generated",
        subject=f"report:{period.start.date()}..{period.end.date()}",
        payload={
            **period.as_dict(),
            **{key: summary[key] for key in ("searches", "people_affected", "signals")},
            "ledger_ok": report.ledger.ok,
        },
    )
    return report
