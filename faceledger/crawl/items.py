"""A finished (or running) crawl job as an ingestion source: its images with their pages.

`iter_warc` links an image to the page embedding it only when both are in the same file,
and a crawl rotates its WARC files by size, so a page and its images often land in
different files. The crawl state knows every page -> image reference (with alt text), so
this fills in `page_url` and `page_title` where the archive alone cannot. Only closed WARC
files are read; the bytes, digests and record ids are the archive's own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

from faceledger.crawl.crawler import STATE_FILE, WARC_DIR
from faceledger.crawl.scope import canonicalize
from faceledger.crawl.state import CrawlState
from faceledger.crawl.warcout import OPEN_SUFFIX
from faceledger.ingest.warc import DEFAULT_MAX_BYTES, iter_warc
from faceledger.types import SourceItem

__all__ = ["crawl_warc_files", "iter_crawl_items"]


def crawl_warc_files(job_dir: Path) -> list[Path]:
    """The closed WARC files of the crawl job in `job_dir`, in the order written."""
    folder = Path(job_dir) / WARC_DIR
    return sorted(p for p in folder.glob("crawl-*.warc.gz") if not p.name.endswith(OPEN_SUFFIX))


def iter_crawl_items(job_dir: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> Iterator[SourceItem]:
    """Every image archived by the crawl in `job_dir`, linked to its embedding page."""
    state = CrawlState(Path(job_dir) / STATE_FILE)
    try:
        pages = state.image_pages()
    finally:
        state.close()
    for path in crawl_warc_files(job_dir):
        for item in iter_warc(path, max_bytes=max_bytes):
            if item.page_url is None and item.error is None:
                found = pages.get(_key(item.image_url))
                if found is not None:
                    item = dataclasses.replace(item, page_url=found[0], page_title=found[1])
            yield item


def _key(url: str) -> str:
    try:
        return canonicalize(url)
    except ValueError:
        return url
