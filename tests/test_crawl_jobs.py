"""`faceledger crawl`, end to end: a declared crawl of a real (hostile) site into a collection.

The test website (tests/site.py) runs on 127.0.0.x and serves real LFW photos in place of
its flat-colour images; an admin crawls it through the CLI, an investigator then finds the
faces with the pages that embed them. Around that: who may crawl, what is ledgered, what is
kept, the SSRF guard at the CLI, and a crawl killed with SIGKILL then resumed.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from faceledger.config import Settings, load_settings
from faceledger.errors import EXIT_AUTH, EXIT_NOT_FOUND, EXIT_REFUSED, EXIT_USAGE
from faceledger.store.models import CrawlJob, Face, SourceImage
from faceledger.workspace import Workspace
from tests.accounts import PEOPLE, add_collection, cli, credentials, entries, initialise
from tests.conftest import REPO, SHARED_DATA
from tests.faces import photos
from tests.site import HOST_A, HOST_B, TestSite

FAST = {"FACELEDGER_CRAWL_PER_HOST_DELAY": "0", "FACELEDGER_WORKERS": "1"}
LOOPBACK = ["--allow-address", "127.0.0.0/8"]
WHY = ["--legal-basis", "public-interest journalism archive", "--case", "CASE-42"]
SEARCH_WHY = ["--purpose", "investigation", "--case", "CASE-42", "--justification", "test"]
# Whose photo the site serves where: a.jpg is embedded on / and /page2, final.jpg on /final
# (after a redirect chain), b-large.jpg is page1's largest srcset candidate, cdn.jpg is on
# host B, linked.jpg is only linked from the home page.
LAYOUT = {
    "/img/a.jpg": ("George_W_Bush", 1),
    "/img/final.jpg": ("George_W_Bush", 2),
    "/img/b-large.jpg": ("Colin_Powell", 1),
    "/img/cdn.jpg": ("Serena_Williams", 1),
    "/photos/linked.jpg": ("Angelina_Jolie", 1),
}


def faces_dev() -> Path:
    folder = SHARED_DATA / "faces-dev"
    if not folder.is_dir():
        pytest.skip(f"needs the shared face photos at {folder}")
    return folder


def site_images(folder: Path) -> dict[str, bytes]:
    return {path: photos(folder, who)[n].read_bytes() for path, (who, n) in LAYOUT.items()}


def run(settings: Settings, who: str | None, *args: str) -> tuple[int, dict[str, Any]]:
    env = {**FAST, "FACELEDGER_MODEL_DIR": str(settings.model_cache_dir)}
    code, stdout, _ = cli(settings, *args, **env, **(credentials(who) if who else {}))
    text = stdout.strip()
    return code, json.loads(text) if text.startswith("{") else {"text": text}


@dataclass
class World:
    settings: Settings
    site: TestSite
    summary: dict[str, Any]
    elapsed: float
    folder: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Any:
    folder = faces_dev()
    settings = load_settings(tmp_path_factory.mktemp("data"), workers=1, model_dir=model_dir)
    initialise(settings, *PEOPLE)
    add_collection(settings, "web")
    with TestSite(images=site_images(folder)) as site:
        started = time.monotonic()
        code, summary = run(
            settings, "admin", "crawl", site.url("/"), "-c", "web", *WHY, *LOOPBACK,
            "--max-depth", "3", "--max-pages", "200", "--json",
        )  # fmt: skip
        elapsed = time.monotonic() - started
        assert code == 0, summary
        yield World(settings, site, summary, elapsed, folder)


def test_the_crawl_fetches_the_right_pages_and_refuses_the_wrong_ones(world: World) -> None:
    site, summary = world.site, world.summary
    assert summary["status"] == "finished" and summary["stop_reason"] == "done"
    for path in ("/", "/page1", "/page2", "/final", "/broken", "/robots.txt"):
        assert site.hits(path) == 1, path
    assert site.hits("/retry") == 2  # 429 with Retry-After, then once more
    assert site.hits("/private/secret") == 0  # robots.txt
    assert site.hits("/other-page", HOST_B) == 0  # outside the seeds' hosts
    assert site.hits("/img/cdn.jpg", HOST_B) == 1  # an image an in-scope page embeds
    calendar = [p for p in site.paths() if p.startswith("/calendar/")]
    assert 1 <= len(calendar) <= 50  # the trap is capped
    assert summary["refused"]["robots"] >= 1
    assert summary["refused"]["excluded_platform"] == 2  # x.com, youtube.com
    assert summary["refused"]["out_of_scope"] >= 1
    assert summary["refused"]["too_large"] == 3  # 2 GB Content-Length, endless, gzip bomb
    assert summary["errors"]["redirect_loop"] == 1
    assert summary["pages"] >= 8 and summary["images"] == 8
    assert world.elapsed < 60  # nothing hung


def test_the_faces_are_indexed_and_searchable_with_their_page_urls(world: World) -> None:
    assert world.summary["faces_indexed"] == len(LAYOUT)
    probe = str(photos(world.folder, "George_W_Bush")[0])  # not served by the site
    code, answer = run(world.settings, "ivan", "search", probe, "-c", "web", *SEARCH_WHY, "--json")
    assert code == 0, answer
    found = {r["image_url"]: r["page_url"] for r in answer["results"][:2]}
    site = world.site
    assert found == {
        site.url("/img/a.jpg"): site.url("/"),
        site.url("/img/final.jpg"): site.url("/final"),
    }
    titles = {r["page_title"] for r in answer["results"][:2]}
    assert titles == {"Home", "Final"}


def test_the_job_is_ledgered_with_its_scope_and_outcome(world: World) -> None:
    sessions = Workspace(world.settings).sessions
    started = entries(sessions, "crawl.started")
    finished = entries(sessions, "crawl.finished")
    assert len(started) == 1 and len(finished) == 1
    assert started[0]["actor"] == "admin" and started[0]["subject"] == "crawl:1"
    payload = started[0]["payload"]
    assert payload["case"] == "CASE-42" and payload["collection"] == "web"
    assert payload["legal_basis"] == "public-interest journalism archive"
    assert payload["scope"]["seeds"] == [world.site.url("/")]
    assert payload["scope"]["allow_domains"] == [HOST_A]
    assert payload["scope"]["allow_addresses"] == ["127.0.0.0/8"]
    assert "faceledger" in payload["user_agent"]
    outcome = finished[0]["payload"]
    assert outcome["faces_indexed"] == len(LAYOUT) and outcome["pages"] == world.summary["pages"]
    code, verified = run(world.settings, None, "ledger", "verify", "--json")
    assert code == 0 and verified["ok"], verified


def test_by_default_no_archive_is_kept_only_faces_urls_and_hashes(world: World) -> None:
    with Workspace(world.settings).sessions() as session:
        job = session.scalars(select(CrawlJob)).one()
        images = session.scalars(select(SourceImage)).all()
    assert not (Path(job.job_dir) / "warc").exists()
    assert world.summary["warc_kept"] is False and world.summary["warc_files"] == []
    assert images and all(i.warc_digest and i.warc_record_id for i in images)
    assert not any(p.suffix in {".jpg", ".png"} for p in Path(job.job_dir).rglob("*"))


def test_crawls_lists_the_job_for_admins_and_auditors_only(world: World) -> None:
    code, listed = run(world.settings, "audrey", "crawls", "--json")
    assert code == 0
    (job,) = listed["crawls"]
    assert job["state"] == "finished" and job["faces_indexed"] == len(LAYOUT)
    code, one = run(world.settings, "admin", "crawls", "1", "--json")
    assert code == 0 and one["case"] == "CASE-42"
    assert run(world.settings, "ivan", "crawls", "--json")[0] == EXIT_AUTH
    assert run(world.settings, "admin", "crawls", "9", "--json")[0] == EXIT_NOT_FOUND


def test_who_may_not_crawl_and_what_a_crawl_must_declare(world: World) -> None:
    settings, site = world.settings, world.site
    before = dict(site.paths())
    seed = site.url("/page3")
    for who in ("ivan", "april", "audrey", None):
        code, answer = run(settings, who, "crawl", seed, "-c", "web", *WHY, *LOOPBACK, "--json")
        assert code == EXIT_AUTH, (who, answer)
    code, answer = run(settings, "admin", "crawl", seed, "-c", "web", "--case", "C", "--json")
    assert code == EXIT_REFUSED and answer["error"] == "missing_legal_basis"
    code, answer = run(settings, "admin", "crawl", seed, "-c", "web", "--legal-basis", "x")
    assert code == EXIT_REFUSED
    code, answer = run(settings, "admin", "crawl", seed, "-c", "nope", *WHY, "--json")
    assert code == EXIT_NOT_FOUND
    code, answer = run(settings, "admin", "crawl", "-c", "web", *WHY, "--json")
    assert code == EXIT_USAGE
    bad = ["--allow-address", "not-a-range"]
    code, answer = run(settings, "admin", "crawl", seed, "-c", "web", *WHY, *bad, "--json")
    assert code == EXIT_REFUSED and answer["error"] == "invalid_scope"
    assert site.paths() == before  # none of these fetched anything
    with Workspace(settings).sessions() as session:
        assert session.scalar(select(func.count()).select_from(CrawlJob)) == 1


@pytest.mark.parametrize(
    "seed", ["http://10.0.0.1/", "http://169.254.169.254/latest/meta-data/", "http://[::1]/"]
)
def test_private_seeds_are_refused_unless_an_admin_allows_them(world: World, seed: str) -> None:
    code, summary = run(world.settings, "admin", "crawl", seed, "-c", "web", *WHY, "--json")
    assert code == 0, summary
    assert summary["pages"] == 0
    assert sum(summary["refused"].values()) == 1
    assert set(summary["refused"]) <= {"private_address", "link_local", "loopback"}


def test_an_evidence_collection_keeps_its_archives(world: World) -> None:
    add_collection(world.settings, "evidence", keep_evidence=True)
    seed = world.site.url("/final")
    args = ["crawl", seed, "-c", "evidence", *WHY, *LOOPBACK, "--max-depth", "0", "--json"]
    code, summary = run(world.settings, "admin", *args)
    assert code == 0, summary
    assert summary["warc_kept"] and summary["faces_indexed"] == 1
    assert all(Path(name).is_file() for name in summary["warc_files"])


# --------------------------------------------------------------------------- SIGKILL


def _done_pages(state: Path) -> int:
    try:
        with sqlite3.connect(f"file:{state}?mode=ro", uri=True) as db:
            row = db.execute("SELECT COUNT(*) FROM urls WHERE status='done'").fetchone()
    except sqlite3.OperationalError:
        return 0
    return int(row[0])


def test_sigkill_then_resume_fetches_nothing_twice_and_indexes_each_face_once(
    tmp_path: Path, model_dir: Path
) -> None:
    folder = faces_dev()
    settings = load_settings(tmp_path / "data", workers=1, model_dir=model_dir)
    initialise(settings)
    add_collection(settings, "web")
    chain = {f"/chain-img/{n}.jpg": photos(folder, "George_W_Bush")[n].read_bytes() for n in (3, 9)}
    with TestSite(chain_pages=40, images=chain) as site:
        env = {
            **os.environ,
            **credentials("admin"),
            **FAST,
            "FACELEDGER_CRAWL_PER_HOST_DELAY": "0.05",
            "FACELEDGER_DATA_DIR": str(settings.data_dir),
            "FACELEDGER_MODEL_DIR": str(model_dir),
            "PYTHONPATH": str(REPO),
        }
        env.pop("FACELEDGER_TOKEN", None)
        command = [
            sys.executable,
            "-m",
            "faceledger.cli",
            "crawl",
            site.url("/chain/0"),
            "-c",
            "web",
        ]
        command += [*WHY, *LOOPBACK, "--max-depth", "100", "--json"]
        process = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.DEVNULL)
        state = settings.crawl_dir / "job-1" / "state.sqlite"
        try:
            deadline = time.monotonic() + 30
            while _done_pages(state) < 10 and time.monotonic() < deadline:
                assert process.poll() is None, "the crawl ended before it could be killed"
                time.sleep(0.05)
            code, running = run(settings, "admin", "crawls", "1", "--json")
            assert code == 0 and running["state"] == "running" and running["pages"] >= 1
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
        assert process.returncode == -signal.SIGKILL
        code, killed = run(settings, "admin", "crawls", "1", "--json")
        assert killed["state"] == "interrupted"
        hits_before = dict(site.paths())
        code, summary = run(settings, "admin", "crawl", "--resume", "1", "--json")
        assert code == 0, summary
        hits = site.paths()
        code, again = run(settings, "admin", "crawl", "--resume", "1", "--json")
        assert code == EXIT_REFUSED and again["error"] == "finished"

    assert set(hits) - set(hits_before)  # the kill came mid-crawl
    twice = {path for path, n in hits.items() if n > 1}
    assert twice <= {"/robots.txt"} | {p for p in hits if p.startswith("/chain")}
    assert len(twice - {"/robots.txt"}) <= 8  # at most the URLs in flight at the kill
    assert summary["pages"] == 40 and summary["images"] == 40
    assert summary["faces_indexed"] == 2
    with Workspace(settings).sessions() as session:
        hashes = session.scalars(select(SourceImage.content_hash)).all()
        faces = session.scalar(select(func.count()).select_from(Face))
    assert len(hashes) == len(set(hashes)) == 40 and faces == 2
    actions = [e["action"] for e in entries(Workspace(settings).sessions)]
    assert actions.count("crawl.started") == 1 and actions.count("crawl.resumed") == 1
    assert actions.count("crawl.finished") == 1
