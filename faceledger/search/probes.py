"""Probe photos on disk: one file per request, readable only by the owner, deleted on schedule.

The ledger keeps the probe's hash for ever; the bytes are kept only while retention allows
(Art. 12(3) asks for the input data "as long as retention allows"), and never for a
refused request.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from faceledger.config import Settings


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
