"""Commands over the face engine: ingest (an admin's ledgered act) and the demo."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import TaskID

from faceledger.auth.roles import PermissionDenied
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
from faceledger.cli.auth import acting_user, auth_failure
from faceledger.demo import plan_demo
from faceledger.ingest.job import IngestJob, IngestSummary
from faceledger.ingest.ledgered import Sources, run_ingest
from faceledger.policy.collections import UnknownCollection
from faceledger.workspace import Workspace


class _JobProgress:
    """The job's progress bar on stderr, shown once the job starts (not for a refusal)."""

    def __init__(self) -> None:
        self.progress = progress_bar()
        self.task: TaskID | None = None

    def start(self, sources: Sources) -> None:
        self.progress.start()
        self.task = self.progress.add_task("ingest", total=sources.total, status="")

    def update(self, summary: IngestSummary) -> None:
        if self.task is not None:
            status = f"{summary.faces_indexed} faces, {len(summary.errors)} errors"
            self.progress.update(self.task, completed=summary.done, status=status)

    def stop(self) -> None:
        if self.task is not None:  # rich prints a blank line for a bar that never started
            self.progress.stop()


def _print_summary(summary: IngestSummary) -> None:
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
    """Index the faces in folders, images and web archives (admins; resumable; ledgered)."""
    settings = settings_of(ctx)
    workspace = Workspace(settings)
    with workspace.sessions() as session:
        actor = acting_user(ctx, session)
        shown = _JobProgress()
        job = IngestJob(
            workspace,
            collection,
            index_review_band=index_review_band,
            workers=workers or settings.workers,
            on_item=shown.update,
        )
        try:
            summary = run_ingest(session, actor, job, paths, on_start=shown.start)
        except PermissionDenied as error:
            raise auth_failure(error, as_json) from None
        except UnknownCollection as error:
            message = (
                f"{error}: create it first with "
                f"`faceledger collection create {collection} --legal-basis TEXT`"
            )
            raise fail(message, EXIT_NOT_FOUND, as_json, error="not_found") from None
        except FileNotFoundError as error:
            raise fail(str(error), EXIT_NOT_FOUND, as_json, error="not_found") from None
        finally:
            shown.stop()
    if as_json:
        print(json.dumps(summary.as_dict()))
    else:
        _print_summary(summary)


@app.command()
def demo(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(help="A folder of Person/*.jpg photos.")],
    people: Annotated[int, typer.Option(help="How many people to index.")] = 60,
    workers: WorkersOption = None,
) -> None:
    """Build the 'demo' collection from FOLDER and search it with a held-out photo."""
    try:
        plan = plan_demo(folder, people)
    except (FileNotFoundError, ValueError) as error:
        raise fail(str(error), EXIT_NOT_FOUND, False) from None
    out.print(f"Indexing {len(plan.gallery)} photos of {people} people into collection 'demo'")
    ctx.invoke(
        ingest,
        ctx=ctx,
        paths=plan.gallery,
        collection="demo",
        workers=workers,
        index_review_band=False,
        as_json=False,
    )
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
