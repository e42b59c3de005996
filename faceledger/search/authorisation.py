"""External authorisation (EU AI Act Art. 26(10)): run now, authorise within a deadline.

A collection's policy may let a search run at once on condition that a judicial or
administrative authority's reference is recorded within `authorisation_hours`. When it
is refused, or not recorded in time, the results are purged and the purge is ledgered.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from faceledger.auth.clock import as_utc
from faceledger.auth.roles import Role, has_role
from faceledger.config import Settings
from faceledger.ledger import log
from faceledger.search import probes
from faceledger.search.outcome import PURGED, ServiceRefusal
from faceledger.search.requests import subject
from faceledger.store.models import SearchRequest, User

PENDING = "pending"
GRANTED = "granted"
REFUSED = "refused"
LAPSED = "lapsed"


def record(
    session: Session,
    settings: Settings,
    row: SearchRequest,
    user: User,
    reference: str | None,
    granted: bool,
    now: datetime,
) -> None:
    """Record the authority's answer (an approver or admin, never the requester)."""
    if not has_role(user, Role.APPROVER, Role.ADMIN):
        raise ServiceRefusal(
            "not_allowed", f"{user.name} may not record authorisations: it needs approver or admin"
        )
    if row.requester_id == user.id:
        raise ServiceRefusal(
            "own_search", "nobody may record the authorisation of their own search"
        )
    if row.authorisation_status != PENDING:
        raise ServiceRefusal(
            "not_pending",
            f"request {row.id} has no authorisation outstanding "
            f"({row.authorisation_status or 'none required'})",
        )
    reference = (reference or "").strip() or None
    if granted and reference is None:
        raise ServiceRefusal("missing_reference", "record the authority's reference")
    row.authorisation_ref = reference
    late = row.authorisation_due is not None and as_utc(now) > as_utc(row.authorisation_due)
    if late:  # too late to count: the results go, as they would have at the deadline
        purge(session, settings, row, None, LAPSED, now)
        return
    log.append(
        session,
        actor=user.name,
        action="authorisation.recorded",
        subject=subject(row),
        payload={"granted": granted, "reference": reference},
    )
    if granted:
        row.authorisation_status = GRANTED
    else:
        purge(session, settings, row, user.name, REFUSED, now)


def lapse_overdue(
    session: Session,
    settings: Settings,
    actor: User | None,
    now: datetime,
    only: SearchRequest | None = None,
) -> list[int]:
    """Purge the results of every request whose authorisation deadline has passed."""
    if only is not None:
        rows = [only] if only.authorisation_status == PENDING else []
    else:
        query = (  # locked: of two runs at once, the second skips what the first purged
            select(SearchRequest)
            .where(SearchRequest.authorisation_status == PENDING)
            .with_for_update()
        )
        rows = list(session.scalars(query))
    lapsed = [
        row
        for row in rows
        if row.authorisation_due is not None and as_utc(now) > as_utc(row.authorisation_due)
    ]
    for row in lapsed:
        purge(session, settings, row, actor.name if actor else None, LAPSED, now)
    return [row.id for row in lapsed]


def purge(
    session: Session,
    settings: Settings,
    row: SearchRequest,
    actor: str | None,
    cause: str,
    now: datetime,
) -> None:
    """Remove what the results showed and the probe; the exposure register keeps who saw it."""
    purged: list[dict[str, Any]] = []
    for result in row.results:
        if result.purged_at is None:
            purged.append({"result_id": result.id, "face_id": result.face_id})
            result.image_url = result.page_url = result.page_title = result.warc_digest = None
            result.box = None
            result.purged_at = now
    probes.delete(settings, row.probe_file)
    row.probe_file, row.probe_embedding = None, None
    row.status, row.authorisation_status = PURGED, cause
    log.append(
        session,
        actor=actor,
        action="search.purged",
        subject=subject(row),
        payload={"cause": f"authorisation_{cause}", "results": purged},
    )
