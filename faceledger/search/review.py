"""Two-person confirmation, blind, and the ledgered view of a request's results.

A match counts as confirmed only when the requester and a second, different person have
each confirmed it. A reviewer sees nobody else's decision on a result until they have
made their own, so the second look is independent. Decisions are final and ledgered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from faceledger.auth.roles import Role, has_role
from faceledger.ledger import log
from faceledger.search.outcome import DONE, NotFound, ServiceRefusal, result_dict
from faceledger.search.requests import requester_name, require_view, subject, user_name
from faceledger.store.models import Exposure, Review, SearchRequest, SearchResult, User

DECISIONS = ("confirm", "reject")


def confirmers(result: SearchResult) -> set[int]:
    return {r.user_id for r in result.reviews if r.decision == "confirm"}


def is_confirmed(row: SearchRequest, result: SearchResult) -> bool:
    """Confirmed by the requester and by at least one other person."""
    confirmed = confirmers(result)
    return row.requester_id in confirmed and len(confirmed) >= 2


def decisions_on(session: Session, result: SearchResult) -> list[dict[str, Any]]:
    return [
        {
            "user": user_name(session, r.user_id),
            "decision": r.decision,
            "at": r.created_at.isoformat(),
        }
        for r in sorted(result.reviews, key=lambda r: r.id)
    ]


def _shown(
    session: Session, row: SearchRequest, result: SearchResult, user: User
) -> dict[str, Any]:
    """A result as `user` may see it: others' decisions only after their own."""
    mine = next((r.decision for r in result.reviews if r.user_id == user.id), None)
    shown = result_dict(result) | {"my_decision": mine}
    if mine is not None:
        shown["decisions"] = decisions_on(session, result)
        shown["confirmed"] = is_confirmed(row, result)
    return shown


@dataclass
class ResultsView:
    request: dict[str, Any]
    results: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"request": self.request, "results": self.results}


@dataclass
class ReviewOutcome:
    result_id: int
    request_id: int
    decision: str
    confirmed: bool
    decisions: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "result_id": self.result_id,
            "request_id": self.request_id,
            "decision": self.decision,
            "confirmed": self.confirmed,
            "decisions": self.decisions,
        }


def request_summary(session: Session, row: SearchRequest) -> dict[str, Any]:
    return {
        "request_id": row.id,
        "status": row.status,
        "requester": requester_name(session, row),
        "purpose": row.purpose,
        "case": row.case_ref,
        "justification": row.justification,
        "collections": row.collections,
        "created_at": row.created_at.isoformat(),
        "ran_at": row.ran_at.isoformat() if row.ran_at else None,
        "authorisation": row.authorisation_status,
        "probe_hash": row.probe_hash,
    }


def view(session: Session, row: SearchRequest, user: User, now: datetime) -> ResultsView:
    """What `user` may see of the results; registers each face shown to them (once)."""
    require_view(session, user, row)
    if row.status != DONE:
        raise ServiceRefusal("no_results", f"request {row.id} is {row.status}: no results to show")
    results = [r for r in row.results if r.purged_at is None]
    seen = set(
        session.scalars(
            select(Exposure.result_id).where(
                Exposure.request_id == row.id, Exposure.shown_to == user.id
            )
        )
    )
    session.add_all(
        Exposure(
            face_id=r.face_id, result_id=r.id, request_id=row.id, shown_to=user.id, shown_at=now
        )
        for r in results
        if r.id not in seen
    )
    log.append(
        session,
        actor=user.name,
        action="results.viewed",
        subject=subject(row),
        payload={"result_ids": [r.id for r in results], "face_ids": [r.face_id for r in results]},
    )
    return ResultsView(
        request_summary(session, row), [_shown(session, row, r, user) for r in results]
    )


def decide(
    session: Session, user: User, result_id: int, decision: str, now: datetime
) -> ReviewOutcome:
    """Record one person's final decision on one result."""
    if decision not in DECISIONS:
        raise ServiceRefusal("bad_decision", f"decide with one of {', '.join(DECISIONS)}")
    # Locked until the transaction ends, so two people deciding at once each see the
    # other's decision, whoever is second (PostgreSQL; SQLite's write lock already does).
    result = session.get(SearchResult, result_id, with_for_update=True)
    if result is None:
        raise NotFound(f"no search result {result_id}")
    row = result.request
    require_view(session, user, row)
    if row.requester_id != user.id and not has_role(user, Role.INVESTIGATOR, Role.APPROVER):
        raise ServiceRefusal(
            "not_allowed", f"{user.name} may not review matches: it needs investigator or approver"
        )
    if row.status != DONE or result.purged_at is not None:
        raise ServiceRefusal("no_results", f"result {result_id} is no longer available")
    if any(r.user_id == user.id for r in result.reviews):
        raise ServiceRefusal(
            "already_reviewed",
            f"{user.name} has already decided on result {result_id}: decisions are final, "
            "and confirming twice does not make a second person",
        )
    result.reviews.append(Review(user_id=user.id, decision=decision, created_at=now))
    session.flush()
    confirmed = is_confirmed(row, result)
    names = [user_name(session, uid) for uid in confirmers(result)]
    log.append(
        session,
        actor=user.name,
        action="result.reviewed",
        subject=f"result:{result.id}",
        payload={
            "request_id": row.id,
            "result_id": result.id,
            "face_id": result.face_id,
            "decision": decision,
            "confirmed": confirmed,
            "confirmed_by": sorted(names) if confirmed else [],
        },
    )
    return ReviewOutcome(result.id, row.id, decision, confirmed, decisions_on(session, result))
