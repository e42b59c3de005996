"""`crawl()`: one declared, scoped, resumable crawl job from seeds to closed WARC files.

This module only sequences the parts: the frontier lives in `CrawlState` (breadth-first by
depth), each URL passes the scope (`Scope`), robots.txt (`RobotsCache`), the SSRF guard and
the size caps (`Fetcher`), pages are mined for links and images (`extract`), and captures go
to WARC files (`warcout`) before their URL is marked done. Images are fetched only when an
in-scope page references them, from whatever host (a CDN), but still through the guard,
robots.txt, the caps and the platform exclusions.

Redirects are followed here, one hop at a time: a 3xx is archived, its target is checked like
a new URL (scope, exclusions, shape cap) and queued with a hop count, so `max_redirects`,
loops and every hop's address are all enforced by the same machinery as links.

A crawl stops when nothing that may be fetched is left: the frontier is empty, or the page
cap (page fetches, counted when they start, so it is never overshot) or byte cap is reached.
Links from pages at `max_depth` are not recorded at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import httpcore

from faceledger.crawl.config import CrawlConfig
from faceledger.crawl.extract import extract
from faceledger.crawl.fetch import Fetcher, FetchError, FetchResult
from faceledger.crawl.guard import AddressGuard, Refused, Resolver, guarded_transport
from faceledger.crawl.robots import RobotsCache
from faceledger.crawl.scope import Scope, ShapeCounter, canonicalize, host_of, url_shape
from faceledger.crawl.state import Claim, CrawlState, NewUrl
from faceledger.crawl.stats import CrawlStats, write_stats
from faceledger.crawl.warcout import WarcFileWriter, Written, recover, warc_name
from faceledger.errors import Conflict
from faceledger.html_refs import PageContent

__all__ = [
    "STATE_FILE",
    "STATS_FILE",
    "WARC_DIR",
    "JobBusy",
    "crawl",
    "exclusive",
    "held_elsewhere",
]

log = logging.getLogger(__name__)

STATE_FILE = "state.sqlite"
STATS_FILE = "stats.json"
LOCK_FILE = "crawl.lock"
WARC_DIR = "warc"
_PROGRESS_INTERVAL = 0.5

Progress = Callable[[CrawlStats], None]


async def crawl(
    job_dir: Path,
    scope: Scope,
    config: CrawlConfig | None = None,
    progress: Progress | None = None,
    *,
    resolver: Resolver | None = None,
    network_backend: httpcore.AsyncNetworkBackend | None = None,
) -> CrawlStats:
    """Run (or resume) the crawl job kept in `job_dir`; return its final statistics.

    `job_dir` holds `state.sqlite`, `stats.json` (rewritten every `config.stats_interval`
    seconds while running) and `warc/crawl-NNNNN.warc.gz`. Calling again with the same
    `job_dir` resumes: nothing already archived is fetched again. `progress` is called about
    twice a second with the current figures. `resolver` and `network_backend` replace DNS
    and the socket layer below the SSRF guard (tests); the guard itself always runs.
    Cancelling the task stops the crawl cleanly; it can then be resumed.
    """
    config = config or CrawlConfig()
    guard = AddressGuard(config.allowed_cidrs, resolver, config.connect_timeout)
    job_dir = Path(job_dir)
    with exclusive(job_dir):
        job = _Job(job_dir, scope, config, progress, guard, network_backend)
        return await job.run()


class JobBusy(Conflict):
    """Another process holds the job's lock: it is running now."""

    code = "running"


@contextlib.contextmanager
def exclusive(job_dir: Path, lock_name: str = LOCK_FILE) -> Iterator[None]:
    """Hold a lock file of the job: two processes crawling one job would corrupt its state.

    An advisory `flock` dies with its process, so a SIGKILLed crawl never leaves it stale.
    Raises `JobBusy` at once when another process holds it.
    """
    job_dir.mkdir(parents=True, exist_ok=True)
    with (job_dir / lock_name).open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise JobBusy(f"crawl job {job_dir} is already running") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def held_elsewhere(job_dir: Path, lock_name: str = LOCK_FILE) -> bool:
    """Whether another process holds this lock of the job now, i.e. is running it."""
    if not job_dir.is_dir():
        return False
    try:
        with exclusive(job_dir, lock_name):
            return False
    except JobBusy:
        return True


