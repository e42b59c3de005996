"""The opt-out registry: admins record and lift opt-outs; auditors may list them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form

from faceledger.policy.optouts import add_optout, list_optouts, remove_optout
from faceledger.search.engine import choose_face
from faceledger.search.probes import probe_hash
from faceledger.store.models import Collection
from faceledger.web.api.photos import FaceNumber, Photo
from faceledger.web.api.schemas import OptOutRemoval
from faceledger.web.deps import Admin, App, Overseer
from faceledger.web.uploads import read_photo

router = APIRouter(tags=["opt-outs"])


@router.get("/optouts")
def listing(app: App, user: Overseer) -> dict[str, Any]:
    with app.workspace.sessions() as session:
        return {"optouts": [info.as_dict() for info in list_optouts(session, user)]}


@router.post("/optouts", status_code=201)
def record(
    app: App,
    user: Admin,
    photo: Photo,
    face: FaceNumber = None,
    label: Annotated[
        str | None, Form(max_length=200, description="A reference, not a name.")
    ] = None,
) -> dict[str, Any]:
    """Opt the person in the photo out: their faces are purged now and skipped from now on."""
    data = read_photo(photo, app.config.upload)
    chosen = choose_face(app.search.engine.probe_faces(data), face)
    with app.workspace.sessions() as session:
        optout, purge = add_optout(
            app.workspace, session, user, chosen.embedding, label, probe_hash(data)
        )
        purged = {session.get_one(Collection, cid).name: n for cid, n in purge.counts.items()}
        session.commit()
    purge.apply_to_indexes()
    return {"id": optout.id, "label": label, "photo_hash": probe_hash(data), "purged": purged}


@router.post("/optouts/{optout_id}/remove")
def remove(app: App, user: Admin, optout_id: int, body: OptOutRemoval) -> dict[str, Any]:
    """Stop honouring an opt-out (faces already purged stay purged)."""
    with app.workspace.sessions() as session:
        optout = remove_optout(session, user, optout_id, body.reason)
        session.commit()
        removed = optout.removed_at.isoformat() if optout.removed_at else None
    return {"id": optout.id, "removed_at": removed}
