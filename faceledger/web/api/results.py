"""One result: a person's final confirm/reject, and the face crop shown beside it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool

from faceledger.store.models import User
from faceledger.web.api.schemas import Review
from faceledger.web.crops import Shown, crop_face, fetch_source, shown_face
from faceledger.web.deps import Actor, App
from faceledger.web.services import Services

router = APIRouter(tags=["results"])


@router.post("/results/{result_id}/review")
def review(app: App, user: Actor, result_id: int, body: Review) -> dict[str, Any]:
    """Confirm or reject a match (final, blind, ledgered); two people confirm a match."""
    return app.search.review(user, result_id, body.decision).as_dict()


def _shown(app: Services, user: User, result_id: int) -> Shown:
    with app.workspace.sessions() as session:
        return shown_face(session, user, result_id)


@router.get("/results/{result_id}/face", response_class=Response)
async def face(app: App, user: Actor, result_id: int) -> Response:
    """The face of a result you were shown, cut from its source now (not stored)."""
    shown = await run_in_threadpool(_shown, app, user, result_id)
    data = await fetch_source(shown.image_url, app.settings, app.config.upload)
    jpeg = await run_in_threadpool(crop_face, data, shown.box, app.config.upload)
    return Response(jpeg, media_type="image/jpeg")
