"""Reading what the oversight report shows, from the store and from the ledger.

Times of requests and decisions come from the store (the service's clock); ledger-only
figures (ingestion jobs, activity) are selected by the ledger's own timestamps. Each reader
takes the period and returns plain records, so the report itself does no SQL.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

import numpy as np
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, aliased

from faceledger.auth.clock import as_utc
from faceledger.search.outcome import APPROVED, DENIED
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


@dataclass(frozen=True, eq=False)
class SearchFact:
    """One search request as the oversight report sees it (times are aware UTC)."""

    request_id: int
    requester: str
    created_at: datetime
    status: str
    refusal_code: str | None
    purpose: str | None
    case_ref: str | None
    collections: tuple[str, ...]
    probe_hash: str
    embedding: np.ndarray | None
    results: dict[str, int] = field(default_factory=dict)  # results returned, by collection
    seqs: tuple[int, ...] = ()  # ledger entries whose subject is this request

    @property
    def result_count(self) -> int:
        return sum(self.results.values())


@dataclass(frozen=True)
class DecisionFact:
    """An approver's decision on a request, and the ledger entry recording it (if found)."""

    request_id: int
    decision: str  # APPROVED or DENIED
    approver: str | None
    requester: str | None
    decided_at: datetime
    waited_seconds: float
    seq: int | None


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
class IngestVolume:
    """The counts of one finished ingestion job."""

    collection: str
    images: int
    images_with_faces: int
    faces_indexed: int
    skipped: int
    errors: int


def _request_id(subject: str | None) -> int | None:
    """The request a ledger subject names ("search:ID"), if any."""
    kind, _, number = (subject or "").partition(":")
    return int(number) if kind == "search" and number.isdigit() else None


def _in_period(period: Period) -> Select[int]:
    return select(SearchRequest.id).where(
        SearchRequest.created_at >= period.start, SearchRequest.created_at < period.end
    )


def _entries_in(period: Period) -> Select[Any]:
    start, end = period.ledger_bounds()
    return select(LedgerEntry).where(LedgerEntry.created_at >= start, LedgerEntry.created_at < end)


def load_searches(session: Session, period: Period) -> list[SearchFact]:
    """Requests made in the period, with their results by collection and ledger entries."""
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
        cited_id = _request_id(subject)
        if cited_id is not None:
            seqs[cited_id].append(seq)
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


def load_decisions(session: Session, period: Period) -> list[DecisionFact]:
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
        assert request.decided_at is not None  # the query selects decided requests only
        decided_at = as_utc(request.decided_at)
        decisions.append(
            DecisionFact(
                request_id=request.id,
                decision=DENIED if request.status == DENIED else APPROVED,
                approver=approver_name,
                requester=requester_name,
                decided_at=decided_at,
                waited_seconds=(decided_at - as_utc(request.created_at)).total_seconds(),
                seq=seqs.get(request.id),
            )
        )
    return decisions


def load_confirmed(session: Session, period: Period) -> list[ConfirmedMatch]:
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


def load_shown(session: Session, period: Period) -> list[Shown]:
    """The exposure register's entries made in the period (faces shown, to whom, from where)."""
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


def _payload(body: str | None) -> dict[str, Any]:
    """A payload as a dict; erased or unreadable ones (which `verify` reports) as empty."""
    try:
        payload = json.loads(body) if body else {}
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def load_ingestion(session: Session, period: Period) -> list[IngestVolume]:
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
        payload = _payload(body)
        jobs.append(
            IngestVolume(
                collection=str(payload.get("collection") or (subject or "").partition(":")[2]),
                images=_count(payload.get("images")),
                images_with_faces=_count(payload.get("images_with_faces")),
                faces_indexed=_count(payload.get("faces_indexed")),
                skipped=_count(payload.get("skipped")),
                errors=_count(payload.get("errors")),
            )
        )
    return jobs


def load_activity(session: Session, period: Period) -> dict[str, int]:
    """Ledger entries in the period by action: searches beside logins, views, exports..."""
    counted = (
        _entries_in(period)
        .with_only_columns(LedgerEntry.action, func.count())
        .group_by(LedgerEntry.action)
    )
    return {action: count for action, count in session.execute(counted)}
