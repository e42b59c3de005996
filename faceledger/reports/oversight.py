"""The oversight report: how search was used in a period, by whom, for what, with what
result, who was affected, and whether the ledger behind it all is whole.

Figures come from the store (requests, results, reviews, the exposure register) and from
the ledger (decisions, ingestion jobs, activity); every table row is plain values, so the
HTML page, the CSV files and the JSON summary are the same numbers in three forms.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, aliased

from faceledger.auth.clock import as_utc, utcnow
from faceledger.auth.roles import Role, require_role
from faceledger.ledger import log
from faceledger.ledger.verify import VerifyReport, verify
from faceledger.reports.signals import DecisionFact, SearchFact, Signal, SignalRules, find_signals
from faceledger.store.models import (
    Exposure,
    LedgerEntry,
    LedgerPayload,
    Review,
    SearchRequest,
    SearchResult,
    User,
)

DECISION_ACTIONS = ("search.approved", "search.denied")
# Outcome columns in this order; any other status found is appended after them.
STATUSES = ("done", "pending", "approved", "denied", "refused", "expired", "purged")

Cell = str | int | float | None


@dataclass(frozen=True)
class Period:
    """[start, end) in UTC: a day given as an end is not included."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("period bounds must carry a time zone")
        if self.end <= self.start:
            raise ValueError("the period must end after it starts")
        # Stored times are UTC; binding other zones would compare wall clocks, not instants.
        object.__setattr__(self, "start", self.start.astimezone(UTC))
        object.__setattr__(self, "end", self.end.astimezone(UTC))

    @classmethod
    def days(cls, first: date, end: date) -> Period:
        """From midnight UTC of `first` up to, not including, midnight UTC of `end`."""
        return cls(datetime.combine(first, time(), UTC), datetime.combine(end, time(), UTC))

    def ledger_bounds(self) -> tuple[str, str]:
        """The bounds as ledger timestamps: UTC ISO strings, which sort as the times do."""
        return (
            self.start.isoformat(timespec="microseconds"),
            self.end.isoformat(timespec="microseconds"),
        )

    def as_dict(self) -> dict[str, str]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat()}


