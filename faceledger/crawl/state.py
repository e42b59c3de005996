"""The crawl's memory: frontier, seen-set, outcomes, robots.txt and WARC bookkeeping.

One SQLite file (WAL) per crawl job, so a crawl killed at any instant resumes exactly:

- every URL ever considered has one row (the seen-set): queued, fetching, done, failed or
  refused with a reason slug, so nothing is evaluated or fetched twice and the statistics
  are a `GROUP BY` away, identical before and after a resume;
- a URL becomes `done` in the same transaction that advances its WARC file's committed
  offset, and only after that capture was fsynced, so "done" always means "archived";
- on open, URLs left `fetching` are queued again (their capture was never committed) and
  WARC files left open are cut back to their committed offset by the crawler.

The frontier is the `queued` rows ordered by depth then insertion: breadth-first.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Claim", "Counts", "CrawlState", "NewUrl"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS urls (
    id INTEGER PRIMARY KEY,
    url TEXT NOT NULL UNIQUE,
    fetch_url TEXT,
    kind TEXT NOT NULL,
    depth INTEGER NOT NULL,
    host TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    detail TEXT,
    shape TEXT,
    via TEXT,
    hops INTEGER NOT NULL DEFAULT 0,
    http_status INTEGER,
    bytes INTEGER NOT NULL DEFAULT 0,
    attempted INTEGER NOT NULL DEFAULT 0,
    title TEXT,
    warc_file TEXT,
    warc_record_id TEXT,
    payload_digest TEXT,
    fetched_at TEXT,
    updated REAL
);
CREATE INDEX IF NOT EXISTS urls_frontier ON urls (status, depth, id);
CREATE INDEX IF NOT EXISTS urls_shape ON urls (shape);
CREATE TABLE IF NOT EXISTS embeds (
    page TEXT NOT NULL,
    image TEXT NOT NULL,
    alt TEXT,
    via TEXT,
    PRIMARY KEY (page, image)
);
CREATE TABLE IF NOT EXISTS robots (
    origin TEXT PRIMARY KEY,
    mode TEXT NOT NULL,
    body TEXT NOT NULL,
    detail TEXT NOT NULL,
    fetched_at REAL
);
CREATE TABLE IF NOT EXISTS warc_files (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    committed INTEGER NOT NULL DEFAULT 0,
    captures INTEGER NOT NULL DEFAULT 0,
    closed INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""

STATUSES = ("queued", "fetching", "done", "failed", "refused")


@dataclass(frozen=True, slots=True)
class Claim:
    """A URL taken off the frontier: `url` is its canonical key, `fetch_url` what to request
    (the spelling it was first found under, so the archive matches the page's reference)."""

    url: str
    fetch_url: str
    kind: str
    depth: int
    hops: int
    via: str | None


@dataclass(frozen=True, slots=True)
class NewUrl:
    """A row for `add_many`."""

    url: str
    fetch_url: str | None
    kind: str
    depth: int
    host: str
    status: str = "queued"
    reason: str | None = None
    detail: str | None = None
    shape: str | None = None


@dataclass(slots=True)
class Counts:
    """Outcome counts as stored; the crawler's statistics are built from these."""

    pages: int = 0
    images: int = 0
    redirects: int = 0
    bytes: int = 0
    queued: int = 0
    fetching: int = 0
    page_fetches: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)


