"""Oversight reports for a period and data-subject reports (auditors and admins; ledgered)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Query, Response
from fastapi.responses import HTMLResponse

from faceledger.ledger import keys
from faceledger.reports.oversight import oversight_report
from faceledger.reports.records import Period
from faceledger.reports.render import render_oversight
from faceledger.reports.signals import SignalRules
from faceledger.reports.subject import subject_report
from faceledger.web.api.photos import FaceNumber, Photo
from faceledger.web.deps import App, Overseer
from faceledger.web.errors import ApiError
from faceledger.web.security import DOCUMENT_CSP
from faceledger.web.uploads import read_photo

router = APIRouter(tags=["reports"])


@router.get("/reports/oversight", response_model=None)
def oversight(
    app: App,
    user: Overseer,
    start: Annotated[dt.date, Query(description="First day (UTC) included.")],
    end: Annotated[dt.date, Query(description="First day (UTC) no longer included.")],
    timezone: Annotated[str, Query(description="Zone of the working hours.")] = "UTC",
    format: Literal["json", "html"] = "json",
) -> dict[str, Any] | Response:
    """Use, outcomes, people affected and misuse signals for [start, end); the HTML page
    (charts inline, no script) is served under a CSP that allows no script at all."""
    try:
        period = Period.days(start, end)
        rules = SignalRules(
            zone=ZoneInfo(timezone), same_face_threshold=app.settings.match_threshold
        )
    except (ValueError, ZoneInfoNotFoundError) as problem:
        raise ApiError(422, "invalid_request", str(problem)) from None
    public_key = keys.existing_public_key(app.settings)
    with app.workspace.sessions() as session:
        made = oversight_report(session, user, period, public_key=public_key, rules=rules)
        session.commit()
    if format == "json":
        return made.as_dict()
    return HTMLResponse(render_oversight(made), headers={"Content-Security-Policy": DOCUMENT_CSP})


@router.post("/reports/subject")
def subject(app: App, user: Overseer, photo: Photo, face: FaceNumber = None) -> dict[str, Any]:
    """Where this person's face is held and which searches returned it (who, when, why)."""
    data = read_photo(photo, app.config.upload)
    pipeline = app.search.engine.pipeline
    with app.workspace.sessions() as session:
        made = subject_report(app.workspace, pipeline, session, user, data, face=face)
        session.commit()
    return made.as_dict()
