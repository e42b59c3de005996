"""Recording an authentication attempt in its own committed transaction.

A refused attempt is followed by an exception, and callers roll back on exceptions; the
attempt must stay in the ledger (and count towards the lock-out) all the same, so it is
committed here, before the exception. That commit ends the caller's transaction, so
authentication must come first in a unit of work: pending changes are refused loudly
rather than committed by surprise.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from faceledger.ledger import log


def ensure_nothing_pending(session: Session) -> None:
    if session.new or session.dirty or session.deleted:
        raise RuntimeError(
            "authenticate before making changes: it commits the session's transaction"
        )


def record(
    session: Session,
    *,
    actor: str | None,
    action: str,
    subject: str | None,
    payload: dict[str, Any],
) -> None:
    """Ledger the attempt (with any counter changes already made) and commit."""
    log.append(session, actor=actor, action=action, subject=subject, payload=payload)
    session.commit()
