"""Choosing the face in a photo someone hands a command, and the exits when that fails.

`search`, `optout add` and `subject report` all take a photo and a `--face N`; they share
one numbering (largest face first), one listing of the faces and one set of exits.
"""

from __future__ import annotations

import typer
from rich.table import Table

from faceledger.cli.app import EXIT_BAD_IMAGE, EXIT_CHOOSE_FACE, EXIT_REFUSED, err, fail
from faceledger.faces.decode import ImageRejected
from faceledger.faces.types import FaceRecord
from faceledger.search.engine import FaceChoiceRequired, ProbeRefused, SearchEngine, choose_face
from faceledger.workspace import Workspace


def faces_listing(error: FaceChoiceRequired, as_json: bool) -> typer.Exit:
    """List the faces found (table on stderr, or JSON) and exit 5 asking for --face N."""
    faces = [
        {"face": n, "box": f.box.as_list(), "estimated_age": round(f.age, 1)}
        for n, f in enumerate(error.faces, 1)
    ]
    if not as_json:
        table = Table("face", "box (left, top, width, height)", "estimated age")
        for face in faces:
            table.add_row(str(face["face"]), str(face["box"]), f"{face['estimated_age']:.0f}")
        err.print(table)
    return fail(str(error), EXIT_CHOOSE_FACE, as_json, error=error.code, faces=faces)


def probe_face(workspace: Workspace, data: bytes, number: int | None, as_json: bool) -> FaceRecord:
    """The chosen face of a photo, of any age (the caller decides what age means), else exit."""
    from faceledger.faces.pipeline import FacePipeline

    engine = SearchEngine(workspace, FacePipeline(workspace.settings, threads=2))
    try:
        with err.status("analysing the photo"):
            return choose_face(engine.probe_faces(data), number)
    except ImageRejected as error:
        raise fail(
            str(error), EXIT_BAD_IMAGE, as_json, error="bad_image", reason=error.reason
        ) from None
    except FaceChoiceRequired as error:
        raise faces_listing(error, as_json) from None
    except ProbeRefused as error:
        raise fail(str(error), EXIT_REFUSED, as_json, error=error.code) from None
