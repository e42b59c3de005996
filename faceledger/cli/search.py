"""Commands that search: `search` (and, with the accountable service, requests and reviews)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from faceledger.cli.app import (
    EXIT_BAD_IMAGE,
    EXIT_CHOOSE_FACE,
    EXIT_NOT_FOUND,
    EXIT_REFUSED,
    JsonOption,
    app,
    err,
    fail,
    out,
    settings_of,
)
from faceledger.faces.decode import ImageRejected
from faceledger.search.engine import (
    FaceChoiceRequired,
    Match,
    ProbeRefused,
    SearchEngine,
    UnknownCollection,
    check_adult,
    choose_face,
)
from faceledger.workspace import Workspace


def _faces_table(engine_faces: list[Any]) -> Table:
    table = Table("face", "box (left, top, width, height)", "estimated age", "quality")
    for number, face in enumerate(engine_faces, 1):
        table.add_row(
            str(number), str(face.box.as_list()), f"{face.age:.0f}", f"{face.quality:.2f}"
        )
    return table


def _results_table(matches: list[Match]) -> Table:
    table = Table("#", "score", "box", "captured")
    table.add_column("image", overflow="fold")
    table.add_column("page", overflow="fold")
    for rank, match in enumerate(matches, 1):
        table.add_row(
            str(rank),
            f"{match.score:.3f}",
            str(match.box),
            match.captured_at.date().isoformat() if match.captured_at else "-",
            match.image_url,
            match.page_url or "-",
        )
    return table


@app.command()
def search(
    ctx: typer.Context,
    photo: Annotated[Path, typer.Argument(help="The probe photo.", exists=True, dir_okay=False)],
    collection: Annotated[
        list[str], typer.Option("--collection", "-c", help="Collection(s) to search.")
    ],
    face: Annotated[
        int | None, typer.Option("--face", help="Which face of the probe (1-based).")
    ] = None,
    top: Annotated[int, typer.Option("--top", "-k", min=1, help="At most this many results.")] = 10,
    threshold: Annotated[
        float | None, typer.Option(help="Minimum similarity (default: the calibrated one).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Find where the face in PHOTO appears in the collections."""
    from faceledger.faces.pipeline import FacePipeline

    settings = settings_of(ctx)
    workspace = Workspace(settings)
    engine = SearchEngine(workspace, FacePipeline(settings, threads=2))
    try:
        faces = engine.probe_faces(photo.read_bytes())
        chosen = choose_face(faces, face)
        check_adult(chosen, engine.gate)
        matches = engine.search(
            collection,
            chosen.embedding,
            top,
            settings.match_threshold if threshold is None else threshold,
        )
    except ImageRejected as error:
        raise fail(
            str(error), EXIT_BAD_IMAGE, as_json, error="bad_image", reason=error.reason
        ) from None
    except FaceChoiceRequired as error:
        if not as_json:
            err.print(_faces_table(error.faces))
        raise fail(
            str(error),
            EXIT_CHOOSE_FACE,
            as_json,
            error=error.code,
            faces=[
                {"face": n, "box": f.box.as_list(), "estimated_age": f.age}
                for n, f in enumerate(error.faces, 1)
            ],
        ) from None
    except ProbeRefused as error:
        raise fail(str(error), EXIT_REFUSED, as_json, error=error.code) from None
    except UnknownCollection as error:
        raise fail(str(error), EXIT_NOT_FOUND, as_json, error="not_found") from None
    if as_json:
        print(
            json.dumps(
                {
                    "probe": {
                        "faces": len(faces),
                        "face": faces.index(chosen) + 1,
                        "box": chosen.box.as_list(),
                    },
                    "threshold": settings.match_threshold if threshold is None else threshold,
                    "results": [m.as_dict() for m in matches],
                }
            )
        )
        return
    if not matches:
        out.print("No face at or above the threshold.")
        return
    out.print(_results_table(matches))
