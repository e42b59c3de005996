"""API tokens for scripts: shown once, stored only as a SHA-256 hash, expiring, revocable.

A token carries 256 random bits, so a fast unsalted hash is enough to make a stolen table
useless (there is nothing to guess) while still finding the row by an indexed lookup.
Every use is ledgered as `auth.token` and committed at once, like password logins.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from faceledger.auth._attempts import ensure_nothing_pending, record
from faceledger.auth.clock import Clock, as_utc, utcnow
from faceledger.auth.roles import Role, has_role, require_active
from faceledger.auth.users import UserError, get_user
from faceledger.errors import AuthError, BadInput, NotFound, PermissionDenied
from faceledger.ledger import log
from faceledger.store.models import ApiToken, User

PREFIX = "flt_"
MAX_DAYS = 366
ACTION = "auth.token"


class UnknownToken(NotFound):
    """No token has that id."""


@dataclass(frozen=True)
class TokenInfo:
    """What may be shown about a token: never the token, nor its hash."""

    id: int
    user: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(self).items()}


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _subject(token_id: int) -> str:
    return f"token:{token_id}"


def _may_manage(actor: User, owner_name: str) -> None:
    """Admins manage anyone's tokens; others only their own."""
    require_active(actor)
    if actor.name != owner_name and not has_role(actor, Role.ADMIN):
        raise PermissionDenied(f"{actor.name} may only manage their own tokens (or be an admin)")


def create_token(
    session: Session, actor: User, user_name: str, days: int = 30, *, clock: Clock = utcnow
) -> str:
    """A new token for `user_name`, returned in plain text this once only."""
    _may_manage(actor, user_name)
    if not 1 <= days <= MAX_DAYS:
        raise BadInput(f"a token lasts 1 to {MAX_DAYS} days, not {days}")
    user = get_user(session, user_name)
    if not user.active:
        raise UserError(f"{user_name} is deactivated")
    token = PREFIX + secrets.token_urlsafe(32)
    now = as_utc(clock())
    row = ApiToken(
        user_id=user.id,
        token_hash=token_hash(token),
        created_at=now,
        expires_at=now + timedelta(days=days),
    )
    session.add(row)
    session.flush()
    log.append(
        session,
        actor=actor.name,
        action="token.create",
        subject=_subject(row.id),
        payload={"user": user_name, "expires_at": row.expires_at.isoformat()},
    )
    return token


def authenticate_token(session: Session, token: str, *, clock: Clock = utcnow) -> User:
    """The token's user, or AuthError (unknown, revoked, expired, user deactivated).

    Commits the session either way, so refused uses stay ledgered.
    """
    ensure_nothing_pending(session)
    now = as_utc(clock())
    row = None
    if token.startswith(PREFIX):
        row = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash(token)))
    if row is None:
        record(session, actor=None, action=ACTION, subject=None, payload={"outcome": "unknown"})
        raise AuthError("unknown token")
    user = session.get_one(User, row.user_id)
    refusal = None
    if row.revoked_at is not None:
        refusal = ("revoked", "this token was revoked")
    elif now >= as_utc(row.expires_at):
        refusal = ("expired", f"this token expired at {as_utc(row.expires_at):%Y-%m-%d %H:%M} UTC")
    elif not user.active:
        refusal = ("deactivated", f"{user.name} is deactivated")
    if refusal is not None:
        outcome, message = refusal
        payload = {"outcome": outcome, "user": user.name}
        record(session, actor=None, action=ACTION, subject=_subject(row.id), payload=payload)
        raise AuthError(message)
    row.last_used_at = now
    payload = {"outcome": "ok", "user": user.name}
    record(session, actor=user.name, action=ACTION, subject=_subject(row.id), payload=payload)
    return user


def revoke_token(
    session: Session, actor: User, token_id: int, *, clock: Clock = utcnow
) -> ApiToken:
    """Revoke by id (ids are listed, tokens never are); revoking twice changes nothing."""
    row = session.get(ApiToken, token_id)
    if row is None:
        raise UnknownToken(f"no token with id {token_id}")
    owner = session.get_one(User, row.user_id)
    _may_manage(actor, owner.name)
    if row.revoked_at is None:
        row.revoked_at = as_utc(clock())
        log.append(
            session,
            actor=actor.name,
            action="token.revoke",
            subject=_subject(row.id),
            payload={"user": owner.name},
        )
    return row


def list_tokens(session: Session, actor: User, user_name: str | None = None) -> list[TokenInfo]:
    """Tokens by id: an admin sees everyone's (or one user's), others only their own."""
    if user_name is None and not has_role(actor, Role.ADMIN):
        user_name = actor.name
    if user_name is not None:
        _may_manage(actor, user_name)
    query = select(ApiToken, User.name).join(User, User.id == ApiToken.user_id)
    if user_name is not None:
        query = query.where(User.name == user_name)
    return [
        TokenInfo(
            id=row.id,
            user=name,
            created_at=as_utc(row.created_at),
            expires_at=as_utc(row.expires_at),
            last_used_at=as_utc(row.last_used_at) if row.last_used_at else None,
            revoked_at=as_utc(row.revoked_at) if row.revoked_at else None,
        )
        for row, name in session.execute(query.order_by(ApiToken.id))
    ]
