"""The approvals inbox: what waits for a decision, with what an approver needs to decide.

Each waiting request shows its probe (through `SearchService.probe_photo`, so every look at
it is ledgered) with the chosen face marked, who asked, for what purpose and case, why,
and in which collections; the decision needs a reason and is the service's (never one's
own search, only a waiting one).
"""

from __future__ import annotations

import base64
import statistics
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from faceledger.auth.clock import as_utc, utcnow
from faceledger.errors import FaceledgerError, Refused
from faceledger.search.outcome import PENDING
from faceledger.search.requests import visible_requests
from faceledger.search.review import request_summary
from faceledger.store.models import User
from faceledger.web.deps import App, Approver
from faceledger.web.pages.answers import back, refused
from faceledger.web.pages.held import preview
from faceledger.web.pages.render import NavItem, page
from faceledger.web.services import Services

router = APIRouter()
NAV_ITEMS = (NavItem("Approvals", "/approvals", ("approver",)),)


def duration(seconds: float) -> str:
    """A wait as people say it: "40 s", "12 min", "3 h 05 min", "2 d 4 h"."""
    minutes, hours = int(seconds // 60), int(seconds // 3600)
    if seconds < 60:
        return f"{int(seconds)} s"
    if minutes < 60:
        return f"{minutes} min"
    if hours < 48:
        return f"{hours} h {minutes % 60:02d} min"
    return f"{hours // 24} d {hours % 24} h"


def _waiting(app: Services, user: User, now: datetime) -> list[dict[str, Any]]:
    with app.workspace.sessions() as session:
        return [
            request_summary(session, row)
            | {
                "mine": row.requester_id == user.id,
                "waited": (now - as_utc(row.created_at)).total_seconds(),
                "probe_face": row.probe_face,
                "probe_box": row.probe_box,
                "probe_age": row.probe_age,
            }
            for row in visible_requests(session, user, PENDING)
        ]


def _probe(app: Services, user: User, request_id: int) -> dict[str, Any] | None:
    """The probe as a data URI with its size (one ledgered view), or None if not kept."""
    try:
        shown = preview(app.search.probe_photo(user, request_id), app.config.upload)
    except Refused:
        return None
    uri = "data:image/jpeg;base64," + base64.b64encode(shown.jpeg).decode("ascii")
    return {"src": uri, "width": shown.width, "height": shown.height}


@router.get("/approvals", response_class=HTMLResponse)
def inbox(request: Request, app: App, user: Approver) -> HTMLResponse:
    waiting = _waiting(app, user, utcnow())
    for item in waiting:
        item["probe"] = _probe(app, user, item["request_id"])
        item["waited_text"] = duration(item["waited"])
    waits = [item["waited"] for item in waiting]
    counts = {
        "waiting": len(waits),
        "oldest": duration(max(waits)) if waits else None,
        "median": duration(statistics.median(waits)) if waits else None,
    }
    return page(
        request,
        "web/approvals.html",
        user,
        waiting=waiting,
        counts=counts,
        approval_hours=app.settings.approval_hours,
    )


@router.post("/approvals/{request_id}")
def decide(
    request: Request,
    app: App,
    user: Approver,
    request_id: int,
    decision: Annotated[Literal["approve", "deny"], Form()],
    reason: Annotated[str, Form(max_length=4000)],
) -> RedirectResponse:
    """Approve or deny a waiting request, with the reason (ledgered)."""
    act = app.search.approve if decision == "approve" else app.search.deny
    try:
        act(user, request_id, reason)
    except FaceledgerError as problem:
        return refused(request, "/approvals", problem)
    verb = "approved" if decision == "approve" else "denied"
    return back(request, "/approvals", f"Request {request_id} {verb}.")
