"""Signing in and out with a password (API clients use tokens instead).

Signing in is rate-limited per client address on top of the per-name lock-out of
`faceledger.auth.login.authenticate` (which ledgers every attempt), and replaces the whole
session so that no id from before the login survives it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from faceledger.auth.clock import utcnow
from faceledger.auth.login import authenticate
from faceledger.auth.passwords import MAX_LENGTH
from faceledger.errors import AuthError
from faceledger.store.models import User
from faceledger.web import sessions
from faceledger.web.deps import Actor, App, csrf_checked, rate_limit
from faceledger.web.pages.render import page
from faceledger.web.security import client_address
from faceledger.web.services import Services

router = APIRouter()


def safe_next(target: str | None) -> str:
    """Only paths of this site: an open redirect would make the login form a phishing aid."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str = "/") -> HTMLResponse:
    return page(request, "web/login.html", None, next=safe_next(next), error=None, username="")


def _authenticate(app: Services, name: str, password: str) -> User:
    with app.workspace.sessions() as session:
        user = authenticate(session, name, password)
        session.expunge(user)
        return user


@router.post("/login", response_class=HTMLResponse, dependencies=[Depends(csrf_checked)])
async def login(
    request: Request,
    app: App,
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=MAX_LENGTH)],
    next: Annotated[str, Form()] = "/",
) -> Response:
    rate_limit(app.login_limit, client_address(request))
    try:
        user = await run_in_threadpool(_authenticate, app, username.strip(), password)
    except AuthError as problem:
        context = {"next": safe_next(next), "error": str(problem), "username": username}
        return page(request, "web/login.html", None, status=401, **context)
    sessions.sign_in(request.session, app.session_key, user, utcnow())
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/logout")
async def logout(request: Request, app: App, user: Actor) -> Response:
    app.revocations.revoke(str(request.session.get(sessions.SID, "")), utcnow())
    request.session.clear()
    sessions.flash(sessions.ensure(request.session), "info", f"{user.name} signed out")
    return RedirectResponse("/login", status_code=303)
