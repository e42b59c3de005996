"""The `faceledger` command line: a thin layer over the services, one command per job."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from faceledger.config import Settings, load_settings
from faceledger.demo import plan_demo
from faceledger.evaluate import runner
from faceledger.faces.decode import DecodeLimits, ImageRejected
from faceledger.ingest.files import expand, iter_items
from faceledger.ingest.job import IngestJob, IngestSummary
from faceledger.search.engine import (
    FaceChoiceRequired,
    Match,
    MinorProbe,
    NoFace,
    ProbeRefused,
    SearchEngine,
    UnknownCollection,
    check_adult,
    choose_face,
)
from faceledger.store import repo
from faceledger.workspace import Workspace

EXIT_CHOOSE_FACE = 3
EXIT_NO_FACE = 4
EXIT_MINOR = 5
EXIT_BAD_IMAGE = 6
EXIT_NOT_FOUND = 7

app = typer.Typer(
    help="faceledger: a self-hosted face search engine with a ledger.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
eval_app = typer.Typer(help="Measure accuracy on labelled data.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")

err = Console(stderr=True)
out = Console()

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object for machines.")]
WorkersOption = Annotated[
    int | None, typer.Option("--workers", "-w", help="Worker processes (default: all cores).")
]


def settings_of(ctx: typer.Context) -> Settings:
    return ctx.obj


@app.callback()
def main(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", envvar="FACELEDGER_DATA_DIR", help="Where data is kept."),
    ] = None,
) -> None:
    ctx.obj = load_settings(data_dir)


def fail(message: str, code: int, as_json: bool, **extra: Any) -> typer.Exit:
    if as_json:
        print(json.dumps({"error": extra.pop("error", "error"), "message": message, **extra}))
    else:
        err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def _progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )


def run_ingest(
    settings: Settings,
    paths: list[Path],
    collection: str,
    workers: int | None,
    index_review_band: bool = False,
) -> IngestSummary:
    """Run an ingest job with a progress bar on stderr."""
    images, archives = expand(paths)
    with _progress_bar() as progress:
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
    table = Table("#", "score", "image", "page", "box", "captured")
    for rank, match in enumerate(matches, 1):
        table.add_row(
            str(rank),
            f"{match.score:.3f}",
            match.image_url,
            match.page_url or "-",
            str(match.box),
            match.captured_at.date().isoformat() if match.captured_at else "-",
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
    except (NoFace, MinorProbe) as error:
        code = EXIT_NO_FACE if isinstance(error, NoFace) else EXIT_MINOR
        raise fail(str(error), code, as_json, error=error.code) from None
    except ProbeRefused as error:
        raise fail(str(error), 1, as_json, error=error.code) from None
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


def _counting(description: str) -> tuple[Progress, Any]:
    progress = _progress_bar()
    task = progress.add_task(description, total=None, status="")

    def update(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    return progress, update


def _print_report(report: dict[str, Any], as_json: bool, hide: tuple[str, ...] = ()) -> None:
    if as_json:
        print(json.dumps(report))
        return
    table = Table("measure", "value")
    for key, value in report.items():
        if key not in hide:
            table.add_row(key, json.dumps(value))
    out.print(table)


@eval_app.command("verify")
def eval_verify(
    ctx: typer.Context,
    pairs: Annotated[Path, typer.Argument(help="CSV with left,right,same.", exists=True)],
    workers: WorkersOption = None,
    as_json: JsonOption = False,
) -> None:
    """Verification accuracy on a pairs file (cross-validated over its folds), AUC, TAR@FAR."""
    settings = settings_of(ctx)
    progress, update = _counting("embedding")
    with progress:
        report = runner.verify(pairs, settings, workers or settings.workers, update)
    _print_report(report, as_json)


@eval_app.command("identify")
def eval_identify(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(help="Folder of Person/*.jpg.", exists=True)],
    workers: WorkersOption = None,
    as_json: JsonOption = False,
) -> None:
    """Open-set identification: rank-1, rank-5 and false match rate at the default threshold."""
    settings = settings_of(ctx)
    progress, update = _counting("embedding")
    with progress:
        report = runner.identify(folder, settings, workers or settings.workers, update)
    _print_report(report, as_json)


@eval_app.command("age")
def eval_age(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(help="Folder with labels.csv (file,age,...).")],
    as_json: JsonOption = False,
) -> None:
    """Age error and the minors gate's decision for every labelled face."""
    if not (folder / "labels.csv").is_file():
        raise fail(f"{folder} has no labels.csv", EXIT_NOT_FOUND, as_json, error="not_found")
    progress, update = _counting("estimating ages")
    with progress:
        report = runner.ages(folder, settings_of(ctx), progress=update)
    _print_report(report, as_json, hide=("files",))


if __name__ == "__main__":
    sys.exit(app())
