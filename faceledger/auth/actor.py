"""Establishing who runs a command: a token, a name and password, or (at a terminal) a prompt.

Nothing is done anonymously: without credentials the request is refused with a message
saying how to give them.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Mapping

from sqlalchemy.orm import Session

from faceledger.auth.clock import Clock, utcnow
from faceledger.auth.login import authenticate
from faceledger.auth.tokens import authenticate_token
from faceledger.errors import AuthError
from faceledger.store.models import User

TOKEN_VAR = "FACELEDGER_TOKEN"
USER_VAR = "FACELEDGER_USER"
PASSWORD_VAR = "FACELEDGER_PASSWORD"
HOW = "say who you are: set FACELEDGER_USER and FACELEDGER_PASSWORD, or FACELEDGER_TOKEN"
HOW_PASSWORD = "this needs a password, not a token: set FACELEDGER_USER and FACELEDGER_PASSWORD"


def _ask_name() -> str:
    # The prompt goes to stderr so that a command's output (JSON) stays clean.
    print("user name: ", end="", file=sys.stderr, flush=True)
    return input().strip()


def resolve_actor(
    session: Session,
    env: Mapping[str, str],
    prompt: bool,
    *,
    allow_token: bool = True,
    interactive: bool | None = None,
    clock: Clock = utcnow,
) -> User:
    """The authenticated, active user behind this request, or AuthError.

    A token wins over a name and password. `allow_token=False` demands a password (for
    minting tokens: a stolen token must not be able to outlive its own revocation).
    `interactive` overrides the stdin-is-a-terminal test that allows prompting.
    """
    token = env.get(TOKEN_VAR, "").strip()
    if token and allow_token:
        user = authenticate_token(session, token, clock=clock)
    else:
        name = env.get(USER_VAR, "").strip()
        password = env.get(PASSWORD_VAR, "")
        can_ask = prompt and (sys.stdin.isatty() if interactive is None else interactive)
        if not name and can_ask:
            name = _ask_name()
        if name and not password and can_ask:
            password = getpass.getpass(f"password for {name}: ")
        if not name or not password:
            raise AuthError(HOW if allow_token else HOW_PASSWORD)
        user = authenticate(session, name, password, clock=clock)
    if not user.active:
        raise AuthError(f"{user.name} is deactivated")
    return user
