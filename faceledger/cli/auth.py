"""What every command that acts for someone shares: finding the acting user."""

from __future__ import annotations

import os

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from faceledger.auth.actor import resolve_actor
from faceledger.errors import AuthError, PermissionDenied
from faceledger.store.models import User


def acting_user(session: Session, *, allow_token: bool = True) -> User:
    """The authenticated user running this command (may prompt at a terminal).

    Authentication commits `session`, so call this before changing anything. On an empty
    data directory the refusal says to run `faceledger init` first.
    """
    try:
        return resolve_actor(session, os.environ, prompt=True, allow_token=allow_token)
    except (AuthError, PermissionDenied):
        if not session.scalar(select(func.count()).select_from(User)):
            raise AuthError("no users exist yet: run `faceledger init` first") from None
        raise