class _Job:
    """The state of one running crawl; `run` is the only entry point."""

    def __init__(
        self,
        job_dir: Path,
        scope: Scope,
        config: CrawlConfig,
        progress: Progress | None,
        guard: AddressGuard,
        backend: httpcore.AsyncNetworkBackend | None,
    ) -> None:
        self.job_dir = job_dir
        excluded = tuple(dict.fromkeys((*scope.excluded_domains, *config.excluded_domains)))
        self.scope = dataclasses.replace(scope, excluded_domains=excluded)
        self.config = config
        self.progress = progress
        self.guard = guard
        self.backend = backend
        job_dir.mkdir(parents=True, exist_ok=True)
        self.warc_dir = job_dir / WARC_DIR
        self.state = CrawlState(job_dir / STATE_FILE)
        self.writer = WarcFileWriter(self.warc_dir, {"job": str(job_dir.name)})
        self.warc_lock = asyncio.Lock()
        self.captures_in_file = 0
        self.busy: Counter[str] = Counter()
        self.in_flight = 0
        self.page_slots = 0
        self.bytes = 0
        self.shapes = ShapeCounter(self.scope.max_per_shape)
        self.started = time.monotonic()
        self.pages_at_start = 0
        self.images_at_start = 0
        self.stop_reason: str | None = None
        self.archiving: set[asyncio.Task[Written]] = set()
        self.fetcher: Fetcher | None = None
        self.robots: RobotsCache | None = None

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> CrawlStats:
        reporter: asyncio.Task[None] | None = None
        finished = False
        try:
            self._recover()
            transport = guarded_transport(
                self.guard, max_connections=2 * self.config.global_concurrency, inner=self.backend
            )
            async with Fetcher(self.config, self.guard, transport=transport) as fetcher:
                self.fetcher = fetcher
                self.robots = RobotsCache(fetcher, self.config, self.state, self._archive_robots)
                reporter = asyncio.create_task(self._report_loop())
                await self._schedule()
                finished = True
        finally:
            if reporter is not None:
                reporter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reporter
            if self.archiving:
                await asyncio.gather(*self.archiving, return_exceptions=True)
            await self._close_warc()
            if not finished:
                self.stop_reason = self.stop_reason or "cancelled"
            stats = self.stats(finished=finished)
            write_stats(self.job_dir / STATS_FILE, stats)
            self.state.close()
        return stats

    def _recover(self) -> None:
        """Pick up after a killed run: re-queue, trim open WARC files, restore counters."""
        requeued = self.state.requeue_interrupted()
        for name, committed, captures in self.state.open_warcs():
            kept = recover(self.warc_dir, name, committed, captures)
            self.state.close_warc(name, kept=kept is not None)
        if requeued:
            log.info("resuming: %d interrupted URLs queued again", requeued)
        if self.state.get_meta("scope") is None:
            self.state.set_meta("scope", json.dumps(_describe_scope(self.scope), sort_keys=True))
        self.shapes = ShapeCounter(self.scope.max_per_shape, self.state.shape_counts())
        for seed in self.scope.seeds:
            self._admit_page(seed, depth=0)
        counts = self.state.counts()
        self.page_slots = counts.page_fetches
        self.bytes = counts.bytes
        self.pages_at_start, self.images_at_start = counts.pages, counts.images
        self.started = time.monotonic()

    async def _schedule(self) -> None:
        """Keep up to `global_concurrency` URLs in flight until nothing more may start."""
        tasks: set[asyncio.Task[None]] = set()
        try:
            while True:
                while len(tasks) < self.config.global_concurrency:
                    claim = self._claim()
                    if claim is None:
                        break
                    tasks.add(asyncio.create_task(self._process(claim)))
                if not tasks:
                    break
                done, tasks = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
        finally:
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
        counts = self.state.counts()
        if counts.queued == 0:
            self.stop_reason = "done"
        elif self.bytes >= self.scope.max_bytes:
            self.stop_reason = "byte_cap"
        else:
            self.stop_reason = "page_cap"

    def _claim(self) -> Claim | None:
        if self.bytes >= self.scope.max_bytes:
            return None
        kinds = ["image"]
        if self.page_slots < self.scope.max_pages:
            kinds.append("page")
        busy = [h for h, n in self.busy.items() if n >= self.config.per_host_concurrency]
        claim = self.state.claim(kinds, busy)
        if claim is not None:
            self.busy[host_of(claim.url)] += 1
            self.in_flight += 1
            if claim.kind == "page":
                self.page_slots += 1
        return claim

    async def _process(self, claim: Claim) -> None:
        attempted = True
        try:
            attempted = await self._fetch_one(claim)
        except Exception as exc:  # one URL's bug must not end the crawl; it is recorded
            log.exception("crawling %s failed", claim.url)
            self.state.finish(claim.url, "failed", "internal_error", repr(exc), attempted=True)
        finally:
            host = host_of(claim.url)
            self.busy[host] -= 1
            if self.busy[host] <= 0:
                del self.busy[host]
            self.in_flight -= 1
            if claim.kind == "page" and not attempted:
                self.page_slots -= 1

    # ------------------------------------------------------------------ one URL

    async def _fetch_one(self, claim: Claim) -> bool:
        """Fetch, archive and mine one claimed URL; return whether a request was made."""
        assert self.robots is not None and self.fetcher is not None
        url, target = claim.url, claim.fetch_url
        try:
            why = await self.robots.why_disallowed(target)
        except Refused as refused:
            self.state.finish(url, "refused", refused.reason, refused.detail)
            return False
        if why is not None:
            self.state.finish(url, "refused", "robots", why)
            return False
        limit = self.config.max_page_bytes if claim.kind == "page" else self.config.max_image_bytes
        try:
            result = await self.fetcher.fetch(target, limit)
        except Refused as refused:
            self.state.finish(url, "refused", refused.reason, refused.detail)
            return False
        except FetchError as error:
            self.bytes += error.bytes_read
            status = "refused" if error.reason == "too_large" else "failed"
            self.state.finish(
                url, status, error.reason, error.detail, nbytes=error.bytes_read, attempted=True
            )
            return True
        self.bytes += result.bytes_received
        await self._handle(claim, result)
        return True

    async def _handle(self, claim: Claim, result: FetchResult) -> None:
        """Decide what a response is, archive it if it is kept, and queue what it names."""
        url, status = claim.url, result.status
        if 300 <= status < 400 and result.location:
            reason, detail = self._follow(claim, result.location)
            outcome = ("done", "redirect") if reason is None else ("failed", reason)
            await self._archive(claim, result, None, outcome, detail)
        elif not 200 <= status < 300:
            await self._archive(claim, result, None, ("failed", f"http_{status}"), None)
        elif result.kind == "image":
            await self._archive(claim, result, None, ("done", "image"), None)
        elif result.kind == "html" and claim.kind == "page":
            content = await asyncio.to_thread(extract, result.body, result.url)
            if content.hostile:
                self.state.finish(
                    url,
                    "refused",
                    "hostile_html",
                    "markup nested too deeply to parse safely",
                    http_status=status,
                    nbytes=result.bytes_received,
                    attempted=True,
                )
                return
            self._admit_refs(claim, content)
            metadata = _page_metadata(content, result)
            await self._archive(claim, result, metadata, ("done", "page"), None, content.title)
        else:
            wanted = "an image" if claim.kind == "image" else "HTML or an image"
            reason = "not_image" if claim.kind == "image" else "not_html"
            self.state.finish(
                url,
                "refused",
                reason,
                f"body is {result.kind}, not {wanted}",
                http_status=status,
                nbytes=result.bytes_received,
                attempted=True,
            )

    def _follow(self, claim: Claim, location: str) -> tuple[str | None, str | None]:
        """Queue a redirect target like a new URL; (error reason, detail) if it is not."""
        try:
            target = canonicalize(location)
        except ValueError as exc:
            return "bad_redirect", str(exc)
        hops = claim.hops + 1
        if hops > self.config.max_redirects:
            return "too_many_redirects", f"more than {self.config.max_redirects} redirects"
        if self._in_chain(claim.url, target, hops):
            return "redirect_loop", f"redirects back to {target}"
        if self.state.seen(target):
            return None, f"-> {target} (already known)"
        if claim.kind == "page":
            verdict = self.scope.in_scope(target, claim.depth)
            if verdict:
                verdict = self.shapes.admit(target)
            shape = url_shape(target) if verdict else None
        else:
            verdict = self.scope.image_allowed(target)
            shape = None
        status = "queued" if verdict else "refused"
        self.state.add(
            target,
            claim.kind,
            claim.depth,
            host_of(target),
            fetch_url=location,
            shape=shape,
            via=claim.url,
            hops=hops,
            status=status,
            reason=None if verdict else verdict.reason,
            detail=None if verdict else verdict.detail,
        )
        return None, f"-> {target}"

    def _in_chain(self, url: str, target: str, hops: int) -> bool:
        """Whether `target` is `url` or one of the URLs that redirected to it."""
        current: str | None = url
        for _ in range(hops + 1):
            if current is None:
                return False
            if current == target:
                return True
            current = self.state.via_of(current)
        return False

    def _admit_page(self, raw: str, depth: int) -> None:
        """Queue a seed (or refuse it, with the reason recorded)."""
        try:
            url = canonicalize(raw)
        except ValueError as exc:
            self.state.add(
                raw, "page", depth, "", status="refused", reason="bad_url", detail=str(exc)
            )
            return
        if self.state.seen(url):
            return
        verdict = self.scope.in_scope(url, depth)
        if verdict:
            verdict = self.shapes.admit(url)
        self.state.add(
            url,
            "page",
            depth,
            host_of(url),
            fetch_url=raw.strip(),
            shape=url_shape(url) if verdict else None,
            status="queued" if verdict else "refused",
            reason=None if verdict else verdict.reason,
            detail=None if verdict else verdict.detail,
        )

    def _admit_refs(self, claim: Claim, content: PageContent) -> None:
        """Queue a page's images and (below max depth) links; remember its embeds."""
        rows: list[NewUrl] = []
        pending: set[str] = set()
        embeds: list[tuple[str, str | None, str]] = []
        for ref in content.images:
            try:
                image = canonicalize(ref.url)
            except ValueError:
                continue
            embeds.append((image, ref.alt, ref.via))
            if image in pending or self.state.seen(image):
                continue
            pending.add(image)
            verdict = self.scope.image_allowed(image)
            rows.append(_row(image, ref.url, "image", claim.depth, verdict))
        depth = claim.depth + 1
        if depth <= self.scope.max_depth:
            for link in content.links:
                try:
                    url = canonicalize(link)
                except ValueError:
                    continue
                if url in pending or self.state.seen(url):
                    continue
                pending.add(url)
                verdict = self.scope.in_scope(url, depth)
                if verdict:
                    verdict = self.shapes.admit(url)
                rows.append(_row(url, link, "page", depth, verdict))
        self.state.add_many(rows)
        self.state.add_embeds(claim.url, embeds)

    # ------------------------------------------------------------------ archiving

    async def _archive(
        self,
        claim: Claim,
        result: FetchResult,
        metadata: dict[str, object] | None,
        outcome: tuple[str, str],
        detail: str | None,
        title: str | None = None,
    ) -> None:
        """Write the capture, then mark the URL with `outcome` in the same critical section."""

        def commit(written: Written) -> None:
            self.state.finish(
                claim.url,
                outcome[0],
                outcome[1],
                detail,
                http_status=result.status,
                nbytes=result.bytes_received,
                title=title,
                fetched_at=result.started_at.isoformat(),
                attempted=True,
                warc=(written.file, written.end_offset, written.record_id, written.payload_digest),
            )

        await self._shielded(self._write(result, metadata, commit))

    async def _archive_robots(self, result: FetchResult) -> None:
        def commit(written: Written) -> None:
            self.state.commit_warc(written.file, written.end_offset)
            self.state.add_meta_int("robots_bytes", result.bytes_received)

        self.bytes += result.bytes_received
        await self._shielded(self._write(result, {"robots.txt": True}, commit))

    async def _shielded(self, work: Coroutine[Any, Any, Written]) -> Written:
        """Run `work` to completion even if the crawl is cancelled meanwhile.

        A capture half-written when cancellation strikes would be committed by nobody; the
        close in `run` waits for these tasks first.
        """
        task = asyncio.ensure_future(work)
        self.archiving.add(task)
        task.add_done_callback(self.archiving.discard)
        return await asyncio.shield(task)

    async def _write(
        self,
        result: FetchResult,
        metadata: dict[str, object] | None,
        commit: Callable[[Written], None],
    ) -> Written:
        async with self.warc_lock:
            if not self.writer.is_open:
                name = warc_name(self.state.next_warc_index())
                self.state.register_warc(name)
                offset = await asyncio.to_thread(self.writer.open, name)
                self.state.commit_warc(name, offset)
                self.captures_in_file = 0
            written = await asyncio.to_thread(self.writer.write, result, metadata)
            self.captures_in_file += 1
            commit(written)
            if self.writer.size >= self.config.warc_max_bytes:
                await self._close_locked()
        return written

    async def _close_warc(self) -> None:
        async with self.warc_lock:
            await self._close_locked()

    async def _close_locked(self) -> None:
        name = self.writer.name
        if name is None:
            return
        if self.captures_in_file == 0:
            self.writer.abandon()
            recover(self.warc_dir, name, 0, 0)
            self.state.close_warc(name, kept=False)
            return
        await asyncio.to_thread(self.writer.close)
        self.state.close_warc(name)

    # ------------------------------------------------------------------ reporting

    def stats(self, finished: bool = False) -> CrawlStats:
        """Current figures, from the state (so they survive resumes unchanged)."""
        counts = self.state.counts()
        elapsed = max(time.monotonic() - self.started, 1e-9)
        return CrawlStats(
            pages=counts.pages,
            images=counts.images,
            redirects=counts.redirects,
            bytes=counts.bytes,
            refused=dict(sorted(counts.refused.items())),
            errors=dict(sorted(counts.errors.items())),
            warc_files=[str(self.warc_dir / n) for n in self.state.closed_warcs()],
            queued=counts.queued,
            in_flight=self.in_flight,
            elapsed_s=round(elapsed, 3),
            pages_per_s=round((counts.pages - self.pages_at_start) / elapsed, 3),
            images_per_s=round((counts.images - self.images_at_start) / elapsed, 3),
            finished=finished,
            stop_reason=self.stop_reason,
        )

    async def _report_loop(self) -> None:
        """Call `progress` twice a second and rewrite `stats.json` every `stats_interval`."""
        last_file = 0.0
        while True:
            await asyncio.sleep(_PROGRESS_INTERVAL)
            stats = self.stats()
            if self.progress is not None:
                try:
                    self.progress(stats)
                except Exception:  # a broken progress display must not stop the crawl
                    log.exception("progress callback failed")
            now = time.monotonic()
            if now - last_file >= self.config.stats_interval:
                write_stats(self.job_dir / STATS_FILE, stats)
                last_file = now


def _row(url: str, fetch_url: str, kind: str, depth: int, verdict: Any) -> NewUrl:
    if verdict:
        shape = url_shape(url) if kind == "page" else None
        return NewUrl(url, fetch_url, kind, depth, host_of(url), shape=shape)
    return NewUrl(
        url, fetch_url, kind, depth, host_of(url), "refused", verdict.reason, verdict.detail
    )


def _page_metadata(content: PageContent, result: FetchResult) -> dict[str, object]:
    """What the crawler saw on a page, archived next to it (`metadata` record)."""
    return {
        "title": content.title,
        "status": result.status,
        "fetched_at": result.started_at.isoformat(),
        "images": [{"url": r.url, "alt": r.alt, "via": r.via} for r in content.images],
        "links": len(content.links),
        "capped": content.capped,
    }


def _describe_scope(scope: Scope) -> dict[str, object]:
    return {
        "seeds": list(scope.seeds),
        "allow_domains": list(scope.domains),
        "path_prefixes": list(scope.path_prefixes),
        "max_depth": scope.max_depth,
        "max_pages": scope.max_pages,
        "max_bytes": scope.max_bytes,
        "allow_excluded_platforms": scope.allow_excluded_platforms,
    }
