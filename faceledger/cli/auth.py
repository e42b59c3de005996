"""What every command that acts for someone shares: finding the acting user, or exiting 4."""

from __future__ import annotations

import os

import typer
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from faceledger.auth.actor import resolve_actor
from faceledger.auth.roles import AuthError, PermissionDenied
from faceledger.cli.app import EXIT_AUTH, fail
from faceledger.store.models import User


def auth_failure(exc: AuthError | PermissionDenied, as_json: bool) -> typer.Exit:
    """The clean exit (status 4) for an authentication or permission failure."""
    error = "permission_denied" if isinstance(exc, PermissionDenied) else "authentication_failed"
    return fail(str(exc), EXIT_AUTH, as_json, error=error)


def acting_user(
    ctx: typer.Context,
    session: Session,
    as_json: bool | None = None,
    *,
    allow_token: bool = True,
) -> User:
    """The authenticated user running this command (may prompt at a terminal), else exit 4.

    Authentication commits `session`, so call this before changing anything. `as_json`
    defaults to the command's own --json flag.
    """
    if as_json is None:
        as_json = bool(ctx.params.get("as_json", False))
    try:
        return resolve_actor(session, os.environ, prompt=True, allow_token=allow_token)
    except (AuthError, PermissionDenied) as exc:
        refusal = exc
        if not session.scalar(select(func.count()).select_from(User)):
            refusal = AuthError("no users exist yet: run `faceledger init` first")
        raise auth_failure(refusal, as_json) from None