@dataclass(frozen=True)
class Table:
    """One table of the report: a section of the page and one CSV file (`name`.csv)."""

    name: str
    title: str
    columns: tuple[str, ...]
    rows: list[tuple[Cell, ...]]

    def records(self) -> list[dict[str, Cell]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


@dataclass(frozen=True)
class ConfirmedMatch:
    request_id: int
    result_id: int
    collection: str
    face_id: int | None
    score: float
    image_url: str | None
    confirmed_by: tuple[str, ...]


@dataclass(frozen=True)
class Shown:
    """One entry of the exposure register: a face shown to a person."""

    face_id: int | None
    viewer: str
    collection: str


@dataclass(frozen=True)
class IngestJob:
    collection: str
    images: int
    images_with_faces: int
    faces_indexed: int
    skipped: int
    errors: int


@dataclass(frozen=True)
class OversightReport:
    period: Period
    generated_by: str
    searches: list[SearchFact]
    decisions: list[DecisionFact]
    confirmed: list[ConfirmedMatch]
    shown: list[Shown]
    ingestion: list[IngestJob]
    activity: dict[str, int]
    ledger: VerifyReport
    signals: list[Signal]
    rules: SignalRules
    generated_at: datetime = field(default_factory=utcnow)

    def outcomes(self) -> Counter[str]:
        return Counter(search.status for search in self.searches)

    def refusals(self) -> Counter[str]:
        return Counter(s.refusal_code or "unknown" for s in self.searches if s.status == "refused")

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
            "approvals": sum(d.decision == "approved" for d in self.decisions),
            "denials": sum(d.decision == "denied" for d in self.decisions),
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
        rows = [(key, *(counts[key][c] for c in columns)) for key in sorted(counts)]
        return Table(name, f"Searches by {label}", (label, *columns), rows)

    def tables(self) -> list[Table]:
        """Every table, in the order the page shows them."""
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
                sorted(self.refusals().items(), key=lambda item: (-item[1], item[0])),
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
        for name, label, key in (
            ("affected_by_viewer", "viewer", lambda e: e.viewer),
            ("affected_by_collection", "collection", lambda e: e.collection),
        ):
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
        rows = [(name, *(totals[name][c] for c in columns)) for name in sorted(totals)]
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


def _request_id(subject: str | None) -> int | None:
    """The request a ledger subject names ("search:ID"), if any."""
    kind, _, number = (subject or "").partition(":")
    return int(number) if kind == "search" and number.isdigit() else None


def _in_period(period: Period) -> Select[tuple[int]]:
    return select(SearchRequest.id).where(
        SearchRequest.created_at >= period.start, SearchRequest.created_at < period.end
    )


def _entries_in(period: Period) -> Select[Any]:
    start, end = period.ledger_bounds()
    return select(LedgerEntry).where(LedgerEntry.created_at >= start, LedgerEntry.created_at < end)


def _load_searches(session: Session, period: Period) -> list[SearchFact]:
    results: dict[int, dict[str, int]] = defaultdict(dict)
    counted = (
        select(SearchResult.request_id, SearchResult.collection, func.count())
        .where(SearchResult.request_id.in_(_in_period(period)))
        .group_by(SearchResult.request_id, SearchResult.collection)
    )
    for request_id, collection, count in session.execute(counted):
        results[request_id][collection] = count
    # A request's entries all follow its creation: entries before the period are not its own.
    seqs: dict[int, list[int]] = defaultdict(list)
    cited = select(LedgerEntry.seq, LedgerEntry.subject).where(
        LedgerEntry.subject.like("search:%"), LedgerEntry.created_at >= period.ledger_bounds()[0]
    )
    for seq, subject in session.execute(cited.order_by(LedgerEntry.seq)):
        request_id = _request_id(subject)
        if request_id is not None:
            seqs[request_id].append(seq)
    rows = session.execute(
        select(SearchRequest, User.name)
        .join(User, User.id == SearchRequest.requester_id)
        .where(SearchRequest.id.in_(_in_period(period)))
        .order_by(SearchRequest.id)
    )
    return [
        SearchFact(
            request_id=request.id,
            requester=name,
            created_at=as_utc(request.created_at),
            status=request.status,
            refusal_code=request.refusal_code,
            purpose=request.purpose,
            case_ref=request.case_ref,
            collections=tuple(request.collections or ()),
            probe_hash=request.probe_hash,
            embedding=(
                np.frombuffer(request.probe_embedding, dtype="<f4")
                if request.probe_embedding
                else None
            ),
            results=results.get(request.id, {}),
            seqs=tuple(seqs.get(request.id, ())),
        )
        for request, name in rows
    ]


def _load_decisions(session: Session, period: Period) -> list[DecisionFact]:
    """Decisions taken in the period (on requests that may be older), timed by the store's
    clock, each with the ledger entry that records it."""
    requester, approver = aliased(User), aliased(User)
    rows = session.execute(
        select(SearchRequest, requester.name, approver.name)
        .join(requester, requester.id == SearchRequest.requester_id)
        .join(approver, approver.id == SearchRequest.decided_by)
        .where(SearchRequest.decided_at >= period.start, SearchRequest.decided_at < period.end)
        .order_by(SearchRequest.decided_at, SearchRequest.id)
    ).all()
    entries = session.execute(
        select(LedgerEntry.subject, LedgerEntry.seq).where(
            LedgerEntry.action.in_(DECISION_ACTIONS),
            LedgerEntry.subject.in_([f"search:{request.id}" for request, _, _ in rows]),
        )
    )
    seqs = {_request_id(subject): seq for subject, seq in entries}
    decisions = []
    for request, requester_name, approver_name in rows:
        decided_at = as_utc(request.decided_at)
        decisions.append(
            DecisionFact(
                request_id=request.id,
                decision="denied" if request.status == "denied" else "approved",
                approver=approver_name,
                requester=requester_name,
                decided_at=decided_at,
                waited_seconds=(decided_at - as_utc(request.created_at)).total_seconds(),
                seq=seqs.get(request.id),
            )
        )
    return decisions


def _load_confirmed(session: Session, period: Period) -> list[ConfirmedMatch]:
    """Results of the period's searches confirmed by the searcher and someone else."""
    rows = session.execute(
        select(SearchResult, SearchRequest.requester_id, Review.user_id, User.name)
        .join(SearchRequest, SearchRequest.id == SearchResult.request_id)
        .join(Review, Review.result_id == SearchResult.id)
        .join(User, User.id == Review.user_id)
        .where(SearchResult.request_id.in_(_in_period(period)), Review.decision == "confirm")
        .order_by(SearchResult.request_id, SearchResult.rank, User.name)
    )
    confirmers: dict[int, dict[int, str]] = defaultdict(dict)
    found: dict[int, tuple[SearchResult, int]] = {}
    for result, requester_id, user_id, name in rows:
        found[result.id] = (result, requester_id)
        confirmers[result.id][user_id] = name
    return [
        ConfirmedMatch(
            request_id=result.request_id,
            result_id=result.id,
            collection=result.collection,
            face_id=result.face_id,
            score=result.score,
            image_url=result.image_url,
            confirmed_by=tuple(confirmers[result.id].values()),
        )
        for result, requester_id in found.values()
        if requester_id in confirmers[result.id] and len(confirmers[result.id]) >= 2
    ]


def _load_shown(session: Session, period: Period) -> list[Shown]:
    rows = session.execute(
        select(Exposure.face_id, User.name, SearchResult.collection)
        .join(User, User.id == Exposure.shown_to)
        .join(SearchResult, SearchResult.id == Exposure.result_id)
        .where(Exposure.shown_at >= period.start, Exposure.shown_at < period.end)
        .order_by(Exposure.id)
    )
    return [Shown(face_id, viewer, collection) for face_id, viewer, collection in rows]


def _count(value: Any) -> int:
    """A payload figure: a number, or a list or mapping of items (errors, skips by reason)."""
    if isinstance(value, dict):
        return sum(_count(item) for item in value.values())
    if isinstance(value, list):
        return len(value)
    return int(value or 0)


def _load_ingestion(session: Session, period: Period) -> list[IngestJob]:
    """Finished ingestion jobs, from their ledger entries (an erased payload counts as a job)."""
    rows = session.execute(
        _entries_in(period)
        .with_only_columns(LedgerEntry.subject, LedgerPayload.body)
        .outerjoin(LedgerPayload, LedgerPayload.seq == LedgerEntry.seq)
        .where(LedgerEntry.action == "ingest.finished")
        .order_by(LedgerEntry.seq)
    )
    jobs = []
    for subject, body in rows:
        payload = json.loads(body) if body else {}
        jobs.append(
            IngestJob(
                collection=str(payload.get("collection") or subject or "(unknown)"),
                images=_count(payload.get("images")),
                images_with_faces=_count(payload.get("images_with_faces")),
                faces_indexed=_count(payload.get("faces_indexed")),
                skipped=_count(payload.get("skipped")),
                errors=_count(payload.get("errors")),
            )
        )
    return jobs


def _load_activity(session: Session, period: Period) -> dict[str, int]:
    counted = (
        _entries_in(period)
        .with_only_columns(LedgerEntry.action, func.count())
        .group_by(LedgerEntry.action)
    )
    return {action: count for action, count in session.execute(counted)}


def gather(
    session: Session,
    period: Period,
    *,
    generated_by: str,
    public_key: Ed25519PublicKey | None,
    rules: SignalRules | None = None,
) -> OversightReport:
    """Read everything the report shows (nothing is written)."""
    rules = rules or SignalRules()
    searches = _load_searches(session, period)
    decisions = _load_decisions(session, period)
    return OversightReport(
        period=period,
        generated_by=generated_by,
        searches=searches,
        decisions=decisions,
        confirmed=_load_confirmed(session, period),
        shown=_load_shown(session, period),
        ingestion=_load_ingestion(session, period),
        activity=_load_activity(session, period),
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
    report = gather(session, period, generated_by=actor.name, public_key=public_key, rules=rules)
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
