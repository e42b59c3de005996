"""Crawl jobs as accountable acts: declared, ledgered, resumable, ingested into a collection.

A job row is created and `crawl.started` ledgered (who, why, the scope) before anything is
fetched. The crawl then writes WARC files into the job's folder, the collection ingests
them (each image linked to the page embedding it), and `crawl.finished` records the
outcome. Killed at any point, `resume_job` + `run_job` pick up where it was: the crawler's
frontier skips whatever was archived and ingestion skips images already stored (by content
hash), so nothing is fetched or indexed twice. Unless the collection keeps evidence, the
WARC files are deleted once ingested: only faces, URLs and hashes remain.

The CLI and the web app both go through here; `job_progress` is what they show.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpcore
from sqlalchemy import select
from sqlalchemy.orm import Session

from faceledger.auth.clock import utcnow
from faceledger.auth.roles import Role, has_role
from faceledger.config import Settings
from faceledger.crawl.crawler import (
    STATS_FILE,
    WARC_DIR,
    JobBusy,
    crawl,
    exclusive,
    held_elsewhere,
)
from faceledger.crawl.items import iter_crawl_items
from faceledger.crawl.settings import ScopeOptions, crawl_config
from faceledger.crawl.stats import CrawlStats, read_stats, write_json
from faceledger.errors import NotFound, PermissionDenied, Refused
from faceledger.ingest.job import IngestJob, IngestSummary
from faceledger.ledger import log
from faceledger.ledger.checkpoints import maybe_checkpoint
from faceledger.policy.collections import get_collection
from faceledger.store.models import Collection, CrawlJob, User
from faceledger.workspace import Workspace

__all__ = [
    "CrawlOutcome",
    "CrawlRefused",
    "CrawlRequest",
    "UnknownJob",
    "job_progress",
    "list_jobs",
    "resume_job",
    "run_job",
    "start_job",
]

RUNNING = "running"
FINISHED = "finished"
JOB_LOCK = "job.lock"
INGEST_FILE = "ingest.json"
_INGEST_WRITE_EVERY = 1.0


class CrawlRefused(Refused):
    """A crawl that may not start or resume; `code` is stable for scripts."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class UnknownJob(NotFound):
    """No crawl job has that id."""


@dataclass(frozen=True)
class CrawlRequest:
    """What an administrator declares to start a crawl."""

    collection: str
    legal_basis: str
    case_ref: str
    options: ScopeOptions


@dataclass
class CrawlOutcome:
    """A job's result: the crawl's figures and the ingestion's, as one summary."""

    job_id: int
    collection: str
    crawl: CrawlStats
    ingest: IngestSummary | None = None
    warc_kept: bool = False
    status: str = RUNNING
    errors: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        ingest = self.ingest.as_dict() if self.ingest else None
        return {
            "job": self.job_id,
            "collection": self.collection,
            "status": self.status,
            "stop_reason": self.crawl.stop_reason,
            "pages": self.crawl.pages,
            "images": self.crawl.images,
            "redirects": self.crawl.redirects,
            "bytes": self.crawl.bytes,
            "faces_indexed": ingest["faces_indexed"] if ingest else 0,
            "refused": dict(sorted(self.crawl.refused.items())),
            "errors": dict(sorted(self.errors.items())),
            "skipped": ingest["skipped"] if ingest else {},
            "warc_kept": self.warc_kept,
            "warc_files": self.crawl.warc_files if self.warc_kept else [],
            "crawl_seconds": round(self.crawl.elapsed_s, 2),
            "ingest_seconds": ingest["seconds"] if ingest else 0.0,
        }


def subject(job_id: int) -> str:
    return f"crawl:{job_id}"


def _may_crawl(settings: Settings, actor: User, options: ScopeOptions) -> None:
    if not has_role(actor, *settings.crawl_roles):
        roles = ", ".join(settings.crawl_roles)
        raise PermissionDenied(f"starting a crawl needs one of the roles: {roles}")
    if options.allow_addresses and not has_role(actor, Role.ADMIN):
        raise PermissionDenied("only an admin may let a crawl reach private addresses")


