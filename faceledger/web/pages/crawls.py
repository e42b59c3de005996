"""Crawl jobs: their declared scope and live figures; starting and resuming one.

A job is declared and ledgered by `crawl.jobs.start_job` (who may crawl, the legal basis,
case and scope are its checks), then crawled and ingested by `run_job` in a background
thread of this process, so the page answers at once; its figures come from the files the
running job writes (`job_progress`), which the page re-reads every few seconds while a job
runs. A job stopped with the server resumes from its page, as `faceledger crawl --resume`.
"""

from __future__ import annotations

import logging
import threading
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, Field

from faceledger.auth.roles import has_role
from faceledger.crawl.jobs import (
    CrawlRequest,
    job_progress,
    list_jobs,
    resume_job,
    run_job,
    start_job,
)
from faceledger.crawl.settings import ScopeOptions
from faceledger.errors import FaceledgerError, PermissionDenied
from faceledger.store import repo
from faceledger.store.models import User
from faceledger.web.deps import Actor, App, Overseer
from faceledger.web.pages.answers import back, refused
from faceledger.web.pages.render import NavItem, page
from faceledger.web.services import Services
from faceledger.workspace import Workspace

router = APIRouter()
NAV_ITEMS = (NavItem("Crawls", "/crawls", ("admin", "auditor")),)
log = logging.getLogger(__name__)
defaults = ScopeOptions(seeds=())


class CrawlFields(BaseModel):
    """The declaration, as the form sends it: lists are one item a line."""

    collection: str = Field(max_length=200)
    legal_basis: str = Field(max_length=4000)
    case: str = Field(max_length=200)
    seeds: str = Field(max_length=20000)
    allow_domains: str = Field(default="", max_length=4000)
    path_prefixes: str = Field(default="", max_length=4000)
    allow_addresses: str = Field(default="", max_length=1000)
    max_pages: int = Field(default=defaults.max_pages, ge=1)
    max_depth: int = Field(default=defaults.max_depth, ge=0)

    def request(self) -> CrawlRequest:
        def lines(text: str) -> tuple[str, ...]:
            return tuple(line.strip() for line in text.splitlines() if line.strip())

        options = ScopeOptions(
            seeds=lines(self.seeds),
            allow_domains=lines(self.allow_domains),
            path_prefixes=lines(self.path_prefixes),
            allow_addresses=lines(self.allow_addresses),
            max_pages=self.max_pages,
            max_depth=self.max_depth,
        )
        return CrawlRequest(self.collection, self.legal_basis, self.case, options)


def crawler(app: App, user: Actor) -> User:
    """The current user, if their roles may crawl (`crawl_roles`; 403 before anything is read)."""
    if not has_role(user, *app.settings.crawl_roles):
        roles = ", ".join(app.settings.crawl_roles)
        raise PermissionDenied(f"{user.name} may not crawl: it needs one of the roles {roles}")
    return user


Crawler = Annotated[User, Depends(crawler)]


def _run(workspace: Workspace, job_id: int, actor: str) -> None:
    try:
        run_job(workspace, job_id, actor)
    except Exception:  # the thread has nobody to answer: the job shows as interrupted
        log.exception("crawl job %s stopped", job_id)


def _threads(request: Request) -> dict[int, threading.Thread]:
    """This app's crawl threads by job (a job shows as running while its thread starts)."""
    state = request.app.state
    if not hasattr(state, "crawl_threads"):
        state.crawl_threads = {}
    return state.crawl_threads


def _launch(request: Request, app: Services, job_id: int, actor: str) -> None:
    worker = threading.Thread(
        target=_run, args=(app.workspace, job_id, actor), name=f"crawl-{job_id}", daemon=True
    )
    _threads(request)[job_id] = worker
    worker.start()


@router.get("/crawls", response_class=HTMLResponse)
def crawls(request: Request, app: App, user: Overseer) -> HTMLResponse:
    """Every job with its figures as of now; admins get the form to declare a new one."""
    with app.workspace.sessions() as session:
        jobs: list[dict[str, Any]] = [job_progress(session, job) for job in list_jobs(session)]
        names = [collection.name for collection, _, _ in repo.list_collections(session)]
    starting = {job_id for job_id, worker in _threads(request).items() if worker.is_alive()}
    for job in jobs:
        if job["state"] == "interrupted" and job["job"] in starting:
            job["state"] = "running"
    live = any(job["state"] == "running" for job in jobs)
    return page(
        request,
        "web/crawls.html",
        user,
        jobs=jobs,
        live=live,
        collections=names,
        defaults=defaults,
    )


@router.post("/crawls")
def start(
    request: Request, app: App, user: Crawler, fields: Annotated[CrawlFields, Form()]
) -> RedirectResponse:
    """Declare a crawl (ledgered before anything is fetched) and run it in the background."""
    try:
        with app.workspace.sessions() as session:
            job = start_job(session, app.settings, user, fields.request())
            job_id = job.id
    except FaceledgerError as problem:
        return refused(request, "/crawls", problem)
    _launch(request, app, job_id, user.name)
    return back(request, "/crawls", f"Crawl job {job_id} started.")


@router.post("/crawls/{job_id}/resume")
def resume(request: Request, app: App, user: Crawler, job_id: int) -> RedirectResponse:
    """Resume a job that did not finish: nothing archived is fetched again."""
    try:
        with app.workspace.sessions() as session:
            resume_job(session, app.settings, user, job_id)
    except FaceledgerError as problem:
        return refused(request, "/crawls", problem)
    _launch(request, app, job_id, user.name)
    return back(request, "/crawls", f"Crawl job {job_id} resumed.")
