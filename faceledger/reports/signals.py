"""Misuse signals: patterns in the use of search that an overseer should look into.

A signal is a prompt for a person, not a finding: each one names the requests and the
ledger entries behind it, and each rule is a stated threshold (`SignalRules`), so the
report can say exactly why something was flagged and a reader can check it.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

import numpy as np

from faceledger.reports.records import DecisionFact, SearchFact
from faceledger.search.outcome import APPROVED

# Rows of similarities compared at once when grouping probes by face (bounds memory).
_BLOCK = 1024


@dataclass(frozen=True)
class SignalRules:
    """The thresholds behind each signal; defaults are conservative starting points."""

    case_subjects: int = 3  # different people searched under one case reference
    peer_factor: float = 3.0  # searches above this multiple of the peers' median...
    peer_min_searches: int = 10  # ...and at least this many
    day_start: int = 7  # working hours [day_start, day_end) in `zone`
    day_end: int = 20
    flag_weekends: bool = True
    zone: tzinfo = UTC
    quick_approval_seconds: float = 30.0
    same_face_threshold: float = 0.9125  # probe similarity at which two probes are one person

    def __post_init__(self) -> None:
        if not 0 <= self.day_start < self.day_end <= 24:
            raise ValueError("working hours need 0 <= day_start < day_end <= 24")


@dataclass(frozen=True)
class Signal:
    kind: str
    summary: str
    request_ids: tuple[int, ...]
    seqs: tuple[int, ...]

    @property
    def title(self) -> str:
        return TITLES[self.kind]

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "title": self.title,
            "summary": self.summary,
            "request_ids": list(self.request_ids),
            "seqs": list(self.seqs),
        }


TITLES = {
    "case_many_subjects": "One case reference used for many people",
    "heavy_user": "Searching far more than peers",
    "unusual_hours": "Searches at unusual hours",
    "quick_approval": "Approvals granted within seconds",
    "face_across_cases": "Same face searched under different cases",
}


def _signal(
    kind: str,
    summary: str,
    searches: Iterable[SearchFact],
    *,
    request_ids: Iterable[int] = (),
    seqs: Iterable[int] = (),
) -> Signal:
    """A signal citing these searches and their ledger entries (plus any given directly)."""
    chosen = list(searches)
    return Signal(
        kind=kind,
        summary=summary,
        request_ids=tuple(sorted({s.request_id for s in chosen} | set(request_ids))),
        seqs=tuple(sorted({seq for s in chosen for seq in s.seqs} | set(seqs))),
    )


def _many(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def _names(searches: Iterable[SearchFact]) -> str:
    return ", ".join(sorted({search.requester for search in searches}))


def subjects(searches: list[SearchFact], threshold: float) -> dict[int, int]:
    """Request id -> subject number: probes are one person when they have the same hash or
    their embeddings are at or above `threshold` (linked transitively)."""
    parent = list(range(len(searches)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[str, int] = {}
    for i, search in enumerate(searches):
        parent[root(i)] = root(first.setdefault(search.probe_hash, i))
    embedded = [(i, search.embedding) for i, search in enumerate(searches)]
    known = [(i, embedding) for i, embedding in embedded if embedding is not None]
    placed = [i for i, _ in known]
    if placed:
        vectors = np.stack([embedding for _, embedding in known]).astype(np.float32)
        for start in range(0, len(placed), _BLOCK):
            close = vectors[start : start + _BLOCK] @ vectors.T >= threshold
            for a, b in zip(*np.nonzero(close), strict=True):
                parent[root(placed[start + int(a)])] = root(placed[int(b)])
    return {search.request_id: root(i) for i, search in enumerate(searches)}


def case_many_subjects(
    searches: list[SearchFact], rules: SignalRules, subject_of: dict[int, int]
) -> list[Signal]:
    """A case reference used to search many different people: a case number as a pretext."""
    by_case: dict[str, list[SearchFact]] = defaultdict(list)
    for search in searches:
        if search.case_ref:
            by_case[search.case_ref].append(search)
    found = []
    for case, group in sorted(by_case.items()):
        people = len({subject_of[search.request_id] for search in group})
        if people >= rules.case_subjects:
            summary = (
                f"case {case!r}: {_many(people, 'person', 'different people')} searched in "
                f"{_many(len(group), 'request', 'requests')} (by {_names(group)})"
            )
            found.append(_signal("case_many_subjects", summary, group))
    return found


def face_across_cases(
    searches: list[SearchFact], rules: SignalRules, subject_of: dict[int, int]
) -> list[Signal]:
    """One person searched under several case references: a target followed across cases."""
    groups: dict[int, list[SearchFact]] = defaultdict(list)
    for search in searches:
        if search.case_ref:
            groups[subject_of[search.request_id]].append(search)
    found = []
    for group in groups.values():
        cases = sorted({search.case_ref for search in group if search.case_ref})
        if len(cases) >= 2:
            summary = (
                f"the same face was searched under {len(cases)} case references "
                f"({', '.join(cases)}) by {_names(group)}"
            )
            found.append(_signal("face_across_cases", summary, group))
    return found


def heavy_users(searches: list[SearchFact], rules: SignalRules) -> list[Signal]:
    """Users searching far more than the median of the other users who searched."""
    counts = Counter(search.requester for search in searches)
    found = []
    for user, count in sorted(counts.items()):
        peers = [n for other, n in counts.items() if other != user]
        if not peers or count < rules.peer_min_searches:
            continue
        median = statistics.median(peers)
        if count > rules.peer_factor * median:
            summary = (
                f"{user}: {count} searches, {count / median:.1f}x the median ({median:g}) "
                f"of the {_many(len(peers), 'other user', 'other users')} who searched"
            )
            mine = (search for search in searches if search.requester == user)
            found.append(_signal("heavy_user", summary, mine))
    return found


def is_unusual_time(moment: datetime, rules: SignalRules) -> bool:
    local = moment.astimezone(rules.zone)
    weekend = rules.flag_weekends and local.weekday() >= 5
    return weekend or not rules.day_start <= local.hour < rules.day_end


def unusual_hours(searches: list[SearchFact], rules: SignalRules) -> list[Signal]:
    """Searches outside working hours or at weekends, one signal per user."""
    by_user: dict[str, list[SearchFact]] = defaultdict(list)
    for search in searches:
        if is_unusual_time(search.created_at, rules):
            by_user[search.requester].append(search)
    weekends = " or at weekends" if rules.flag_weekends else ""
    found = []
    for user, group in sorted(by_user.items()):
        summary = (
            f"{user}: {_many(len(group), 'search', 'searches')} outside {rules.day_start:02d}:00-"
            f"{rules.day_end:02d}:00 ({rules.zone}){weekends}"
        )
        found.append(_signal("unusual_hours", summary, group))
    return found


def quick_approvals(
    decisions: list[DecisionFact], searches: list[SearchFact], rules: SignalRules
) -> list[Signal]:
    """Approvals given within seconds of the request: too fast to have read it."""
    known = {search.request_id: search for search in searches}
    by_approver: dict[str, list[DecisionFact]] = defaultdict(list)
    limit = rules.quick_approval_seconds
    for decision in decisions:
        if decision.decision == APPROVED and decision.waited_seconds < limit:
            by_approver[decision.approver or "-"].append(decision)
    found = []
    for approver, group in sorted(by_approver.items()):
        fastest = min(decision.waited_seconds for decision in group)
        summary = (
            f"{approver}: {_many(len(group), 'approval', 'approvals')} within {limit:g} s "
            f"of the request (fastest {fastest:.1f} s)"
        )
        requests = [known[d.request_id] for d in group if d.request_id in known]
        ids = (d.request_id for d in group)
        seqs = (d.seq for d in group if d.seq is not None)
        found.append(_signal("quick_approval", summary, requests, request_ids=ids, seqs=seqs))
    return found


def find_signals(
    searches: list[SearchFact], decisions: list[DecisionFact], rules: SignalRules
) -> list[Signal]:
    """Every signal the rules raise, in a stable order (by kind, then as found)."""
    subject_of = subjects(searches, rules.same_face_threshold)
    return [
        *case_many_subjects(searches, rules, subject_of),
        *face_across_cases(searches, rules, subject_of),
        *heavy_users(searches, rules),
        *unusual_hours(searches, rules),
        *quick_approvals(decisions, searches, rules),
    ]
