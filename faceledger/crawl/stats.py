"""Crawl statistics: what the CLI prints, `stats.json` holds and the ledger records.

They are computed from the crawl state rather than counted in memory, so a resumed crawl
reports the same figures a crawl that was never interrupted would, and the file is written
atomically (temp file + rename) so a reader polling it never sees half a document.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["CrawlStats", "read_stats", "write_json", "write_stats"]


@dataclass(slots=True)
class CrawlStats:
    """Figures of one crawl job so far (cumulative over resumes unless noted)."""

    pages: int = 0
    """HTML pages archived with a 2xx answer."""
    images: int = 0
    """Images archived (by their bytes, wherever they were referenced)."""
    redirects: int = 0
    bytes: int = 0
    """Body bytes downloaded, including ones discarded (too large, not wanted)."""
    refused: dict[str, int] = field(default_factory=dict)
    """URLs not fetched or not kept, by reason (`robots`, `out_of_scope`, `trap`, ...)."""
    errors: dict[str, int] = field(default_factory=dict)
    """URLs that failed, by reason (`timeout`, `http_404`, `redirect_loop`, ...)."""
    warc_files: list[str] = field(default_factory=list)
    """Closed WARC files of this job (absolute paths), in order; ready for ingestion."""
    queued: int = 0
    in_flight: int = 0
    elapsed_s: float = 0.0
    """Seconds this run (since the last start or resume) has taken."""
    pages_per_s: float = 0.0
    images_per_s: float = 0.0
    finished: bool = False
    stop_reason: str | None = None
    """`done` (frontier empty), `page_cap`, `byte_cap`, or `cancelled`."""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write `data` as JSON to `path` atomically: a reader polling it never sees half."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def write_stats(path: Path, stats: CrawlStats) -> None:
    """Write `stats` as JSON to `path` atomically."""
    write_json(path, stats.to_dict())


def read_stats(path: Path) -> CrawlStats:
    """Read a `stats.json` written by `write_stats` (e.g. to show a running crawl)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    known = {k: v for k, v in data.items() if k in CrawlStats.__dataclass_fields__}
    return CrawlStats(**known)
