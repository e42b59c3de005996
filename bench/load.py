"""Load on the web API: 20 people searching a 100,000-face collection at once, for a while.

Builds a data directory with one collection: a few real LFW photos ingested the ordinary
way (so searches find something) plus synthetic faces written straight into the store
(random unit 128-D embeddings; the index is rebuilt from the store when the server opens
it), then starts `faceledger serve` on 127.0.0.1 in a subprocess and lets each of the
users (one investigator account and API token each) search as fast as it can for the set
time, with held-out photos of the ingested people. Every search is the real path: token
check (ledgered), policy, face pipeline, vector search, results and exposures, ledger.
The server runs with its production limits, the per-user search rate limit included.

    python bench/load.py [--users 20] [--faces 100000] [--seconds 30] [--folder DIR]

Prints searches/s, latency p50/p99 and the errors (any non-201 answer counts as one).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
from sqlalchemy import insert, select

from faceledger.auth import tokens
from faceledger.auth.passwords import generate_password
from faceledger.auth.users import add_user, init_admin
from faceledger.config import Settings, load_settings
from faceledger.faces.decode import DEFAULT_LIMITS
from faceledger.ingest.files import iter_items
from faceledger.ingest.job import IngestJob
from faceledger.policy.collections import create_collection
from faceledger.store.models import Face, SourceImage
from faceledger.workspace import Workspace

REPO = Path(__file__).resolve().parents[1]
PEOPLE = ("Colin_Powell", "George_W_Bush", "Tony_Blair", "Donald_Rumsfeld", "Gerhard_Schroeder")
BATCH = 5_000
READY_SECONDS = 120


def people_photos(folder: Path) -> tuple[list[Path], list[Path]]:
    """(gallery, probes): the first 5 photos of each person are indexed, the next 5 probe."""
    gallery, probes = [], []
    for person in PEOPLE:
        images = sorted((folder / person).glob("*.jpg"))
        gallery += images[:5]
        probes += images[5:10]
    return gallery, probes


def synthesise(settings: Settings, collection_id: int, count: int) -> None:
    """`count` faces with random unit embeddings, one per synthetic image, in the store."""
    rng = np.random.default_rng(7)
    now = datetime.now(UTC)
    with Workspace(settings).sessions() as session:
        for start in range(0, count, BATCH):
            size = min(BATCH, count - start)
            images = [
                {
                    "collection_id": collection_id,
                    "content_hash": f"synthetic-{start + n:08d}",
                    "image_url": f"https://example.org/synthetic/{start + n}.jpg",
                    "page_url": f"https://example.org/pages/{start + n}.html",
                    "captured_at": now,
                    "width": 250,
                    "height": 250,
                }
                for n in range(size)
            ]
            session.execute(insert(SourceImage), images)
            hashes = [image["content_hash"] for image in images]
            ids = session.scalars(
                select(SourceImage.id)
                .where(SourceImage.content_hash.in_(hashes))
                .order_by(SourceImage.content_hash)
            ).all()
            vectors = rng.standard_normal((size, 128)).astype("<f4")
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            session.execute(
                insert(Face),
                [
                    {
                        "image_id": image_id,
                        "collection_id": collection_id,
                        "left": 70,
                        "top": 70,
                        "width": 110,
                        "height": 110,
                        "landmarks": [],
                        "detector_score": 1.0,
                        "quality": 0.5,
                        "estimated_age": 35.0,
                        "embedding": vector.tobytes(),
                    }
                    for image_id, vector in zip(ids, vectors, strict=True)
                ],
            )
        session.commit()


def build(data: Path, folder: Path, users: int, faces: int) -> tuple[Settings, list[str]]:
    """The data directory, and one API token per searching user."""
    settings = load_settings(data, workers=2)
    workspace = Workspace(settings)
    with workspace.sessions() as session:
        admin = init_admin(session, "admin", generate_password())
        people = [
            add_user(session, admin, f"user{n:02d}", ["investigator"], generate_password())
            for n in range(users)
        ]
        collection = create_collection(session, admin, "load", legal_basis="benchmark")
        session.commit()
        collection_id = collection.id
        minted = [tokens.create_token(session, admin, person.name, days=1) for person in people]
        session.commit()
    gallery, _ = people_photos(folder)
    IngestJob(workspace, "load", workers=2).run(iter_items(gallery, [], DEFAULT_LIMITS.max_bytes))
    synthesise(settings, collection_id, faces)
    started = time.perf_counter()
    indexed = len(Workspace(settings).index(collection_id))  # rebuilt from the store, saved
    print(f"index: {indexed} faces, rebuilt in {time.perf_counter() - started:.1f} s")
    return settings, minted


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def wait_ready(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_SECONDS
    async with httpx.AsyncClient(base_url=base) as client:
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise SystemExit(f"the server exited with status {server.returncode}")
            try:
                if (await client.get("/api/v1/openapi.json")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.25)
    raise SystemExit("the server did not start in time")


async def searcher(
    base: str, token: str, probes: list[bytes], until: float, offset: int
) -> tuple[list[float], Counter[str]]:
    """One user searching back to back until `until`; latencies of successes, and outcomes."""
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()
    headers = {"Authorization": f"Bearer {token}"}
    form = {"collection": "load", "purpose": "investigation", "case": "LOAD-1"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as client:
        n = offset
        while time.monotonic() < until:
            files = {"photo": ("probe.jpg", probes[n % len(probes)], "image/jpeg")}
            n += 1
            started = time.perf_counter()
            answer = await client.post("/api/v1/searches", data=form, files=files)
            elapsed = time.perf_counter() - started
            body = answer.json()
            if answer.status_code == 201 and body.get("status") == "done":
                latencies.append(elapsed)
                outcomes["done, with results" if body["results"] else "done, no results"] += 1
            else:
                outcomes[f"error {answer.status_code} {body.get('error')}"] += 1
    return latencies, outcomes


async def run_load(base: str, tokens_: list[str], probes: list[bytes], seconds: float) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:  # load the models
        files = {"photo": ("probe.jpg", probes[0], "image/jpeg")}
        form = {"collection": "load", "purpose": "investigation", "case": "WARM-UP"}
        headers = {"Authorization": f"Bearer {tokens_[0]}"}
        warm = await client.post("/api/v1/searches", data=form, files=files, headers=headers)
        assert warm.status_code == 201, warm.text
    started = time.monotonic()
    until = started + seconds
    runs = await asyncio.gather(
        *(searcher(base, token, probes, until, i) for i, token in enumerate(tokens_))
    )
    elapsed = time.monotonic() - started
    latencies = sorted(x for lat, _ in runs for x in lat)
    outcomes: Counter[str] = sum((o for _, o in runs), Counter())
    errors = sum(n for what, n in outcomes.items() if what.startswith("error"))
    report = {
        "users": len(tokens_),
        "seconds": round(elapsed, 1),
        "searches": len(latencies),
        "searches_per_second": round(len(latencies) / elapsed, 2),
        "p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "p99_ms": round(latencies[int(0.99 * (len(latencies) - 1))] * 1000, 1)
        if latencies
        else None,
        "errors": errors,
        "outcomes": dict(outcomes),
    }
    print(json.dumps(report, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--faces", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--folder", type=Path, default=REPO.parent / "shared/data/faces-dev")
    args = parser.parse_args()
    if not args.folder.is_dir():
        raise SystemExit(f"needs the LFW photos at {args.folder}")
    with tempfile.TemporaryDirectory(prefix="faceledger-load-") as data:
        started = time.perf_counter()
        settings, tokens_ = build(Path(data), args.folder, args.users, args.faces)
        print(f"built {args.faces} synthetic faces in {time.perf_counter() - started:.1f} s")
        _, probe_paths = people_photos(args.folder)
        probes = [path.read_bytes() for path in probe_paths]
        port = free_port()
        command = [sys.executable, "-m", "faceledger.cli", "--data-dir", data, "serve"]
        log = (Path(data) / "server.log").open("wb")
        server = subprocess.Popen(
            [*command, "--port", str(port)],
            env={**os.environ, "FACELEDGER_DATA_DIR": str(settings.data_dir)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            asyncio.run(wait_ready(base, server))
            asyncio.run(run_load(base, tokens_, probes, args.seconds))
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            log.close()


if __name__ == "__main__":
    main()
