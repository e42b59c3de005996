"""Commands over the face engine: ingest, search, collections, demo."""

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
    WorkersOption,
    app,
    err,
    fail,
    out,
    progress_bar,
    settings_of,
)
from faceledger.config import Settings
from faceledger.demo import plan_demo
from faceledger.faces.decode import DecodeLimits, ImageRejected
from faceledger.ingest.files import expand, iter_items
from faceledger.ingest.job import IngestJob, IngestSummary
from faceledger.search.engine import (
    FaceChoiceRequired,
    Match,
    ProbeRefused,
    SearchEngine,
    UnknownCollection,
    check_adult,
    choose_face,
)
from faceledger.store import repo
from faceledger.workspace import Workspace


def run_ingest(
    settings: Settings,
    paths: list[Path],
    collection: str,
    workers: int | None,
    index_review_band: bool = False,
) -> IngestSummary:
    """Run an ingest job with a progress bar on stderr."""
    images, archives = expand(paths)
    with progress_bar() as progress:
        task = progress.add_task("ingest", total=None if archives else len(images), status="")

        def update(summary: IngestSummary) -> None:
            status = f"{summary.faces_indexed} faces, {len(summary.errors)} errors"
            progress.update(task, completed=summary.done, status=status)

        job = IngestJob(
            Workspace(settings),
            collection,
            index_review_band=index_review_band,
            workers=workers or settings.workers,
            on_item=update,
        )
        return job.run(iter_items(images, archives, DecodeLimits().max_bytes))


def print_summary(summary: IngestSummary) -> None:
    data = summary.as_dict()
    out.print(
        f"[bold]{data['collection']}[/]: {data['images']} images read, "
        f"{data['images_with_faces']} with faces, [green]{data['faces_indexed']} faces indexed[/] "
        f"in {data['seconds']} s ({data['images_per_second'] or 0} images/s)"
    )
    for reason, count in data["skipped"].items():
        out.print(f"  skipped {count}: {reason.replace('_', ' ')}")
    for error in data["errors"]:
        out.print(f"  [red]error[/] {error['source']}: {error['reason']}: {error['message']}")


@app.command()
def ingest(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Folders, image files or WARC/ARC files.")],
    collection: Annotated[str, typer.Option("--collection", "-c", help="Collection to fill.")],
    workers: WorkersOption = None,
    index_review_band: Annotated[
        bool,
        typer.Option(help="Also index faces in the age review band (an adult was attested)."),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Index the faces in folders, images and web archives (resumable, skips duplicates)."""
    try:
        summary = run_ingest(settings_of(ctx), paths, collection, workers, index_review_band)
    except FileNotFoundError as error:
        raise fail(str(error), EXIT_NOT_FOUND, as_json, error="not_found") from None
    if as_json:
        print(json.dumps(summary.as_dict()))
    else:
        print_summary(summary)


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


@app.command()
def collections(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List collections with their image and face counts."""
    workspace = Workspace(settings_of(ctx))
    with workspace.sessions() as session:
        rows = [
            {
                "name": c.name,
                "images": images,
                "faces": faces,
                "created_at": c.created_at.isoformat(),
            }
            for c, images, faces in repo.list_collections(session)
        ]
    if as_json:
        print(json.dumps({"collections": rows}))
        return
    table = Table("collection", "images", "faces", "created")
    for row in rows:
        table.add_row(row["name"], str(row["images"]), str(row["faces"]), row["created_at"][:19])
    out.print(table)


@app.command()
def demo(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(help="A folder of Person/*.jpg photos.")],
    people: Annotated[int, typer.Option(help="How many people to index.")] = 60,
    workers: WorkersOption = None,
) -> None:
    """Build the 'demo' collection from FOLDER and search it with a held-out photo."""
    settings = settings_of(ctx)
    try:
        plan = plan_demo(folder, people)
    except (FileNotFoundError, ValueError) as error:
        raise fail(str(error), EXIT_NOT_FOUND, False) from None
    out.print(f"Indexing {len(plan.gallery)} photos of {people} people into collection 'demo'")
    print_summary(run_ingest(settings, plan.gallery, "demo", workers))
    out.print(f"\nSearching for the face in {plan.probe} (held out of the collection):")
    ctx.invoke(
        search,
        ctx=ctx,
        photo=plan.probe,
        collection=["demo"],
        face=1,
        top=10,
        threshold=None,
        as_json=False,
    )