def start_job(session: Session, settings: Settings, actor: User, request: CrawlRequest) -> CrawlJob:
    """Check and ledger a new crawl job (committed); `run_job` then does the work.

    Raises PermissionDenied (role), CrawlRefused (`missing_legal_basis`, `missing_case`,
    `invalid_scope`) and UnknownCollection, each before anything is written.
    """
    _may_crawl(settings, actor, request.options)
    basis, case = request.legal_basis.strip(), request.case_ref.strip()
    if not basis:
        raise CrawlRefused("missing_legal_basis", "a crawl needs a legal basis (--legal-basis)")
    if not case:
        raise CrawlRefused("missing_case", "a crawl needs a case reference (--case)")
    try:
        request.options.scope()
        crawl_config(settings, request.options.allow_addresses)
    except ValueError as error:
        raise CrawlRefused("invalid_scope", str(error)) from None
    collection = get_collection(session, request.collection)
    scope = request.options.as_dict()
    job = CrawlJob(
        collection_id=collection.id,
        started_by=actor.id,
        legal_basis=basis,
        case_ref=case,
        scope=scope,
        job_dir="",
        status=RUNNING,
    )
    session.add(job)
    session.flush()
    job.job_dir = str(settings.crawl_dir / f"job-{job.id}")
    log.append(
        session,
        actor=actor.name,
        action="crawl.started",
        subject=subject(job.id),
        payload={
            "job": job.id,
            "collection": collection.name,
            "legal_basis": basis,
            "case": case,
            "scope": scope,
            "user_agent": crawl_config(settings).effective_user_agent,
        },
    )
    session.commit()
    return job


def get_job(session: Session, job_id: int) -> CrawlJob:
    job = session.get(CrawlJob, job_id)
    if job is None:
        raise UnknownJob(f"no crawl job {job_id}")
    return job


def resume_job(session: Session, settings: Settings, actor: User, job_id: int) -> CrawlJob:
    """Check and ledger resuming a job that did not finish (committed)."""
    job = get_job(session, job_id)
    _may_crawl(settings, actor, _options(job))
    if job.status == FINISHED:
        raise CrawlRefused("finished", f"crawl job {job_id} has already finished")
    if held_elsewhere(Path(job.job_dir), JOB_LOCK):
        raise CrawlRefused("running", f"crawl job {job_id} is running in another process")
    log.append(
        session,
        actor=actor.name,
        action="crawl.resumed",
        subject=subject(job.id),
        payload={"job": job.id},
    )
    session.commit()
    return job


def _options(job: CrawlJob) -> ScopeOptions:
    """The declared scope back from the job row (`ScopeOptions.as_dict` wrote it)."""
    scope: dict[str, Any] = job.scope
    sequences = ("seeds", "allow_domains", "path_prefixes", "allow_addresses")
    options: dict[str, Any] = {k: tuple(v) if k in sequences else int(v) for k, v in scope.items()}
    return ScopeOptions(**options)


class _IngestFile:
    """Writes ingestion figures to the job folder about once a second, for `job_progress`."""

    def __init__(self, path: Path, forward: Callable[[IngestSummary], None] | None) -> None:
        self.path = path
        self.forward = forward
        self.written = 0.0

    def __call__(self, summary: IngestSummary, force: bool = False) -> None:
        if self.forward is not None:
            self.forward(summary)
        now = time.monotonic()
        if force or now - self.written >= _INGEST_WRITE_EVERY:
            self.written = now
            data = summary.as_dict()
            data["errors"] = len(data["errors"])
            write_json(self.path, data)


