"""The opt-out registry: admins record an opt-out from a photo (the person's faces are purged
at once and skipped from then on) or lift one with a reason; auditors read the list.

The photo is held only while the admin picks the face (see `held`); the registry keeps the
face's template and the ledger the photo's hash, never the photo.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from faceledger.errors import FaceledgerError
from faceledger.policy.optouts import add_optout, list_optouts, remove_optout
from faceledger.search.engine import choose_face
from faceledger.search.probes import probe_hash
from faceledger.web.deps import Admin, App, Overseer
from faceledger.web.pages.answers import back, refused
from faceledger.web.pages.held import add_picker, current, held_photo, release
from faceledger.web.pages.render import NavItem, page

router = APIRouter()
NAV_ITEMS = (NavItem("Opt-outs", "/optouts", ("admin", "auditor")),)
SLOT = "optout"
add_picker(router, "/optouts", SLOT, Admin)


@router.get("/optouts", response_class=HTMLResponse)
def optouts(request: Request, app: App, user: Overseer) -> HTMLResponse:
    with app.workspace.sessions() as session:
        registry = [info.as_dict() for info in list_optouts(session, user)]
    registry.reverse()  # newest first
    held = current(request, app, SLOT) if "admin" in user.roles else None
    return page(request, "web/optouts.html", user, registry=registry, held=held)


@router.post("/optouts")
def record(
    request: Request,
    app: App,
    user: Admin,
    face: Annotated[int | None, Form(ge=1)] = None,
    label: Annotated[str | None, Form(max_length=200)] = None,
) -> RedirectResponse:
    """Opt the chosen person out: their faces are purged now and skipped from now on."""
    held = held_photo(request, app, SLOT)
    if held is None:
        return back(request, "/optouts", "Upload a photo first.", "error")
    data = held[1]
    try:
        chosen = choose_face(app.search.engine.probe_faces(data), face)
        with app.workspace.sessions() as session:
            optout, purge = add_optout(
                app.workspace, session, user, chosen.embedding, label or None, probe_hash(data)
            )
            optout_id = optout.id
            session.commit()
    except FaceledgerError as problem:
        return refused(request, "/optouts", problem)
    purge.apply_to_indexes()
    release(request, app, SLOT)
    purged = sum(purge.counts.values())
    return back(request, "/optouts", f"Opt-out {optout_id} recorded; {purged} faces purged.")


@router.post("/optouts/{optout_id}/remove")
def remove(
    request: Request,
    app: App,
    user: Admin,
    optout_id: int,
    reason: Annotated[str, Form(max_length=4000)],
) -> RedirectResponse:
    """Stop honouring an opt-out (faces already purged stay purged)."""
    try:
        with app.workspace.sessions() as session:
            remove_optout(session, user, optout_id, reason)
            session.commit()
    except FaceledgerError as problem:
        return refused(request, "/optouts", problem)
    return back(request, "/optouts", f"Opt-out {optout_id} lifted.")
