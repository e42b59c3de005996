"""The ledger: entries with payloads (admins and auditors), verification (anyone signed in),
and the self-checking export bundle as a zip (ledgered, like `faceledger ledger export`)."""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from faceledger.ledger import keys
from faceledger.ledger.export import FORMAT_VERSION, export_bundle
from faceledger.ledger.log import append
from faceledger.ledger.verify import find_records, verify
from faceledger.web.deps import Actor, App, Overseer

router = APIRouter(tags=["ledger"])

MAX_PAGE = 1000


@router.get("/ledger")
def entries(
    app: App,
    _user: Overseer,
    action: str | None = None,
    actor: str | None = None,
    subject: str | None = None,
    first: Annotated[int | None, Query(ge=1, description="Lowest seq.")] = None,
    last: Annotated[int | None, Query(ge=1, description="Highest seq.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> dict[str, Any]:
    """Entries matching every filter, oldest first; `next` is the `first` of the next page."""
    with app.workspace.sessions() as session:
        found = find_records(
            session,
            action=action,
            actor=actor,
            subject=subject,
            first=first,
            last=last,
            limit=limit,
        )
    following = found[-1]["seq"] + 1 if len(found) == limit else None
    return {"entries": found, "next": following}


@router.get("/ledger/verify")
def check(app: App, _user: Actor) -> dict[str, Any]:
    """Whether the chain holds and which entry breaks it (no payloads)."""
    with app.workspace.sessions() as session:
        return verify(session, keys.existing_public_key(app.settings)).as_dict()


@router.post("/ledger/export", response_class=Response)
def export(app: App, user: Overseer) -> Response:
    """The bundle (entries, checkpoints, key, verify.py) as a zip; the export is ledgered."""
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory() as folder, app.workspace.sessions() as session:
        target = Path(folder) / "bundle"
        details = {"format_version": FORMAT_VERSION, "via": "api"}
        append(session, actor=user.name, action="ledger.export", subject="api", payload=details)
        export_bundle(session, app.settings, target)
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(target.iterdir()):
                archive.write(path, f"ledger-bundle/{path.name}")
        session.commit()
    headers = {"Content-Disposition": 'attachment; filename="ledger-bundle.zip"'}
    return Response(buffer.getvalue(), media_type="application/zip", headers=headers)
