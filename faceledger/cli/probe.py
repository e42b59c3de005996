"""Choosing the face in a photo someone hands a command.

`search`, `optout add` and `subject report` all take a photo and a `--face N`; they share
one numbering (largest face first) and the same refusals (`bad_image`, `choose_face`, ...).
"""

from __future__ import annotations

from faceledger.cli.app import err
from faceledger.faces.types import FaceRecord
from faceledger.search.engine import SearchEngine, choose_face
from faceledger.workspace import Workspace


def probe_face(workspace: Workspace, data: bytes, number: int | None) -> FaceRecord:
    """The chosen face of a photo, of any age (the caller decides what age means)."""
    from faceledger.faces.pipeline import FacePipeline

    engine = SearchEngine(workspace, FacePipeline(workspace.settings, threads=2))
    with err.status("analysing the photo"):
        return choose_face(engine.probe_faces(data), number)