class CrawlState:
    """SQLite-backed crawl state; every method is one transaction. One process at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def _tx(self) -> _Transaction:
        return _Transaction(self._db)

    # ------------------------------------------------------------------ frontier

    def requeue_interrupted(self) -> int:
        """Queue again the URLs a killed crawl was fetching; returns how many."""
        with self._tx():
            cursor = self._db.execute(
                "UPDATE urls SET status='queued', updated=? WHERE status='fetching'",
                (time.time(),),
            )
        return cursor.rowcount

    def add(
        self,
        url: str,
        kind: str,
        depth: int,
        host: str,
        *,
        fetch_url: str | None = None,
        shape: str | None = None,
        via: str | None = None,
        hops: int = 0,
        status: str = "queued",
        reason: str | None = None,
        detail: str | None = None,
    ) -> bool:
        """Record `url` unless seen before; True when it is new."""
        with self._tx():
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO urls (url, fetch_url, kind, depth, host, status, reason,"
                " detail, shape, via, hops, updated) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    url,
                    fetch_url,
                    kind,
                    depth,
                    host,
                    status,
                    reason,
                    detail,
                    shape,
                    via,
                    hops,
                    time.time(),
                ),
            )
        return cursor.rowcount > 0

    def add_many(self, rows: Sequence[NewUrl]) -> int:
        """Insert many URLs in one transaction (a page's links); count the new ones."""
        now = time.time()
        added = 0
        with self._tx():
            for r in rows:
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO urls (url, fetch_url, kind, depth, host, status,"
                    " reason, detail, shape, updated) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (
                        r.url,
                        r.fetch_url,
                        r.kind,
                        r.depth,
                        r.host,
                        r.status,
                        r.reason,
                        r.detail,
                        r.shape,
                        now,
                    ),
                )
                added += cursor.rowcount
        return added

    def seen(self, url: str) -> bool:
        row = self._db.execute("SELECT 1 FROM urls WHERE url=?", (url,)).fetchone()
        return row is not None

    def via_of(self, url: str) -> str | None:
        row = self._db.execute("SELECT via FROM urls WHERE url=?", (url,)).fetchone()
        return row[0] if row else None

    def claim(self, kinds: Iterable[str], busy_hosts: Iterable[str] = ()) -> Claim | None:
        """Take the shallowest, oldest queued URL of `kinds` whose host is not busy."""
        kinds, busy = list(kinds), list(busy_hosts)
        if not kinds:
            return None
        sql = (
            "SELECT id, url, fetch_url, kind, depth, hops, via FROM urls WHERE status='queued'"
            f" AND kind IN ({','.join('?' * len(kinds))})"
        )
        if busy:
            sql += f" AND host NOT IN ({','.join('?' * len(busy))})"
        sql += " ORDER BY depth, id LIMIT 1"
        with self._tx():
            row = self._db.execute(sql, (*kinds, *busy)).fetchone()
            if row is None:
                return None
            self._db.execute(
                "UPDATE urls SET status='fetching', updated=? WHERE id=?", (time.time(), row[0])
            )
        return Claim(row[1], row[2] or row[1], row[3], row[4], row[5], row[6])

    def finish(
        self,
        url: str,
        status: str,
        reason: str | None,
        detail: str | None = None,
        *,
        http_status: int | None = None,
        nbytes: int = 0,
        title: str | None = None,
        fetched_at: str | None = None,
        attempted: bool = False,
        warc: tuple[str, int, str, str | None] | None = None,
    ) -> None:
        """Record a claimed URL's outcome; with `warc` = (file, end offset, record id,
        digest), also commit that capture, in the same transaction."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        with self._tx():
            self._db.execute(
                "UPDATE urls SET status=?, reason=?, detail=?, http_status=?, bytes=bytes+?,"
                " attempted=MAX(attempted, ?), title=?, fetched_at=?, warc_file=?,"
                " warc_record_id=?, payload_digest=?, updated=? WHERE url=?",
                (
                    status,
                    reason,
                    (detail or "")[:500] or None,
                    http_status,
                    nbytes,
                    int(attempted),
                    title,
                    fetched_at,
                    warc[0] if warc else None,
                    warc[2] if warc else None,
                    warc[3] if warc else None,
                    time.time(),
                    url,
                ),
            )
            if warc is not None:
                self._db.execute(
                    "UPDATE warc_files SET committed=?, captures=captures+1 WHERE name=?",
                    (warc[1], warc[0]),
                )

    def add_embeds(self, page: str, refs: Iterable[tuple[str, str | None, str]]) -> None:
        """Remember which images `page` embeds, with alt text: (image URL, alt, via)."""
        with self._tx():
            self._db.executemany(
                "INSERT OR IGNORE INTO embeds (page, image, alt, via) VALUES (?,?,?,?)",
                [(page, image, alt, via) for image, alt, via in refs],
            )

    def embeds(self) -> list[tuple[str, str, str | None]]:
        """(page URL, image URL, alt text) for every reference recorded."""
        rows = self._db.execute("SELECT page, image, alt FROM embeds ORDER BY rowid")
        return [(r[0], r[1], r[2]) for r in rows]

    def image_pages(self) -> dict[str, tuple[str, str | None]]:
        """Canonical image URL -> (URL, title) of the first archived page embedding it."""
        rows = self._db.execute(
            "SELECT e.image, COALESCE(u.fetch_url, u.url), u.title FROM embeds e"
            " JOIN urls u ON u.url = e.page WHERE u.status='done' ORDER BY e.rowid"
        )
        found: dict[str, tuple[str, str | None]] = {}
        for image, page, title in rows:
            found.setdefault(image, (page, title))
        return found

    def shape_counts(self) -> list[tuple[str, int]]:
        rows = self._db.execute(
            "SELECT shape, COUNT(*) FROM urls WHERE shape IS NOT NULL GROUP BY shape"
        )
        return [(r[0], r[1]) for r in rows]

    def urls(self, status: str | None = None) -> list[tuple[str, str, str, str | None]]:
        """(url, kind, status, reason) rows, optionally of one status; for reports and tests."""
        sql = "SELECT url, kind, status, reason FROM urls"
        rows = (
            self._db.execute(sql + " WHERE status=? ORDER BY id", (status,))
            if status
            else self._db.execute(sql + " ORDER BY id")
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    def counts(self) -> Counts:
        """Outcome counts straight from the table (consistent across resumes)."""
        counts = Counts()
        rows = self._db.execute(
            "SELECT status, kind, reason, COUNT(*), SUM(bytes), SUM(attempted) FROM urls"
            " GROUP BY status, kind, reason"
        )
        for status, kind, reason, number, nbytes, attempted in rows:
            counts.bytes += nbytes or 0
            if kind == "page":
                counts.page_fetches += attempted or 0
            slug = reason or "unknown"
            if status == "queued":
                counts.queued += number
            elif status == "fetching":
                counts.fetching += number
            elif status == "done" and reason == "page":
                counts.pages += number
            elif status == "done" and reason == "image":
                counts.images += number
            elif status == "done" and reason == "redirect":
                counts.redirects += number
            elif status == "refused":
                counts.refused[slug] = counts.refused.get(slug, 0) + number
            elif status == "failed":
                counts.errors[slug] = counts.errors.get(slug, 0) + number
        extra = self.get_meta("robots_bytes")
        counts.bytes += int(extra) if extra else 0
        return counts

    # ------------------------------------------------------------------ robots.txt

    def get_robots(self, origin: str) -> tuple[str, str, str] | None:
        row = self._db.execute(
            "SELECT mode, body, detail FROM robots WHERE origin=?", (origin,)
        ).fetchone()
        return (row[0], row[1], row[2]) if row else None

    def put_robots(self, origin: str, mode: str, text: str, detail: str) -> None:
        with self._tx():
            self._db.execute(
                "INSERT OR REPLACE INTO robots (origin, mode, body, detail, fetched_at)"
                " VALUES (?,?,?,?,?)",
                (origin, mode, text, detail, time.time()),
            )

    # ------------------------------------------------------------------ WARC files

    def next_warc_index(self) -> int:
        row = self._db.execute("SELECT COUNT(*) FROM warc_files").fetchone()
        return int(row[0])

    def register_warc(self, name: str) -> None:
        """Note a WARC file before it is created, so a crash right after still finds it."""
        with self._tx():
            self._db.execute("INSERT INTO warc_files (name) VALUES (?)", (name,))

    def commit_warc(self, name: str, offset: int) -> None:
        with self._tx():
            self._db.execute("UPDATE warc_files SET committed=? WHERE name=?", (offset, name))

    def close_warc(self, name: str, kept: bool = True) -> None:
        with self._tx():
            self._db.execute(
                "UPDATE warc_files SET closed=? WHERE name=?", (1 if kept else -1, name)
            )

    def open_warcs(self) -> list[tuple[str, int, int]]:
        """(name, committed offset, captures) of files a previous run left open."""
        rows = self._db.execute(
            "SELECT name, committed, captures FROM warc_files WHERE closed=0 ORDER BY id"
        )
        return [(r[0], r[1], r[2]) for r in rows]

    def closed_warcs(self) -> list[str]:
        rows = self._db.execute("SELECT name FROM warc_files WHERE closed=1 ORDER BY id")
        return [r[0] for r in rows]

    # ------------------------------------------------------------------ meta

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._tx():
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?,?)", (key, value))

    def add_meta_int(self, key: str, amount: int) -> None:
        with self._tx():
            current = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
            total = int(current[0]) + amount if current else amount
            self._db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?,?)", (key, str(total))
            )


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT (or ROLLBACK) on an autocommit connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")
