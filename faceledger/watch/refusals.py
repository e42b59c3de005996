"""Refused watch attempts are ledgered: who tried to enrol or watch, and why they could not."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.orm import Session

from faceledger.auth.roles import Role, require_role
from faceledger.errors import PermissionDenied
from faceledger.ledger import log
from faceledger.search.engine import ProbeRefused
from faceledger.store.models import User


@contextmanager
def ledgered_refusals(
    session: Session, actor: User, attempt: str, **details: Any
) -> Iterator[None]:
    """Roll back, ledger `watch.refused` and commit when a permission or the age gate says no.

    `details` (a photo's hash, say) go into the entry; never a label, which might name a
    child whose photo was refused.
    """
    try:
        yield
    except (PermissionDenied, ProbeRefused) as problem:
        code = problem.code if isinstance(problem, ProbeRefused) else "permission_denied"
        session.rollback()
        log.append(
            session,
            actor=actor.name,
            action="watch.refused",
            payload={"attempt": attempt, "code": code, "reason": str(problem), **details},
        )
        session.commit()
        raise


def require_admin(session: Session, actor: User, attempt: str, **details: Any) -> None:
    """Only admins enrol people and run watches; a refusal is ledgered (and committed)."""
    with ledgered_refusals(session, actor, attempt, **details):
        require_role(actor, Role.ADMIN)
