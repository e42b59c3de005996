"""Photos uploaded to a page before anyone acts on them: held briefly, shown back, deleted.

A search (an opt-out, a subject report) starts with a photo whose faces the person must see
before choosing one, so the photo is analysed and shown back before anything is asked for,
and nothing is recorded yet. It is kept in a file under DATA_DIR/web-held (owner-only),
named by a random token that only the uploading browser session holds (in its signed
cookie, one slot per page), and deleted when the page's form is sent, when another photo
replaces it, when it is discarded, and in any case HOLD_MINUTES after upload (every use of
a photo page sweeps older files away, whoever left them).

`add_picker` gives a page the routes of its photo: upload, the photo shown back (a small
re-encoded JPEG without metadata), each face cropped, discard.
"""

import io
import json
import os
import re
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from PIL import Image

from faceledger.faces.decode import DecodeLimits, ImageRejected, decode_image
from faceledger.faces.types import FaceRecord
from faceledger.search.engine import MinorProbe, check_adult
from faceledger.web.crops import crop_face
from faceledger.web.deps import App, rate_limit
from faceledger.web.errors import ApiError
from faceledger.web.pages.answers import back
from faceledger.web.services import Services
from faceledger.web.uploads import read_photo

HOLD_MINUTES = 30
PREVIEW_SIDE = 960
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32,64}")


@dataclass(frozen=True)
class FoundFace:
    """A face found in a held photo, numbered as the search service numbers them."""

    number: int
    box: list[int]
    age: float
    adult: bool


@dataclass(frozen=True)
class Held:
    token: str
    width: int
    height: int
    faces: list[FoundFace]


@dataclass(frozen=True)
class Preview:
    """A photo as a page shows it: small JPEG, upright, no metadata; boxes use full size."""

    jpeg: bytes
    width: int
    height: int


def preview(data: bytes, limits: DecodeLimits) -> Preview:
    """Raises ImageRejected for what the decoder refuses."""
    decoded = decode_image(data, limits, max_long_side=PREVIEW_SIDE)
    image = Image.fromarray(decoded.rgb)
    image.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return Preview(buffer.getvalue(), decoded.width, decoded.height)


class HeldPhotos:
    """The folder of held photos: `<token>.photo` and `<token>.json` (size and faces)."""

    def __init__(self, folder: Path, minutes: int = HOLD_MINUTES) -> None:
        self.folder, self.seconds = folder, minutes * 60

    def put(self, data: bytes, width: int, height: int, faces: list[FoundFace]) -> str:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        token = secrets.token_urlsafe(32)
        meta = {"width": width, "height": height, "faces": [asdict(face) for face in faces]}
        self._write(token, ".json", json.dumps(meta).encode())
        self._write(token, ".photo", data)
        return token

    def get(self, token: str | None) -> Held | None:
        """The held photo's description, or None once it is gone or too old."""
        path = self._path(token, ".json")
        if path is None or not path.is_file():
            return None
        if time.time() - path.stat().st_mtime > self.seconds:
            self.drop(token)
            return None
        meta = json.loads(path.read_text())
        faces = [FoundFace(**face) for face in meta["faces"]]
        return Held(str(token), meta["width"], meta["height"], faces)

    def photo(self, token: str | None) -> bytes | None:
        path = self._path(token, ".photo")
        if self.get(token) is None or path is None or not path.is_file():
            return None
        return path.read_bytes()

    def drop(self, token: str | None) -> None:
        for suffix in (".photo", ".json"):
            path = self._path(token, suffix)
            if path is not None:
                path.unlink(missing_ok=True)

    def sweep(self) -> None:
        """Delete every held file older than the hold time."""
        if not self.folder.is_dir():
            return
        cutoff = time.time() - self.seconds
        for path in self.folder.iterdir():
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
            except FileNotFoundError:  # another request swept it first
                pass

    def _path(self, token: str | None, suffix: str) -> Path | None:
        if not token or not _TOKEN.fullmatch(token):
            return None
        return self.folder / f"{token}{suffix}"

    def _write(self, token: str, suffix: str, data: bytes) -> None:
        descriptor = os.open(self.folder / f"{token}{suffix}", os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)


