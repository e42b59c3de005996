"""`faceledger crawl` and `faceledger crawls`: declared crawl jobs into a collection.

Thin layer over `faceledger.crawl.jobs`: start (or `--resume`) a job, show its progress
live on stderr, print its summary; `crawls` lists jobs with the figures they last wrote,
also while they run in another process.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from faceledger.auth.roles import Role, has_role
from faceledger.cli.app import (
    JsonOption,
    WorkersOption,
    app,
    err,
    out,
    settings_of,
)
from faceledger.cli.auth import acting_user
from faceledger.cli.scope import (
    AllowAddressOption,
    AllowDomainOption,
    MaxDepthOption,
    MaxMegabytesOption,
    MaxPagesOption,
    MaxPerShapeOption,
    PathPrefixOption,
    scope_options,
)
from faceledger.crawl.jobs import (
    CrawlOutcome,
    CrawlRequest,
    get_job,
    job_progress,
    list_jobs,
    resume_job,
    run_job,
    start_job,
)
from faceledger.crawl.stats import CrawlStats
from faceledger.errors import Interrupted, PermissionDenied, UsageError
from faceledger.ingest.job import IngestSummary
from faceledger.store.models import CrawlJob
from faceledger.workspace import Workspace


class _Display:
    """Two live lines on stderr: the crawl's figures, then the ingestion's."""

    def __init__(self) -> None:
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=err,
        )
        self.crawl_task: TaskID | None = None
        self.ingest_task: TaskID | None = None

    def __enter__(self) -> _Display:
        self.progress.start()
        self.crawl_task = self.progress.add_task("crawl", status="starting")
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def crawled(self, stats: CrawlStats) -> None:
        errors, refused = sum(stats.errors.values()), sum(stats.refused.values())
        status = (
            f"{stats.pages} pages, {stats.images} images, {refused} refused, {errors} errors,"
            f" {stats.queued} queued, {stats.pages_per_s:.1f} pages/s"
        )
        if self.crawl_task is not None:
            self.progress.update(self.crawl_task, status=status)

    def ingested(self, summary: IngestSummary) -> None:
        if self.ingest_task is None:
            self.ingest_task = self.progress.add_task("ingest", status="")
        rate = summary.images / summary.seconds if summary.seconds else 0.0
        status = (
            f"{summary.done} images read, {summary.faces_indexed} faces indexed,"
            f" {len(summary.errors)} errors, {rate:.1f} images/s"
        )
        self.progress.update(self.ingest_task, status=status)


def _print_outcome(outcome: CrawlOutcome) -> None:
    data = outcome.as_dict()
    out.print(
        f"crawl job [bold]{data['job']}[/] into [bold]{data['collection']}[/]: "
        f"{data['pages']} pages, {data['images']} images, "
        f"[green]{data['faces_indexed']} faces indexed[/] ({data['stop_reason']})"
    )
    for label in ("refused", "errors", "skipped"):
        for reason, count in data[label].items():
            out.print(f"  {label} {count}: {reason.replace('_', ' ')}")
    if data["warc_kept"]:
        out.print(f"  WARC files kept as evidence: {len(data['warc_files'])}")


def _run(workspace: Workspace, job_id: int, actor: str, workers: int, as_json: bool) -> None:
    try:
        with _Display() as display:
            outcome = run_job(
                workspace,
                job_id,
                actor,
                workers=workers,
                on_crawl=display.crawled,
                on_ingest=display.ingested,
            )
    except KeyboardInterrupt:
        message = f"interrupted; resume with `faceledger crawl --resume {job_id}`"
        raise Interrupted(message, job=job_id) from None
    if as_json:
        print(json.dumps(outcome.as_dict()))
    else:
        _print_outcome(outcome)


@app.command()
def crawl(
    ctx: typer.Context,
    seeds: Annotated[
        list[str] | None, typer.Argument(help="Seed URLs the crawl starts from.")
    ] = None,
    collection: Annotated[
        str | None, typer.Option("--collection", "-c", help="Collection to fill.")
    ] = None,
    legal_basis: Annotated[
        str | None, typer.Option("--legal-basis", help="Why this crawl is lawful.")
    ] = None,
    case: Annotated[str | None, typer.Option("--case", help="Case reference.")] = None,
    allow_domain: AllowDomainOption = None,
    path_prefix: PathPrefixOption = None,
    max_depth: MaxDepthOption = 2,
    max_pages: MaxPagesOption = 1000,
    max_mb: MaxMegabytesOption = 1024,
    max_per_shape: MaxPerShapeOption = 50,
    allow_address: AllowAddressOption = None,
    resume: Annotated[
        int | None, typer.Option("--resume", help="Resume the unfinished job with this id.")
    ] = None,
    workers: WorkersOption = None,
    as_json: JsonOption = False,
) -> None:
    """Crawl a declared scope into a collection (ledgered; resumable; WARC archived)."""
    settings = settings_of(ctx)
    workspace = Workspace(settings)
    with workspace.sessions() as session:
        actor = acting_user(session)
        if resume is not None:
            job = resume_job(session, settings, actor, resume)
        else:
            if not seeds or not collection:
                raise UsageError("give SEED URLs and --collection (or --resume JOB)")
            options = scope_options(
                seeds,
                allow_domain,
                path_prefix,
                max_depth,
                max_pages,
                max_mb,
                allow_address,
                max_per_shape,
            )
            request = CrawlRequest(collection, legal_basis or "", case or "", options)
            job = start_job(session, settings, actor, request)
        job_id, job_dir, actor_name = job.id, job.job_dir, actor.name
    if not as_json:
        err.print(f"crawl job {job_id}: {job_dir}")
    _run(workspace, job_id, actor_name, workers or settings.workers, as_json)


def _job_row(data: dict[str, Any]) -> list[str]:
    return [
        str(data["job"]),
        data["collection"],
        data["state"],
        str(data.get("pages", 0)),
        str(data.get("images", 0)),
        str(data.get("faces_indexed", 0)),
        str(sum(data.get("errors", {}).values())),
        data["case"],
    ]


@app.command("crawls")
def crawls(
    ctx: typer.Context,
    job_id: Annotated[int | None, typer.Argument(help="Show this job only.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List crawl jobs with their progress, also while they run (admins and auditors)."""
    settings = settings_of(ctx)
    with Workspace(settings).sessions() as session:
        actor = acting_user(session)
        if not has_role(actor, Role.ADMIN, Role.AUDITOR, *settings.crawl_roles):
            raise PermissionDenied("listing crawls needs admin or auditor")
        jobs: list[CrawlJob] = (
            [get_job(session, job_id)] if job_id is not None else list_jobs(session)
        )
        rows = [job_progress(session, job) for job in jobs]
    if as_json:
        print(json.dumps(rows[0] if job_id is not None else {"crawls": rows}))
        return
    table = Table("job", "collection", "state", "pages", "images", "faces", "errors", "case")
    for data in rows:
        table.add_row(*_job_row(data))
    out.print(table)
