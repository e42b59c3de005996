"""Searching: the search form, your requests, one request's state and its results.

The search form holds the photo (see `held`) until it is sent, so the person sees the faces
found and picks one before anything is asked for; sending it is the one `SearchService`
request, recorded and ledgered whatever its outcome. A request's page shows where it stands:
waiting for an approver (the page refreshes itself), approved (the requester runs it, once),
refused or denied with the reason, or done with its results, whose view the service ledgers.
Who may see, run, review or export is the service's decision; the routes only authenticate,
except that the search form is for people whose roles some collection's policy admits.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from faceledger.errors import FaceledgerError, PermissionDenied
from faceledger.policy.collections import describe
from faceledger.reports.render import link
from faceledger.search.engine import FaceChoiceRequired
from faceledger.search.outcome import DONE, PENDING, REFUSED
from faceledger.search.requests import load_request, require_view, user_name, visible_requests
from faceledger.search.review import request_summary
from faceledger.store import repo
from faceledger.store.models import User
from faceledger.web.deps import Actor, App, rate_limit
from faceledger.web.pages.answers import back, refused
from faceledger.web.pages.held import add_picker, current, held_photo, release
from faceledger.web.pages.render import NavItem, page
from faceledger.web.services import Services

router = APIRouter()
NAV_ITEMS = (
    NavItem("Search", "/search", ("investigator",)),
    NavItem("Searches", "/requests", ("investigator", "approver")),
)

SLOT = "search"
Text = Annotated[str, Form(max_length=4000)]


def searchable(app: Services, user: User) -> list[dict[str, Any]]:
    """The collections whose policy lets `user` search them, as the API describes them."""
    with app.workspace.sessions() as session:
        return [
            describe(collection, images, faces)
            for collection, images, faces in repo.list_collections(session)
            if set(user.roles) & set(collection.search_roles)
        ]


def searcher(app: App, user: Actor) -> User:
    """The current user, if some collection's policy lets them search (403 otherwise)."""
    if not searchable(app, user):
        raise PermissionDenied(f"{user.name} may not search: no collection's policy allows it")
    return user


Searcher = Annotated[User, Depends(searcher)]
add_picker(router, "/search", SLOT, Searcher)


@router.get("/search", response_class=HTMLResponse)
def search_form(request: Request, app: App, user: Searcher) -> HTMLResponse:
    return page(
        request,
        "web/search.html",
        user,
        held=current(request, app, SLOT),
        collections=searchable(app, user),
        purposes=app.settings.purposes,
    )


@router.post("/search")
def ask(
    request: Request,
    app: App,
    user: Searcher,
    purpose: Text,
    case: Annotated[str, Form(max_length=200)],
    justification: Text,
    collection: Annotated[list[str] | None, Form()] = None,
    face: Annotated[int | None, Form(ge=1)] = None,
) -> RedirectResponse:
    """Ask for the search with the held photo: it runs, waits for approval, or is refused."""
    held = held_photo(request, app, SLOT)
    if held is None:
        return back(request, "/search", "Upload a photo first (held photos expire).", "error")
    rate_limit(app.search_limit, f"user:{user.id}")
    try:
        outcome = app.search.request(
            user,
            held[1],
            collections=collection or [],
            purpose=purpose,
            case_ref=case,
            justification=justification,
            face=face,
        )
    except FaceChoiceRequired:
        return back(request, "/search", "The photo shows several faces: choose one.", "error")
    release(request, app, SLOT)
    target = f"/requests/{outcome.request_id}"
    if outcome.status == REFUSED:
        return back(request, target, f"The search was refused: {outcome.reason}", "error")
    if outcome.status == PENDING:
        return back(request, target, "Your search waits for an approver.", "info")
    return back(request, target, f"The search ran: {len(outcome.results or [])} matches.")


@router.get("/requests", response_class=HTMLResponse)
def requests(request: Request, app: App, user: Actor, status: str | None = None) -> HTMLResponse:
    """Your requests; an approver sees everyone's."""
    with app.workspace.sessions() as session:
        rows = [request_summary(session, row) for row in visible_requests(session, user, status)]
    rows.reverse()  # newest first
    return page(request, "web/requests.html", user, requests=rows, wanted=status)


