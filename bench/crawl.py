"""Crawl throughput: `faceledger crawl` over a generated local site, and where the time goes.

A site of `--pages` HTML pages (a tree, four links per page, each page embedding one of
`--images` real face photos from faces-dev) is served by a separate process on 127.0.0.1,
so the server does not share the crawler's interpreter. Measured in one run:

1. baseline: the same pages and images fetched by a bare httpx loop with the same
   concurrency (no robots.txt, scope, SSRF guard, WARC or state): the network's share;
2. the crawl job itself (`faceledger.crawl.jobs`: ledger, scope, robots, guard, WARC,
   resumable state), then its ingestion into a collection;
3. the ingestion's stages on the same images in one process: decode, detect, embed
   (with the age estimate), index.

Politeness is off for the measurement (no per-host delay, 8 connections to the one host):
it measures the crawler, not the delay it would keep on a real site.

    python bench/crawl.py [--pages 2000] [--images 200] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import numpy as np

from faceledger.auth.passwords import generate_password
from faceledger.auth.users import init_admin
from faceledger.config import Settings, load_settings
from faceledger.crawl.jobs import CrawlRequest, run_job, start_job
from faceledger.crawl.settings import ScopeOptions
from faceledger.faces.decode import decode_image
from faceledger.faces.pipeline import FacePipeline
from faceledger.index.local import LocalIndex
from faceledger.policy.collections import create_collection
from faceledger.workspace import Workspace

REPO = Path(__file__).resolve().parents[1]
FANOUT = 4
CONCURRENCY = 8


def site_paths(pages: int, images: int) -> list[str]:
    return [f"/p/{n}" for n in range(pages)] + [f"/img/{k}.jpg" for k in range(images)]


def _page(number: int, pages: int, images: int) -> bytes:
    links = "".join(
        f'<a href="/p/{child}">page {child}</a>'
        for child in range(number * FANOUT + 1, number * FANOUT + FANOUT + 1)
        if child < pages
    )
    image = f'<img src="/img/{number % images}.jpg" alt="photo {number % images}">'
    return (
        f"<!doctype html><html><head><title>Page {number}</title></head>"
        f"<body><h1>Page {number}</h1>{image}{links}</body></html>"
    ).encode()


def serve(port: multiprocessing.Queue, pages: int, photos: list[str]) -> None:
    """The site, in its own process: pages of a 4-ary tree, each embedding one photo."""
    blobs = [Path(p).read_bytes() for p in photos]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            kind, body = "text/html", b""
            if self.path == "/robots.txt":
                kind, body = "text/plain", b"User-agent: *\nAllow: /\n"
            elif self.path.startswith("/p/") and self.path[3:].isdigit():
                body = _page(int(self.path[3:]), pages, len(blobs))
            elif self.path.startswith("/img/") and self.path.endswith(".jpg"):
                kind, body = "image/jpeg", blobs[int(self.path[5:-4]) % len(blobs)]
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port.put(server.server_address[1])
    server.serve_forever()


async def fetch_all(base: str, paths: list[str]) -> float:
    """Seconds a bare httpx loop takes to GET every path with CONCURRENCY connections."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for path in paths:
        queue.put_nowait(path)
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=base, limits=limits) as client:

        async def worker() -> None:
            while not queue.empty():
                response = await client.get(queue.get_nowait())
                response.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return time.perf_counter() - started


def crawl_job(settings: Settings, seed: str, pages: int, workers: int) -> dict[str, object]:
    workspace = Workspace(settings)
    with workspace.sessions() as session:
        admin = init_admin(session, "bench", generate_password())
        create_collection(session, admin, "bench", legal_basis="benchmark of crawling")
        options = ScopeOptions(
            seeds=(seed,),
            max_depth=12,
            max_pages=pages,
            max_per_shape=pages,
            allow_addresses=("127.0.0.1",),
        )
        job = start_job(session, settings, admin, CrawlRequest("bench", "bench", "B-1", options))
        job_id = job.id
    started = time.perf_counter()
    outcome = run_job(workspace, job_id, "bench", workers=workers)
    total = time.perf_counter() - started
    return {**outcome.as_dict(), "total_seconds": total}


def stages(settings: Settings, photos: list[str]) -> dict[str, float]:
    """Milliseconds per image of each ingestion stage, one process, one thread."""
    pipeline = FacePipeline(settings)
    blobs = [Path(p).read_bytes() for p in photos]
    spent = {"decode": 0.0, "detect": 0.0, "embed": 0.0, "index": 0.0}
    vectors = []
    for data in blobs:
        t0 = time.perf_counter()
        decoded = decode_image(data, pipeline.limits, max_long_side=pipeline.max_side)
        t1 = time.perf_counter()
        found = pipeline.detector.detect(decoded.rgb)
        t2 = time.perf_counter()
        faces = pipeline.describe(decoded, found)
        t3 = time.perf_counter()
        spent["decode"] += t1 - t0
        spent["detect"] += t2 - t1
        spent["embed"] += t3 - t2
        vectors.extend(face.embedding for face in faces)
    with tempfile.TemporaryDirectory() as folder:
        index = LocalIndex(Path(folder) / "bench.faiss")
        matrix = np.asarray(vectors, dtype=np.float32)
        t0 = time.perf_counter()
        index.add(np.arange(1, len(matrix) + 1, dtype=np.int64), matrix)
        index.save()
        spent["index"] = time.perf_counter() - t0
    return {name: 1000 * seconds / len(blobs) for name, seconds in spent.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--folder", type=Path, default=REPO.parent / "shared/data/faces-dev")
    args = parser.parse_args()
    photos = [str(p) for p in sorted(args.folder.glob("*/*.jpg"))]
    step = max(1, len(photos) // args.images)
    photos = photos[::step][: args.images]
    ports: multiprocessing.Queue = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(ports, args.pages, photos), daemon=True)
    server.start()
    base = f"http://127.0.0.1:{ports.get(timeout=30)}"
    try:
        with tempfile.TemporaryDirectory() as data:
            settings = load_settings(
                Path(data),
                workers=args.workers,
                model_dir=REPO / "bench/out/models",
                crawl_per_host_delay=0.0,
                crawl_per_host_concurrency=CONCURRENCY,
                crawl_concurrency=CONCURRENCY,
            )
            bare = asyncio.run(fetch_all(base, site_paths(args.pages, len(photos))))
            job = crawl_job(settings, f"{base}/p/0", args.pages, args.workers)
            per_image = stages(settings, photos)
    finally:
        server.terminate()
    crawl_s, ingest_s = float(job["crawl_seconds"]), float(job["ingest_seconds"])
    fetched = args.pages + len(photos)
    report = {
        "pages": job["pages"],
        "images": job["images"],
        "faces_indexed": job["faces_indexed"],
        "errors": job["errors"],
        "bare_fetch_seconds": round(bare, 2),
        "crawl_seconds": round(crawl_s, 2),
        "ingest_seconds": round(ingest_s, 2),
        "total_seconds": round(float(job["total_seconds"]), 2),
        "bare_urls_per_s": round(fetched / bare, 1),
        "crawl_pages_per_s": round(int(job["pages"]) / crawl_s, 1),
        "crawl_urls_per_s": round(fetched / crawl_s, 1),
        "crawler_overhead_vs_bare_fetch": round(crawl_s / bare, 2),
        "ingest_images_per_s": round(int(job["images"]) / ingest_s, 1),
        "end_to_end_pages_per_s": round(int(job["pages"]) / float(job["total_seconds"]), 1),
        "stage_ms_per_image": {k: round(v, 2) for k, v in per_image.items()},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