def run_job(
    workspace: Workspace,
    job_id: int,
    actor: str,
    *,
    workers: int = 1,
    on_crawl: Callable[[CrawlStats], None] | None = None,
    on_ingest: Callable[[IngestSummary], None] | None = None,
    network_backend: httpcore.AsyncNetworkBackend | None = None,
) -> CrawlOutcome:
    """Crawl, ingest and ledger the job started (or resumed) by the user named `actor`.

    Raises CrawlRefused(`running`) if another process is running it. A crawl interrupted by
    Ctrl-C returns with status `running` (resumable) and no `crawl.finished` entry.
    """
    settings = workspace.settings
    with workspace.sessions() as session:
        job = get_job(session, job_id)
        job_dir, options = Path(job.job_dir), _options(job)
        collection = session.get_one(Collection, job.collection_id)
        name, keep = collection.name, collection.keep_evidence
    try:
        with exclusive(job_dir, JOB_LOCK):
            stats = asyncio.run(
                crawl(
                    job_dir,
                    options.scope(),
                    crawl_config(settings, options.allow_addresses),
                    on_crawl,
                    network_backend=network_backend,
                )
            )
            outcome = CrawlOutcome(job_id, name, stats, errors=dict(stats.errors))
            if not stats.finished:
                return outcome
            outcome.ingest = _ingest(workspace, job_dir, name, workers, on_ingest)
            outcome.errors = _errors(stats, outcome.ingest)
            outcome.warc_kept = keep
            if not keep:
                shutil.rmtree(job_dir / WARC_DIR, ignore_errors=True)
            outcome.status = FINISHED
            _finish(workspace, job_id, actor, outcome)
            return outcome
    except JobBusy:
        raise CrawlRefused("running", f"crawl job {job_id} is running in another process") from None


def _ingest(
    workspace: Workspace,
    job_dir: Path,
    collection: str,
    workers: int,
    on_ingest: Callable[[IngestSummary], None] | None,
) -> IngestSummary:
    written = _IngestFile(job_dir / INGEST_FILE, on_ingest)
    job = IngestJob(workspace, collection, workers=workers, on_item=written)
    summary = job.run(iter_crawl_items(job_dir))
    written(summary, force=True)
    return summary


def _errors(stats: CrawlStats, ingest: IngestSummary) -> dict[str, int]:
    """Crawl errors and ingestion errors, by reason."""
    counts = Counter(stats.errors)
    counts.update(error["reason"] for error in ingest.errors)
    return dict(counts)


def _finish(workspace: Workspace, job_id: int, actor: str, outcome: CrawlOutcome) -> None:
    summary = outcome.as_dict()
    with workspace.sessions() as session:
        job = get_job(session, job_id)
        job.status = FINISHED
        job.stats = summary
        job.finished_at = utcnow()
        log.append(
            session,
            actor=actor,
            action="crawl.finished",
            subject=subject(job_id),
            payload={k: v for k, v in summary.items() if k != "warc_files"},
        )
        maybe_checkpoint(session, workspace.settings)
        session.commit()


def list_jobs(session: Session) -> list[CrawlJob]:
    return list(session.scalars(select(CrawlJob).order_by(CrawlJob.id.desc())))


def job_progress(session: Session, job: CrawlJob) -> dict[str, Any]:
    """A job's figures as of now: the final summary, or what its running parts last wrote."""
    collection = session.get_one(Collection, job.collection_id)
    job_dir = Path(job.job_dir)
    data: dict[str, Any] = {
        "job": job.id,
        "collection": collection.name,
        "case": job.case_ref,
        "legal_basis": job.legal_basis,
        "scope": job.scope,
        "created_at": job.created_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }
    if job.status == FINISHED and job.stats is not None:
        return {**data, **job.stats, "state": FINISHED}
    data["state"] = "running" if held_elsewhere(job_dir, JOB_LOCK) else "interrupted"
    stats_file = job_dir / STATS_FILE
    if stats_file.is_file():
        stats = read_stats(stats_file)
        data.update(
            pages=stats.pages,
            images=stats.images,
            refused=stats.refused,
            errors=stats.errors,
            queued=stats.queued,
            pages_per_s=stats.pages_per_s,
            images_per_s=stats.images_per_s,
        )
    ingest_file = job_dir / INGEST_FILE
    if ingest_file.is_file():
        data["ingest"] = json.loads(ingest_file.read_text(encoding="utf-8"))
        data["faces_indexed"] = data["ingest"]["faces_indexed"]
    return data
