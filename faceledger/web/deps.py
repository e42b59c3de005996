"""Who is asking: the dependencies every route declares.

`Actor` is the signed-in user (session cookie) or the owner of an API token
(`Authorization: Bearer TOKEN`, checked by `faceledger.auth.tokens.authenticate_token`,
which ledgers each use). Without either the answer is 401 (pages: the login form). A
cookie-authenticated unsafe request must carry the session's CSRF token (see
`security.check_csrf`). `require(Role...)` adds the role check (403 otherwise), made on
the server before the route reads anything. The returned User is detached: hand it to a
service, which reloads it in its own transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from faceledger.auth.clock import utcnow
from faceledger.auth.roles import Role, has_role
from faceledger.auth.tokens import authenticate_token
from faceledger.errors import AuthError, PermissionDenied
from faceledger.store.models import User
from faceledger.web import sessions
from faceledger.web.errors import ApiError, authentication_required
from faceledger.web.ratelimit import RateLimiter
from faceledger.web.security import SAFE_METHODS, check_csrf, client_address
from faceledger.web.services import Services


def services(request: Request) -> Services:
    return request.app.state.services


@dataclass(frozen=True)
class Principal:
    user: User
    by_token: bool


def rate_limit(limiter: RateLimiter, key: str, *, spend: bool = True) -> None:
    """Refuse with 429 (and Retry-After) when `key` has spent its tokens."""
    wait = limiter.take(key, spend=spend)
    if wait is not None:
        raise ApiError(
            429,
            "rate_limited",
            f"too many requests: try again in {wait:.0f} s",
            headers={"Retry-After": str(max(1, round(wait)))},
        )


def _bearer(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else None


def _by_token(app: Services, token: str, address: str) -> User:
    rate_limit(app.bad_token_limit, address, spend=False)  # only failures spend
    with app.workspace.sessions() as session:
        try:
            user = authenticate_token(session, token)
        except AuthError:
            app.bad_token_limit.take(address)
            raise
        session.expunge(user)
        return user


def _by_session(app: Services, state: sessions.Session) -> User | None:
    now = utcnow()
    uid = sessions.signed_in_user_id(state, now, app.session_lifetime)
    if uid is None or app.revocations.revoked(str(state.get(sessions.SID, ""))):
        return None
    with app.workspace.sessions() as session:
        user = session.get(User, uid)
        if (
            user is None
            or not user.active
            or not sessions.tag_matches(state, app.session_key, user)
        ):
            return None
        session.expunge(user)
        return user


async def principal(request: Request) -> Principal:
    app = services(request)
    token = _bearer(request)
    if token is not None:
        user = await run_in_threadpool(_by_token, app, token, client_address(request))
        return Principal(user, by_token=True)
    state = request.session
    user = await run_in_threadpool(_by_session, app, state) if state else None
    if user is None:
        if state.get(sessions.UID) is not None:
            state.clear()  # lapsed, revoked or its user changed: forget it
        raise authentication_required()
    if request.method not in SAFE_METHODS:
        await check_csrf(request)
    sessions.touch(state, utcnow())
    return Principal(user, by_token=False)


async def current_user(who: Annotated[Principal, Depends(principal)]) -> User:
    return who.user


def require(*roles: Role) -> Callable[[User], Awaitable[User]]:
    """A dependency: the current user, if they hold one of `roles` (403 otherwise)."""
    needed = " or ".join(roles)

    async def check(user: Annotated[User, Depends(current_user)]) -> User:
        if not has_role(user, *roles):
            raise PermissionDenied(f"{user.name} may not do this: it needs the role {needed}")
        return user

    return check


async def csrf_checked(request: Request) -> None:
    """For page forms that may be sent before signing in (the login form)."""
    await check_csrf(request)


Actor = Annotated[User, Depends(current_user)]
Admin = Annotated[User, Depends(require(Role.ADMIN))]
Approver = Annotated[User, Depends(require(Role.APPROVER))]
Overseer = Annotated[User, Depends(require(Role.ADMIN, Role.AUDITOR))]
App = Annotated[Services, Depends(services)]
