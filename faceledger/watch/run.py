"""One watch round: declare it, crawl a fresh job, scan, keep the matches, delete the crawl,
deliver the alerts.

The ledger gets `watch.run` before the first request: the scope, and who is watched for on
what recorded basis (their consent is the crawl's legal basis, their label its reference);
`watch.alert` for each new match together with its stored alert, and `watch.finished` with
counts only. Every round crawls into a folder of its own, so only newly crawled images are
scanned, and the folder (everyone's images) is deleted as soon as the scan is over, whatever
happened. A round that was killed leaves its folder behind: the next round deletes it first
(the round's lock tells a dead round from one still running).
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from faceledger.auth.clock import utcnow
from faceledger.crawl import CrawlConfig, CrawlStats, crawl, crawl_warc_files, iter_crawl_items
from faceledger.crawl.crawler import exclusive, held_elsewhere
from faceledger.crawl.settings import ScopeOptions
from faceledger.ingest.job import Analyser
from faceledger.ledger import log
from faceledger.policy.minors import DEFAULT_AGE_GATE
from faceledger.store.models import User, WatchRun
from faceledger.watch.alerts import (
    deliver,
    delivery_counts,
    get_alert,
    is_repeat,
    record_alert,
)
from faceledger.watch.delivery import configured_targets
from faceledger.watch.enrol import WatchError, active_templates, watched
from faceledger.watch.refusals import require_admin
from faceledger.watch.scan import ScanResult, scan
from faceledger.workspace import Workspace

Progress = Callable[[CrawlStats], None]
ROUND_LOCK = "round.lock"
"""Held (inside the round's folder) while the round runs; see `_sweep`."""


def run_ref(run_id: int) -> str:
    return f"watch-run:{run_id}"


@dataclass
class RoundSummary:
    """What one round did, in counts (and the ids of the alerts it raised)."""

    run: int
    pages: int = 0
    images: int = 0
    faces_seen: int = 0
    minor_faces: int = 0
    alerts: int = 0
    repeats: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    unreadable: dict[str, int] = field(default_factory=dict)
    deliveries: dict[str, int] = field(default_factory=lambda: {"sent": 0, "failed": 0})
    stop_reason: str | None = None
    seconds: float = 0.0
    alert_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_round(
    workspace: Workspace,
    actor: User,
    options: ScopeOptions,
    config: CrawlConfig,
    *,
    workers: int,
    progress: Progress | None = None,
) -> RoundSummary:
    """Run one round as `actor` (an admin, checked afresh each round; refusals ledgered).

    Raises PermissionDenied, WatchError (nobody enrolled) or ValueError (a bad scope)
    before anything is fetched.
    """
    started = time.monotonic()
    scope = options.scope()
    with workspace.sessions() as session:
        run = _start(session, session.get_one(User, actor.id), options)
        session.commit()
    summary = RoundSummary(run.id)
    jobs = workspace.settings.data_dir / "watch" / "jobs"
    _sweep(jobs)
    job_dir = jobs / f"run-{run.id}"
    with exclusive(job_dir, ROUND_LOCK):
        try:
            stats = asyncio.run(crawl(job_dir, scope, config, progress))
            summary.pages, summary.stop_reason = stats.pages, stats.stop_reason
            summary.refused, summary.errors = stats.refused, stats.errors
            _scan_and_record(workspace, actor, run.id, job_dir, workers, summary)
        finally:
            shutil.rmtree(job_dir, ignore_errors=True)
    _deliver(workspace, summary)
    summary.seconds = round(time.monotonic() - started, 2)
    _finish(workspace, actor, run.id, summary)
    return summary


def _start(session: Session, actor: User, options: ScopeOptions) -> WatchRun:
    scope = options.as_dict()
    require_admin(session, actor, "run", scope=scope)
    subjects = watched(session)
    if not subjects:
        raise WatchError("nobody is enrolled: enrol a person first with `faceledger watch add`")
    run = WatchRun(started_by=actor.id, scope=scope, status="running")
    session.add(run)
    session.flush()
    log.append(
        session,
        actor=actor.name,
        action="watch.run",
        subject=run_ref(run.id),
        payload={"scope": scope, "subjects": subjects},
    )
    return run


def _scan_and_record(
    workspace: Workspace,
    actor: User,
    run_id: int,
    job_dir: Path,
    workers: int,
    summary: RoundSummary,
) -> None:
    """Scan the crawl's images and store (and ledger) the new matches, in one commit."""
    settings = workspace.settings
    analyser = Analyser(settings, workers)
    try:
        with workspace.sessions() as session:
            templates = active_templates(session)
            result = scan(
                iter_crawl_items(job_dir),
                analyser,
                templates,
                settings.watch_threshold,
                DEFAULT_AGE_GATE,
            )
            _count(summary, result)
            warc_files = crawl_warc_files(job_dir)
            evidence_dir = settings.data_dir / "watch" / "evidence"
            for hit in result.hits:
                if is_repeat(session, hit):
                    summary.repeats += 1
                    continue
                alert = record_alert(session, actor, run_id, hit, warc_files, evidence_dir)
                summary.alert_ids.append(alert.id)
            summary.alerts = len(summary.alert_ids)
            session.commit()
    finally:
        analyser.close()


def _count(summary: RoundSummary, result: ScanResult) -> None:
    summary.images, summary.faces_seen = result.images, result.faces_seen
    summary.minor_faces, summary.unreadable = result.minor_faces, dict(result.unreadable)


def _deliver(workspace: Workspace, summary: RoundSummary) -> None:
    """Send each new alert to every configured target, committing each alert's outcomes."""
    targets = configured_targets(workspace.settings)
    outcomes = []
    for alert_id in summary.alert_ids:
        with workspace.sessions() as session:
            alert, label = get_alert(session, alert_id)
            outcomes += deliver(workspace.settings, alert, label, targets)
            session.commit()
    summary.deliveries = delivery_counts(outcomes)


def _finish(workspace: Workspace, actor: User, run_id: int, summary: RoundSummary) -> None:
    counts = summary.as_dict()
    with workspace.sessions() as session:
        run = session.get_one(WatchRun, run_id)
        run.status, run.stats, run.finished_at = "done", counts, utcnow()
        log.append(
            session,
            actor=actor.name,
            action="watch.finished",
            subject=run_ref(run_id),
            payload=counts,
        )
        session.commit()


def _sweep(jobs: Path) -> None:
    """Delete the folders of killed rounds: their crawls hold other people's images."""
    for folder in jobs.glob("run-*"):
        if folder.is_dir() and not held_elsewhere(folder, ROUND_LOCK):
            shutil.rmtree(folder, ignore_errors=True)
