"""Approvals: a second person with the approver role lets a waiting request run, once.

An approval is bound to the request's probe hash and collections, expires after
`approval_hours`, and is spent by the run it allows.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from faceledger.auth.clock import as_utc
from faceledger.auth.roles import Role, has_role
from faceledger.config import Settings
from faceledger.search import probes
from faceledger.search.outcome import (
    APPROVED,
    DENIED,
    DONE,
    EXPIRED,
    PENDING,
    PURGED,
    REFUSED,
    ServiceRefusal,
)
from faceledger.search.requests import requester_name
from faceledger.store.models import SearchRequest, User


def decide(
    session: Session,
    row: SearchRequest,
    user: User,
    reason: str,
    approve: bool,
    now: datetime,
    settings: Settings,
) -> dict[str, Any]:
    """Approve or deny a waiting request; return the ledger payload of the decision."""
    if not has_role(user, Role.APPROVER):
        raise ServiceRefusal(
            "not_allowed", f"{user.name} may not decide on searches: it needs the approver role"
        )
    if row.requester_id == user.id:
        raise ServiceRefusal("own_search", "nobody may approve or deny their own search")
    if row.status != PENDING:
        raise ServiceRefusal(
            "not_pending", f"request {row.id} is {row.status}, not waiting for a decision"
        )
    reason = reason.strip()
    if not reason:
        raise ServiceRefusal("missing_reason", "an approval or denial must give a reason")
    row.status = APPROVED if approve else DENIED
    row.decided_by, row.decided_at, row.decision_reason = user.id, now, reason
    if approve:
        row.approval_expires_at = now + timedelta(hours=settings.approval_hours)
    return {
        "reason": reason,
        "requester": requester_name(session, row),
        "waited_seconds": round((now - as_utc(row.created_at)).total_seconds(), 3),
        "probe_hash": row.probe_hash,
        "collections": row.collections,
        "purpose": row.purpose,
        "case": row.case_ref,
        "expires_at": row.approval_expires_at.isoformat() if approve else None,
    }


_NOT_RUNNABLE = {
    PENDING: ("awaiting_approval", "request {id} is still waiting for an approver"),
    DENIED: ("denied", "request {id} was denied: {why}"),
    REFUSED: ("refused", "request {id} was refused: {why}"),
    DONE: ("approval_used", "request {id} has already run: an approval is used once"),
    PURGED: ("approval_used", "request {id} has already run and its results were purged"),
    EXPIRED: ("approval_expired", "the approval of request {id} has expired: ask again"),
}


def check_runnable(
    row: SearchRequest,
    user: User,
    probe: bytes | None,
    collections: list[str] | None,
    settings: Settings,
    now: datetime,
) -> None:
    """Refuse unless the requester runs an unused, unexpired approval for the same probe
    and collections (the stored probe must still hash to the approved value)."""
    if row.requester_id != user.id:
        raise ServiceRefusal("not_requester", f"only the person who asked may run request {row.id}")
    if row.status in _NOT_RUNNABLE:
        code, message = _NOT_RUNNABLE[row.status]
        why = row.decision_reason if row.status == DENIED else row.reason
        raise ServiceRefusal(code, message.format(id=row.id, why=why))
    if row.approval_expires_at is None or now > as_utc(row.approval_expires_at):
        raise ServiceRefusal("approval_expired", _NOT_RUNNABLE[EXPIRED][1].format(id=row.id))
    if probe is not None and probes.probe_hash(probe) != row.probe_hash:
        raise ServiceRefusal(
            "approval_mismatch", f"the approval of request {row.id} is for another probe photo"
        )
    if collections is not None and set(collections) != set(row.collections):
        raise ServiceRefusal(
            "approval_mismatch",
            f"the approval of request {row.id} is for the collections "
            f"{', '.join(row.collections)} only",
        )
    stored = probes.load(settings, row.probe_file)
    if stored is None or row.probe_embedding is None:
        raise ServiceRefusal("probe_expired", f"the probe of request {row.id} is no longer kept")
    if probes.probe_hash(stored) != row.probe_hash:
        raise ServiceRefusal(
            "approval_mismatch",
            f"the stored probe of request {row.id} no longer matches the approved photo",
        )


def use(session: Session, row: SearchRequest, now: datetime) -> None:
    """Spend the approval: one conditional update, so of several processes running the same
    request at once exactly one gets it; the others are refused with `approval_used`."""
    claimed = session.execute(
        update(SearchRequest)
        .where(
            SearchRequest.id == row.id,
            SearchRequest.status == APPROVED,
            SearchRequest.approval_used_at.is_(None),
        )
        .values(approval_used_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        code, message = _NOT_RUNNABLE[DONE]
        raise ServiceRefusal(code, message.format(id=row.id))
    row.approval_used_at = now
