"""Right to erasure inside the ledger: an admin drops one payload, and says so in the ledger.

The erased payload's hash stays in its chained header, so the chain still verifies; the
erasure itself is a new entry (who, which entry, why), so nothing disappears silently.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from faceledger.auth.roles import Role, require_role
from faceledger.errors import Conflict, NotFound, Refused
from faceledger.ledger import log
from faceledger.store.models import LedgerPayload, User


def erase(session: Session, actor: User, seq: int, reason: str) -> None:
    """Erase entry `seq`'s payload (admins; a reason is required); the caller commits."""
    require_role(actor, Role.ADMIN)
    reason = reason.strip()
    if not reason:
        raise Refused("an erasure needs a reason (e.g. the data subject's request)")
    payload = session.get(LedgerPayload, seq)
    if payload is None:
        raise NotFound(f"no ledger entry {seq}")
    if payload.body is None:
        raise Conflict(f"the payload of entry {seq} is already erased")
    log.erase_payload(session, seq)
    log.append(
        session,
        actor=actor.name,
        action="ledger.erased",
        subject=f"ledger:{seq}",
        payload={"seq": seq, "reason": reason},
    )
