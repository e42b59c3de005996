"""Password login, with a lock-out that doubles as the per-name rate limit.

After `MAX_FAILURES` consecutive wrong passwords a name is locked for `LOCK_PERIOD`; while
locked, attempts are refused without looking at the password, so a guesser gets at most
`MAX_FAILURES` tries per `LOCK_PERIOD` and name (480 a day) whatever their speed. That is
the only rate limit: unknown names are not counted (there is no row to count them in), and
they are checked against a dummy hash so that they take as long as known ones.

Every attempt is ledgered as `auth.login` with its outcome (never the password) and
committed at once, so refused attempts survive the caller's rollback.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from faceledger.auth._attempts import ensure_nothing_pending, record
from faceledger.auth.clock import Clock, as_utc, utcnow
from faceledger.auth.passwords import dummy_hash, rehash_if_needed, verify_password
from faceledger.auth.users import subject
from faceledger.errors import AuthError
from faceledger.store.models import User

MAX_FAILURES = 5
LOCK_PERIOD = timedelta(minutes=15)
ACTION = "auth.login"
WRONG = "wrong user name or password"


def _record(
    session: Session, name: str, outcome: str, *, actor: str | None = None, **details: Any
) -> None:
    payload = {"outcome": outcome, **details}
    record(session, actor=actor, action=ACTION, subject=subject(name[:200]), payload=payload)


def authenticate(session: Session, name: str, password: str, *, clock: Clock = utcnow) -> User:
    """The user with this name and password, or AuthError; commits the session either way."""
    ensure_nothing_pending(session)
    now = as_utc(clock())
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        verify_password(dummy_hash(), password)
        _record(session, name, "failed", reason="unknown_user")
        raise AuthError(WRONG)

    if user.locked_until is not None:
        locked_until = as_utc(user.locked_until)
        if now < locked_until:
            _record(session, name, "locked", locked_until=locked_until.isoformat())
            raise AuthError(
                f"{name} is locked after {MAX_FAILURES} failed attempts; "
                f"try again after {locked_until:%Y-%m-%d %H:%M:%S} UTC or ask an admin"
            )
        user.failed_logins = 0  # the lock has run out: a fresh allowance of attempts
        user.locked_until = None

    if not verify_password(user.password_hash, password):
        user.failed_logins += 1
        details: dict[str, Any] = {"reason": "wrong_password", "failures": user.failed_logins}
        if user.failed_logins >= MAX_FAILURES:
            user.locked_until = now + LOCK_PERIOD
            details["locked_until"] = user.locked_until.isoformat()
        _record(session, name, "failed", **details)
        raise AuthError(WRONG)

    if not user.active:
        _record(session, name, "failed", reason="deactivated")
        raise AuthError(f"{name} is deactivated")

    user.failed_logins = 0
    upgraded = rehash_if_needed(user.password_hash, password)
    if upgraded is not None:
        user.password_hash = upgraded
    _record(session, name, "ok", actor=name)
    return user
