"""Reports (auditors and admins): oversight for a chosen period, and a data subject's report
from a photo. Both are made by `faceledger.reports` (which ledgers each one) and shown
inside the app's layout: the report's own document, minus its inline style sheet, which
the page's CSP would refuse and app.css replaces (charts are data: images, which it allows).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup
from pydantic import BaseModel, Field

from faceledger.auth.clock import utcnow
from faceledger.errors import FaceledgerError
from faceledger.reports.render import render_subject
from faceledger.reports.subject import subject_report
from faceledger.store.models import User
from faceledger.web.api.reports import oversight
from faceledger.web.deps import App, Overseer
from faceledger.web.errors import ApiError
from faceledger.web.pages.answers import back, refused
from faceledger.web.pages.held import add_picker, current, held_photo, release
from faceledger.web.pages.render import NavItem, page
from faceledger.web.services import Services

router = APIRouter()
NAV_ITEMS = (NavItem("Reports", "/reports", ("admin", "auditor")),)
SLOT = "subject"
add_picker(router, "/reports/subject", SLOT, Overseer)


class Days(BaseModel):
    """The days asked for, both included (the report itself takes an excluded end)."""

    start: dt.date | None = None
    until: dt.date | None = None
    timezone: str = Field(default="UTC", max_length=100)


def body_of(document: str) -> Markup:
    """The inside of a report's <body> (the templates are ours, escaped by their renderer)."""
    inner = document.split("<body>", 1)[1].rsplit("</body>", 1)[0]
    return Markup(inner)


def _oversight(app: Services, user: User, start: dt.date, end: dt.date, zone: str) -> Markup:
    """The report for [start, end) as the API makes it (ledgered), ready to embed."""
    made = oversight(app, user, start, end, zone, "html")
    assert isinstance(made, Response)  # the html format is a document
    return body_of(bytes(made.body).decode("utf-8"))


@router.get("/reports", response_class=HTMLResponse)
def reports(
    request: Request, app: App, user: Overseer, period: Annotated[Days, Query()]
) -> Response:
    """The form for a period and, once one is given, its report."""
    if period.start is None or period.until is None:
        today = utcnow().date()
        blank = Days(start=today - dt.timedelta(days=30), until=today)
        return page(request, "web/reports.html", user, period=blank, report=None)
    end = period.until + dt.timedelta(days=1)
    try:
        report = _oversight(app, user, period.start, end, period.timezone)
    except ApiError as problem:
        return back(request, "/reports", str(problem), "error")
    query = {"start": period.start, "end": end, "timezone": period.timezone, "format": "html"}
    return page(
        request,
        "web/reports.html",
        user,
        period=period,
        report=report,
        printable=f"/api/v1/reports/oversight?{urlencode(query)}",
    )


@router.get("/reports/subject", response_class=HTMLResponse)
def subject_form(request: Request, app: App, user: Overseer) -> HTMLResponse:
    return page(request, "web/subject.html", user, held=current(request, app, SLOT), report=None)


@router.post("/reports/subject", response_model=None)
def subject(
    request: Request,
    app: App,
    user: Overseer,
    face: Annotated[int | None, Form(ge=1)] = None,
) -> Response:
    """Where the chosen face is held and which searches returned it (ledgered)."""
    held = held_photo(request, app, SLOT)
    if held is None:
        return back(request, "/reports/subject", "Upload a photo first.", "error")
    pipeline = app.search.engine.pipeline
    try:
        with app.workspace.sessions() as session:
            made = subject_report(app.workspace, pipeline, session, user, held[1], face=face)
            session.commit()
    except FaceledgerError as problem:
        return refused(request, "/reports/subject", problem)
    release(request, app, SLOT)
    report = body_of(render_subject(made))
    return page(request, "web/subject.html", user, held=None, report=report)
