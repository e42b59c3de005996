"""Search requests: ask, list, read, decide, run, authorise, export, and the probe photo.

Each route is one `SearchService` call, so the API answers as `faceledger search --json`
and `faceledger request ... --json` print: `SearchOutcome.as_dict()` and the results view's
`as_dict()`. A refused search is still a recorded request: its answer is that same JSON
(request_id, status "refused", refusal_code, reason) plus `error` and `message`, with a
4xx status. Who may do what is the service's decision; the routes only authenticate.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Response, UploadFile
from fastapi.responses import JSONResponse

from faceledger.faces.decode import sniff_format
from faceledger.search.outcome import SearchOutcome
from faceledger.search.requests import load_request, require_view, visible_requests
from faceledger.search.review import request_summary
from faceledger.web.api.schemas import Authorisation, Decision, Export, Run
from faceledger.web.deps import Actor, App, rate_limit
from faceledger.web.errors import upload_status
from faceledger.web.uploads import read_photo

router = APIRouter(tags=["searches"])

Text = Annotated[str | None, Form(max_length=4000)]


def answer(outcome: SearchOutcome, status: int = 200, upload: bytes | None = None) -> JSONResponse:
    """An outcome as the CLI prints it; a refusal adds `error`/`message` and a 4xx status."""
    body: dict[str, Any] = outcome.as_dict()
    refusal = outcome.refusal()
    if refusal is not None:
        body |= {"error": refusal.code, "message": outcome.reason}
        status = upload_status(refusal, upload)
    return JSONResponse(body, status)


@router.post("/searches", status_code=201)
def ask(
    app: App,
    user: Actor,
    photo: Annotated[UploadFile, File(description="The probe photo.")],
    collection: Annotated[list[str] | None, Form(description="Collection(s) to search.")] = None,
    purpose: Text = None,
    case: Text = None,
    justification: Text = None,
    face: Annotated[int | None, Form(ge=1, description="Which face (1-based).")] = None,
) -> JSONResponse:
    """Ask for a search: 201 when it ran or waits for approval, 4xx when refused (ledgered)."""
    rate_limit(app.search_limit, f"user:{user.id}")
    data = read_photo(photo, app.config.upload)
    outcome = app.search.request(
        user,
        data,
        collections=collection or [],
        purpose=purpose,
        case_ref=case,
        justification=justification,
        face=face,
    )
    return answer(outcome, 201, data)


@router.get("/searches")
def listing(app: App, user: Actor, status: str | None = None) -> dict[str, Any]:
    """Your requests; an approver sees every request (the inbox is `?status=pending`)."""
    with app.workspace.sessions() as session:
        rows = visible_requests(session, user, status)
        return {"requests": [request_summary(session, row) for row in rows]}


@router.get("/searches/{request_id}")
def summary(app: App, user: Actor, request_id: int) -> dict[str, Any]:
    """One request (no results): for whoever may see it."""
    with app.workspace.sessions() as session:
        row = load_request(session, request_id)
        require_view(session, user, row)
        return request_summary(session, row)


@router.get("/searches/{request_id}/results")
def results(app: App, user: Actor, request_id: int) -> dict[str, Any]:
    """The results as you may see them; the view is ledgered and each face registered."""
    return app.search.results(user, request_id).as_dict()


@router.post("/searches/{request_id}/approve")
def approve(app: App, user: Actor, request_id: int, body: Decision) -> JSONResponse:
    return answer(app.search.approve(user, request_id, body.reason))


@router.post("/searches/{request_id}/deny")
def deny(app: App, user: Actor, request_id: int, body: Decision) -> JSONResponse:
    return answer(app.search.deny(user, request_id, body.reason))


@router.post("/searches/{request_id}/run")
def run(app: App, user: Actor, request_id: int, body: Run | None = None) -> JSONResponse:
    """Run an approved request, once (the requester)."""
    collections = body.collections if body else None
    return answer(app.search.run(user, request_id, collections=collections))


@router.post("/searches/{request_id}/authorise")
def authorise(app: App, user: Actor, request_id: int, body: Authorisation) -> JSONResponse:
    """Record the external authority's reference, or its refusal (approver or admin)."""
    outcome = app.search.record_authorisation(user, request_id, body.reference, body.granted)
    return answer(outcome)


@router.post("/searches/{request_id}/evidence")
def evidence(app: App, user: Actor, request_id: int, body: Export | None = None) -> Response:
    """The evidence sheet (JSON, or the printable HTML as a download); ledgered."""
    body = body or Export()
    with tempfile.TemporaryDirectory() as folder:
        written = app.search.export(user, request_id, Path(folder), body.candidates)
        sheet, html = (path.read_text(encoding="utf-8") for path in written)
    if body.format == "json":
        return JSONResponse(json.loads(sheet))
    disposition = f'attachment; filename="evidence-request-{request_id}.html"'
    return Response(html, media_type="text/html", headers={"Content-Disposition": disposition})


@router.get("/searches/{request_id}/probe", response_class=Response)
def probe(app: App, user: Actor, request_id: int) -> Response:
    """The probe photo while it is kept (the requester or an approver); each view ledgered."""
    data = app.search.probe_photo(user, request_id)
    kind = (sniff_format(data) or "octet-stream").lower()
    media = "application/octet-stream" if kind == "octet-stream" else f"image/{kind}"
    return Response(data, media_type=media, headers={"Content-Disposition": "inline"})
