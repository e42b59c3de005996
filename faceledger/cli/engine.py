"""Commands over the face engine: ingest, search, collections, demo."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from faceledger.cli.app import (
    EXIT_NOT_FOUND,
    JsonOption,
    WorkersOption,
    app,
    fail,
    out,
    progress_bar,
    settings_of,
)
from faceledger.config import Settings
from faceledger.demo import plan_demo
from faceledger.faces.decode import DecodeLimits
from faceledger.ingest.files import expand, iter_items
from faceledger.ingest.job import IngestJob, IngestSummary
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
    from faceledger.cli.search import search

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