def short_url(url: str | None) -> str:
    """A URL as a card has room for: its host and last path segment (the full one on hover)."""
    parts = urlsplit(url or "")
    name = parts.path.rstrip("/").rsplit("/", 1)[-1]
    return f"{parts.netloc}/…/{name}" if parts.netloc and name else parts.netloc or name


def _state(app: Services, user: User, request_id: int) -> dict[str, Any]:
    """What the request page shows of a request besides its results (403 if not yours)."""
    with app.workspace.sessions() as session:
        row = load_request(session, request_id)
        require_view(session, user, row)
        return request_summary(session, row) | {
            "mine": row.requester_id == user.id,
            "refusal_code": row.refusal_code,
            "reason": row.reason,
            "decided_by": user_name(session, row.decided_by) if row.decided_by else None,
            "decision_reason": row.decision_reason,
            "decided_at": row.decided_at.isoformat() if row.decided_at else None,
            "expires_at": row.approval_expires_at.isoformat() if row.approval_expires_at else None,
            "probe_face": row.probe_face,
            "probe_age": row.probe_age,
            "authorisation_ref": row.authorisation_ref,
            "authorisation_due": (
                row.authorisation_due.isoformat() if row.authorisation_due else None
            ),
        }


@router.get("/requests/{request_id}", response_class=HTMLResponse)
def request_page(request: Request, app: App, user: Actor, request_id: int) -> HTMLResponse:
    state = _state(app, user, request_id)
    results: list[dict[str, Any]] = []
    if state["status"] == DONE:  # the service ledgers this view and registers each face
        results = [
            shown
            | {
                "page_href": link(shown["page_url"]),
                "image_href": link(shown["image_url"]),
                "image_name": short_url(shown["image_url"]),
            }
            for shown in app.search.results(user, request_id).results
        ]
    return page(request, "web/request.html", user, state=state, results=results)


@router.post("/requests/{request_id}/run")
def run(request: Request, app: App, user: Actor, request_id: int) -> RedirectResponse:
    """Run an approved request, once (the requester)."""
    target = f"/requests/{request_id}"
    try:
        outcome = app.search.run(user, request_id)
    except FaceledgerError as problem:
        return refused(request, target, problem)
    return back(request, target, f"The search ran: {len(outcome.results or [])} matches.")


@router.post("/requests/{request_id}/results/{result_id}/review")
def review(
    request: Request,
    app: App,
    user: Actor,
    request_id: int,
    result_id: int,
    decision: Annotated[str, Form(max_length=20)],
) -> RedirectResponse:
    """One person's final confirm/reject of one match (blind, ledgered)."""
    target = f"/requests/{request_id}#result-{result_id}"
    try:
        outcome = app.search.review(user, result_id, decision)
    except FaceledgerError as problem:
        return refused(request, target, problem)
    text = f"Match {result_id}: you chose {outcome.decision}."
    if outcome.confirmed:
        text += " It is confirmed by two people."
    return back(request, target, text)


@router.post("/requests/{request_id}/evidence", response_model=None)
def evidence(
    request: Request,
    app: App,
    user: Actor,
    request_id: int,
    candidates: Annotated[bool, Form()] = False,
) -> Response:
    """The printable evidence sheet as a download (ledgered, with the candidates flag)."""
    try:
        with tempfile.TemporaryDirectory() as folder:
            _sheet, printable = app.search.export(user, request_id, Path(folder), candidates)
            html = printable.read_text(encoding="utf-8")
    except FaceledgerError as problem:
        return refused(request, f"/requests/{request_id}", problem)
    disposition = f'attachment; filename="evidence-request-{request_id}.html"'
    return Response(html, media_type="text/html", headers={"Content-Disposition": disposition})


@router.post("/requests/{request_id}/authorisation")
def authorisation(
    request: Request,
    app: App,
    user: Actor,
    request_id: int,
    granted: Annotated[bool, Form()],
    reference: Annotated[str | None, Form(max_length=200)] = None,
) -> RedirectResponse:
    """Record the external authority's reference, or its refusal (which purges the results)."""
    target = f"/requests/{request_id}"
    try:
        app.search.record_authorisation(user, request_id, reference, granted)
    except FaceledgerError as problem:
        return refused(request, target, problem)
    text = "The authorisation was recorded." if granted else "The refusal was recorded."
    return back(request, target, text)
