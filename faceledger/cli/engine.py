"""Commands over the face engine: ingest (an admin's ledgered act) and the demo."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import TaskID

from faceledger.cli.app import (
    JsonOption,
    WorkersOption,
    app,
    out,
    progress_bar,
    settings_of,
)
from faceledger.cli.auth import acting_user
from faceledger.cli.search import print_outcome
from faceledger.cli.serve import serve
from faceledger.demo import (
    DEMO_ADMIN,
    DEMO_INVESTIGATOR,
    demo_accounts,
    ensure_demo_collection,
    plan_demo,
    sign_in,
)
from faceledger.ingest.job import IngestJob, IngestSummary
from faceledger.ingest.ledgered import Sources, run_ingest
from faceledger.policy.collections import UnknownCollection
from faceledger.search.service import SearchService
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
        actor = acting_user(session)
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
        except UnknownCollection as error:  # say how to make one
            how = f"faceledger collection create {collection} --legal-basis TEXT"
            raise UnknownCollection(f"{error}: create it first with `{how}`") from None
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
    then_serve: Annotated[
        bool, typer.Option("--serve", help="Then start the web app on 127.0.0.1.")
    ] = False,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the web app.")] = 8000,
) -> None:
    """Set up demo accounts, build the 'demo' collection from FOLDER, search a held-out photo
    (and with --serve, start the web app where the demo users can sign in)."""
    settings = settings_of(ctx)
    plan = plan_demo(folder, people)
    accounts = demo_accounts(settings)
    if accounts.created:
        out.print(
            f"Created demo accounts {', '.join(accounts.passwords)}; passwords in {accounts.path}"
        )
    admin = sign_in(settings, accounts, DEMO_ADMIN)
    ensure_demo_collection(settings, admin)
    out.print(f"Indexing {len(plan.gallery)} photos of {people} people into collection 'demo'")
    workspace = Workspace(settings)
    shown = _JobProgress()
    job = IngestJob(workspace, "demo", workers=workers or settings.workers, on_item=shown.update)
    with workspace.sessions() as session:
        try:
            summary = run_ingest(session, admin, job, plan.gallery, on_start=shown.start)
        finally:
            shown.stop()
    _print_summary(summary)
    out.print(
        f"\nSearching as {DEMO_INVESTIGATOR} for the face in {plan.probe} "
        "(held out of the collection), purpose investigation, case DEMO-1:"
    )
    outcome = SearchService(workspace).request(
        sign_in(settings, accounts, DEMO_INVESTIGATOR),
        plan.probe.read_bytes(),
        collections=["demo"],
        purpose="investigation",
        case_ref="DEMO-1",
        justification="demonstration: find the person of a held-out photo",
        face=1,
    )
    print_outcome(outcome, False)
    out.print(
        f"\nNext: act as {DEMO_INVESTIGATOR} (FACELEDGER_USER, FACELEDGER_PASSWORD from "
        f"{accounts.path}) to review results (`faceledger request show {outcome.request_id}`), "
        "or check the record: `faceledger ledger verify`."
    )
    if then_serve:
        out.print(f"\nOpen http://127.0.0.1:{port}/ and sign in (Ctrl-C stops the app):")
        for name, password in accounts.passwords.items():
            out.print(f"  user [bold]{name}[/]  password [bold]{password}[/]")
        serve(ctx, port=port)