def held_photos(app: Services) -> HeldPhotos:
    """The store, swept of photos past their time (so they go even if nobody uploads)."""
    store = HeldPhotos(app.settings.data_dir / "web-held")
    store.sweep()
    return store


def slot_key(slot: str) -> str:
    return f"held:{slot}"


def current(request: Request, app: Services, slot: str) -> Held | None:
    """The photo this session holds for `slot`, if still held."""
    return held_photos(app).get(request.session.get(slot_key(slot)))


def held_photo(request: Request, app: Services, slot: str) -> tuple[Held, bytes] | None:
    """The photo this session holds for `slot`, with its bytes."""
    store, token = held_photos(app), request.session.get(slot_key(slot))
    held, data = store.get(token), store.photo(token)
    return (held, data) if held is not None and data is not None else None


def release(request: Request, app: Services, slot: str) -> None:
    """Forget and delete the photo held for `slot` (the page has acted on it)."""
    held_photos(app).drop(request.session.pop(slot_key(slot), None))


def _found(app: Services, faces: list[FaceRecord]) -> list[FoundFace]:
    gate = app.search.engine.gate

    def adult(face: FaceRecord) -> bool:
        try:
            check_adult(face, gate)
        except MinorProbe:
            return False
        return True

    return [
        FoundFace(number, face.box.as_list(), round(face.age, 1), adult(face))
        for number, face in enumerate(faces, 1)
    ]


def add_picker(router: APIRouter, page: str, slot: str, person: Any) -> None:
    """Add `page`/photo routes (upload, show, faces, discard); `person` is the dependency
    (an `Annotated[User, Depends(...)]`) that admits who may use the page."""

    @router.post(f"{page}/photo")
    def upload(
        request: Request,
        app: App,
        user: person,
        photo: Annotated[UploadFile, File(description="A photo of the person.")],
    ) -> RedirectResponse:
        """Find the faces in a photo and hold it for the page (nothing is recorded yet)."""
        rate_limit(app.search_limit, f"user:{user.id}")  # it runs the face pipeline
        try:
            data = read_photo(photo, app.config.upload)
            shown = preview(data, app.config.upload)
            faces = app.search.engine.probe_faces(data)
        except (ApiError, ImageRejected) as problem:
            return back(request, page, f"That photo cannot be used: {problem}", "error")
        if not faces:
            return back(request, page, "No face was found in that photo: try another.", "error")
        release(request, app, slot)
        token = held_photos(app).put(data, shown.width, shown.height, _found(app, faces))
        request.session[slot_key(slot)] = token
        return RedirectResponse(page, status_code=303)

    def held_bytes(request: Request, app: Services) -> tuple[Held, bytes]:
        found = held_photo(request, app, slot)
        if found is None:
            raise ApiError(404, "not_found", "no photo is held for this page: upload one")
        return found

    @router.get(f"{page}/photo", response_class=Response)
    def shown(request: Request, app: App, _user: person) -> Response:
        """The held photo, small and without its metadata."""
        _held, data = held_bytes(request, app)
        return Response(preview(data, app.config.upload).jpeg, media_type="image/jpeg")

    @router.get(f"{page}/photo/faces/{{number}}", response_class=Response)
    def face(request: Request, app: App, _user: person, number: int) -> Response:
        """One face of the held photo, cropped."""
        held, data = held_bytes(request, app)
        chosen = next((f for f in held.faces if f.number == number), None)
        if chosen is None:
            raise ApiError(404, "not_found", f"the held photo has no face {number}")
        return Response(crop_face(data, chosen.box, app.config.upload), media_type="image/jpeg")

    @router.post(f"{page}/photo/discard")
    def discard(request: Request, app: App, _user: person) -> RedirectResponse:
        release(request, app, slot)
        return back(request, page, "The photo was discarded.", "info")
