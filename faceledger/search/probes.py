"""Probe photos on disk: one file per request, readable only by the owner, deleted on schedule.

The ledger keeps the probe's hash for ever; the bytes are kept only while retention allows
(Art. 12(3) asks for the input data "as long as retention allows"), and never for a
refused request.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from faceledger.auth.roles import Role, has_role
from faceledger.config import Settings
from faceledger.search.outcome import ServiceRefusal
from faceledger.store.models import SearchRequest, User


def probe_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def store(settings: Settings, request_id: int, data: bytes) -> str:
    """Write the probe for a request; return its file name (relative to the probe folder)."""
    folder = settings.probe_dir
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    name = f"request-{request_id}.probe"
    descriptor = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    return name


def path_of(settings: Settings, name: str) -> Path:
    return settings.probe_dir / Path(name).name


def load(settings: Settings, name: str | None) -> bytes | None:
    """The stored probe, or None once retention (or a refusal) has deleted it."""
    if not name:
        return None
    path = path_of(settings, name)
    return path.read_bytes() if path.is_file() else None


def delete(settings: Settings, name: str | None) -> None:
    if name:
        path_of(settings, name).unlink(missing_ok=True)


def viewable(settings: Settings, row: SearchRequest, user: User) -> bytes:
    """The probe of `row` if `user` asked for it or approves searches, while it is kept."""
    if row.requester_id != user.id and not has_role(user, Role.APPROVER):
        raise ServiceRefusal(
            "not_allowed", f"{user.name} may not see the probe of request {row.id}"
        )
    data = load(settings, row.probe_file)
    if data is None:
        raise ServiceRefusal("probe_expired", f"the probe of request {row.id} is no longer kept")
    return data
