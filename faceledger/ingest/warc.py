"""Web archives (WARC and ARC, gzipped or not) as an ingestion source.

`iter_warc` yields one `SourceItem` per captured image. An image is whatever *payload* starts
with the magic bytes of a format the decoder accepts (`faceledger.faces.decode.sniff_format`,
the same test the crawler and the decoder apply): servers mislabel Content-Type often enough
that trusting it would both miss real images and feed HTML to the face pipeline.

Each image is linked to the page that embeds it. Pages may be stored after their images, so the
archive is read twice: pass one indexes HTML pages into a map of image URL -> page (URLs and
titles only, never image bytes); pass two streams the images and looks each one up. Memory is
bounded by the number of references indexed, not by the archive's size.

Pages are read by `faceledger.html_refs`, the parser the crawler uses too, with this module's
policy: every srcset candidate counts (whichever resolution was archived must match), lazy
`data-src` attributes are not read, and plain links are a weaker claim than embeds. A page
whose markup would stall the parser (`html_refs.parse_cost`) contributes no references; the
archive goes on.

A damaged archive is not an exception: the items read before the damage are yielded, then one
item with `error` saying where it broke, so an ingest job counts the error and moves on. Only a
file that is not a web archive at all raises.

Gzip is decoded here with the standard library rather than by warcio, so that a truncated or
corrupt gzip stream raises instead of silently ending, and whole-file gzip (not one member per
record) reads too. Offsets in error messages are therefore uncompressed offsets for gzip files.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import re
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BufferedIOBase
from pathlib import Path
from typing import BinaryIO, NamedTuple, TypeVar
from urllib.parse import urldefrag, urlsplit, urlunsplit

from warcio.archiveiterator import ArchiveIterator
from warcio.bufferedreaders import ChunkedDataException
from warcio.exceptions import ArchiveLoadFailed
from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import StatusAndHeadersParserException

from faceledger.errors import FaceledgerError
from faceledger.faces.decode import sniff_format
from faceledger.html_refs import RefRules, read_page
from faceledger.types import SourceItem

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MAX_PAGE_BYTES",
    "MAX_REFS_PER_PAGE",
    "iter_warc",
]

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
"""Largest image payload read into memory; a bigger one yields an error item instead."""

MAX_PAGE_BYTES = 5 * 1024 * 1024
"""HTML beyond this is not parsed: image references live near the top, hostile pages do not."""

MAX_REFS_PER_PAGE = 10_000
"""Cap on embedded-image references, and separately on links, taken from one page."""

MAX_INDEXED_REFS = 2_000_000
"""Cap on the whole page index, so a huge crawl cannot exhaust memory in pass one."""

_SNIFF_BYTES = 64
_CHUNK_BYTES = 1024 * 1024
_GZIP_MAGIC = b"\x1f\x8b"
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_HTML_STARTS = (b"<!doctype html", b"<html")
_ARC_FIRST_LINE = re.compile(rb"^\S+://\S* \S+ \d{8,14} \S+ \d+\r?\n")

_T = TypeVar("_T")


# --------------------------------------------------------------------------- public API


def iter_warc(path: Path | str, max_bytes: int = DEFAULT_MAX_BYTES) -> Iterator[SourceItem]:
    """Yield one `SourceItem` per image payload in the WARC/ARC archive at `path`.

    Raises `FileNotFoundError` or `ValueError` right away (not on first `next`) when the file
    is missing or is not a web archive, so a job can reject it before starting work.
    """
    path = Path(path)
    if max_bytes < 1:
        raise ValueError(f"max_bytes must be positive, got {max_bytes}")
    _check_is_archive(path)
    return _iter_items(path, max_bytes)


# --------------------------------------------------------------------------- the two passes


def _iter_items(path: Path, max_bytes: int) -> Iterator[SourceItem]:
    """Pass one builds the page index; pass two yields images (and at most one break)."""
    index = _PageIndex()
    for found in _walk(path, _read_page):
        if isinstance(found, _Page):
            index.add(found)

    def handle(record: ArcWarcRecord, offset: int) -> SourceItem | None:
        return _read_image(record, offset, path.name, index, max_bytes)

    for item in _walk(path, handle):
        if isinstance(item, _Break):
            yield SourceItem(
                image_url=path.resolve().as_uri(),
                data=None,
                warc_file=path.name,
                error=item.message,
            )
        else:
            yield item


@dataclass(frozen=True, slots=True)
class _Break:
    """Where and why the archive stopped being readable."""

    message: str


def _walk(path: Path, handle: Callable[[ArcWarcRecord, int], _T | None]) -> Iterator[_T | _Break]:
    """Run `handle` on every record, yielding its results, then a `_Break` if the file is bad.

    A result is only yielded once its record proved complete, so a truncated image never
    reaches the pipeline as a valid-looking item. `handle` runs inside the error guard because
    reading a payload is where a damaged stream shows up.
    """
    with _open_archive(path) as stream:
        records = ArchiveIterator(stream, arc2warc=False)
        unit = "uncompressed offset" if stream.gzipped else "offset"
        position = "at the start of the archive"
        try:
            for number, record in enumerate(records, start=1):
                start = records.offset
                label = f"record #{number} ({_describe(record)}) at {unit} {start}"
                position = f"in {label}"
                result = handle(record, start)
                problem = _finish(records, record)
                if problem:
                    yield _Break(f"{label} {problem}")
                    return
                if result is not None:
                    yield result
                position = f"after {label}"
            if stream.tell() > records.offset:
                yield _Break(f"unreadable data {position}: a truncated record or not a record")
        except _ARCHIVE_ERRORS as exc:
            detail = " ".join(str(exc).split()) or type(exc).__name__
            yield _Break(f"archive broken {position}: {detail}")


def _describe(record: ArcWarcRecord) -> str:
    return _target_uri(record) or str(record.rec_type)


def _finish(records: ArchiveIterator, record: ArcWarcRecord) -> str | None:
    """Drain `record` and say why it is damaged, or None if it is whole.

    warcio only warns (on stderr) about a record whose declared length does not land on the
    record separator; its error counter is how that corruption is noticed here.
    """
    separator_errors = records.err_count
    records.read_to_end()
    if record.format == "warc" and record.length is None:
        return "has no valid Content-Length: its headers are damaged or cut off"
    missing = getattr(record.raw_stream, "limit", 0)
    if missing > 0:
        return f"is truncated: {missing} of its {record.length} bytes are missing"
    if records.err_count > separator_errors:
        return "is not followed by a record separator: wrong Content-Length or inserted bytes"
    return None


# --------------------------------------------------------------------------- opening files


class _ArchiveBroken(FaceledgerError):
    """The archive's bytes ended early or failed to decompress.

    Deliberately not an EOFError: warcio treats EOFError as a clean end of archive, which
    would hide the damage.
    """

    code = "archive_broken"


_ARCHIVE_ERRORS = (
    ArchiveLoadFailed,
    StatusAndHeadersParserException,
    ChunkedDataException,
    _ArchiveBroken,
    zlib.error,
)


class _ArchiveStream:
    """Read-only byte stream over a plain or gzipped archive that counts bytes delivered."""

    def __init__(self, raw: BufferedIOBase) -> None:
        self.gzipped = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        self._source: BufferedIOBase = (
            gzip.GzipFile(fileobj=raw, mode="rb") if self.gzipped else raw
        )
        self._position = 0

    def read(self, size: int = -1) -> bytes:
        """Return up to `size` bytes; raise `_ArchiveBroken` on damage, never mid-delivery.

        `read1` does at most one underlying read, so bytes decoded before a truncation are
        returned first and the error surfaces on the next call, keeping earlier records whole.
        """
        try:
            data = self._source.read1(size) if size > 0 else self._source.read()
        except (EOFError, OSError, zlib.error) as exc:
            raise _ArchiveBroken(f"{type(exc).__name__}: {exc}") from exc
        self._position += len(data)
        return data

    def tell(self) -> int:
        """Bytes delivered so far (uncompressed for gzip); warcio uses it for offsets."""
        return self._position


@contextmanager
def _open_archive(path: Path) -> Iterator[_ArchiveStream]:
    """Open `path` as a decompressed byte stream, closing it however iteration ends."""
    with path.open("rb") as raw:
        yield _ArchiveStream(raw)


def _check_is_archive(path: Path) -> None:
    """Raise a clear error unless `path` starts like a WARC or ARC file."""
    if not path.exists():
        raise FileNotFoundError(f"web archive not found: {path}")
    if not path.is_file():
        raise ValueError(f"not a web archive file: {path} is not a regular file")
    with _open_archive(path) as stream:
        head = b""
        try:
            while len(head) < 512:
                chunk = stream.read(512 - len(head))
                if not chunk:
                    break
                head += chunk
        except _ArchiveBroken as exc:
            if not head:
                raise ValueError(f"not a web archive: {path} is not readable gzip ({exc})") from exc
    if not head:
        raise ValueError(f"not a web archive: {path} is empty")
    if not (head.startswith((b"WARC/", b"filedesc://")) or _ARC_FIRST_LINE.match(head)):
        raise ValueError(
            f"not a web archive: {path} does not start with a WARC or ARC record "
            f"(starts with {head[:32]!r})"
        )


# --------------------------------------------------------------------------- record metadata


@dataclass(frozen=True, slots=True)
class _Meta:
    """What a record says about itself, the same way for WARC and ARC."""

    uri: str
    status: int | None
    content_type: str | None


def _header(record: ArcWarcRecord, name: str) -> str | None:
    """A record header's value (warcio is untyped: this is where its answers get a type)."""
    value: str | None = record.rec_headers.get_header(name)
    return value


def _target_uri(record: ArcWarcRecord) -> str | None:
    return _header(record, "uri" if record.format == "arc" else "WARC-Target-URI")


def _candidate(record: ArcWarcRecord) -> _Meta | None:
    """Metadata of a record that may hold a wanted payload (2xx response, resource), else None.

    Revisits, requests, metadata and the rest carry no capture of their own and are skipped.
    """
    uri = _target_uri(record)
    if not uri or record.rec_type not in ("response", "resource"):
        return None
    http = record.http_headers
    if http is None:
        if record.rec_type == "response" and uri.lower().startswith(("http:", "https:")):
            return None  # an HTTP response whose headers are missing: nothing usable
        return _Meta(uri, None, _clean(record.content_type))
    if not http.protocol.upper().startswith("HTTP/"):
        return None
    status = _status_code(http.get_statuscode())
    if status is None or not 200 <= status < 300:
        return None
    content_type = http.get_header("Content-Type") or (
        record.content_type if record.format == "arc" else None
    )
    return _Meta(uri, status, _clean(content_type))


def _status_code(text: str | None) -> int | None:
    try:
        return int(text or "")
    except ValueError:
        return None


def _clean(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def _captured_at(record: ArcWarcRecord) -> datetime | None:
    """WARC-Date (ISO 8601) or the ARC 14-digit timestamp, as an aware UTC datetime."""
    if record.format == "arc":
        stamp = (_header(record, "archive-date") or "").strip()
        try:
            return datetime.strptime(stamp[:14].ljust(14, "0"), "%Y%m%d%H%M%S").replace(tzinfo=UTC)
        except ValueError:
            return None
    text = (_header(record, "WARC-Date") or "").strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _record_id(record: ArcWarcRecord, file_name: str, offset: int) -> str | None:
    """WARC-Record-ID; ARC has none, so give it a stable one from file name and offset."""
    if record.format == "arc":
        return f"<urn:arc:{file_name}:{offset}>"
    return _header(record, "WARC-Record-ID")


def _header_digest(record: ArcWarcRecord) -> str | None:
    if record.format == "arc":
        return None
    return _header(record, "WARC-Payload-Digest") or _header(record, "WARC-Block-Digest")


# --------------------------------------------------------------------------- pass two: images


def _read_image(
    record: ArcWarcRecord, offset: int, file_name: str, index: _PageIndex, max_bytes: int
) -> SourceItem | None:
    """The image item for `record`, or None when its payload is not an image."""
    meta = _candidate(record)
    if meta is None:
        return None
    stream = record.content_stream()
    head = _read_at_most(stream, _SNIFF_BYTES)
    if sniff_format(head) is None:
        return None
    digest = _header_digest(record)
    data, size, computed = _read_capped(stream, head, max_bytes, want_digest=digest is None)
    page = index.page_for(meta.uri)
    return SourceItem(
        image_url=meta.uri,
        data=data,
        page_url=page[0] if page else None,
        page_title=page[1] if page else None,
        captured_at=_captured_at(record),
        http_status=meta.status,
        content_type=meta.content_type,
        warc_file=file_name,
        warc_record_id=_record_id(record, file_name, offset),
        warc_digest=digest or computed,
        error=None
        if data is not None
        else f"image payload is {size} bytes, over the max_bytes limit of {max_bytes}; not read",
    )


def _read_at_most(stream: BinaryIO, size: int) -> bytes:
    """Read `size` bytes unless the stream ends first (warcio readers may return short)."""
    parts: list[bytes] = []
    remaining = size
    while remaining > 0:
        chunk = stream.read(remaining)
        if not chunk:
            break
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


def _read_capped(
    stream: BinaryIO, head: bytes, max_bytes: int, want_digest: bool
) -> tuple[bytes | None, int, str | None]:
    """Read the rest of a payload: (data or None if over `max_bytes`, size, sha1 digest).

    Past the cap, bytes are still counted and hashed but not kept, so an oversize record
    costs no memory yet still reports its size and digest.
    """
    hasher = hashlib.sha1() if want_digest else None
    parts: list[bytes] | None = []
    size = 0
    chunk = head
    while chunk:
        size += len(chunk)
        if hasher is not None:
            hasher.update(chunk)
        if parts is not None:
            parts.append(chunk)
            if size > max_bytes:
                parts = None
        chunk = stream.read(_CHUNK_BYTES)
    digest = f"sha1:{base64.b32encode(hasher.digest()).decode()}" if hasher else None
    return (b"".join(parts) if parts is not None else None), size, digest


# --------------------------------------------------------------------------- pass one: pages


class _Page(NamedTuple):
    """A parsed HTML page: its URL, title and normalised image references."""

    url: str
    title: str | None
    embeds: list[str]
    links: list[str]


class _PageIndex:
    """Image URL -> first embedding page, where an embed outranks a plain link."""

    def __init__(self, max_refs: int = MAX_INDEXED_REFS) -> None:
        self._pages: list[tuple[str, str | None]] = []
        self._refs: dict[str, tuple[int, bool]] = {}
        self._max_refs = max_refs

    def add(self, page: _Page) -> None:
        """Index `page`; earlier pages keep their claims unless only linking."""
        number = len(self._pages)
        claimed = False
        for key in page.embeds:
            known = self._refs.get(key)
            if (known is None and len(self._refs) < self._max_refs) or (known and not known[1]):
                self._refs[key] = (number, True)
                claimed = True
        for key in page.links:
            if key not in self._refs and len(self._refs) < self._max_refs:
                self._refs[key] = (number, False)
                claimed = True
        if claimed:
            self._pages.append((page.url, page.title))

    def page_for(self, image_url: str) -> tuple[str, str | None] | None:
        """(page URL, title) of the page that references `image_url`, if any."""
        key = _url_key(image_url)
        found = self._refs.get(key) if key else None
        return self._pages[found[0]] if found else None


def _read_page(record: ArcWarcRecord, offset: int) -> _Page | None:
    """Parse `record` as an HTML page, or None if it is not one."""
    meta = _candidate(record)
    if meta is None:
        return None
    stream = record.content_stream()
    head = _read_at_most(stream, _SNIFF_BYTES)
    if sniff_format(head) is not None or not _looks_like_html(meta.content_type, head):
        return None
    html = head + _read_at_most(stream, MAX_PAGE_BYTES - len(head))
    return _parse_page(urldefrag(meta.uri).url, html)


def _looks_like_html(content_type: str | None, head: bytes) -> bool:
    """Trust an HTML Content-Type, else sniff for an HTML document start."""
    if content_type and content_type.split(";", 1)[0].strip().lower() in _HTML_TYPES:
        return True
    return head.lstrip(b"\xef\xbb\xbf \t\r\n").lower().startswith(_HTML_STARTS)


def _parse_page(url: str, html: bytes) -> _Page:
    """Title and image references of one page; bad or hostile markup only costs its own refs."""
    content = read_page(html, url, _PAGE_RULES)
    return _Page(url, content.title, [image.url for image in content.images], content.links)


def _url_key(url: str) -> str | None:
    """Comparable form of an http(s) URL: no fragment, lower-case scheme and host.

    Applied to both page references and WARC-Target-URIs, so trivial spelling differences
    (`HTTP://Example.COM` vs `http://example.com/`) still link an image to its page.
    """
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.netloc:
        return None
    key = urlunsplit((scheme, parts.netloc.lower(), parts.path or "/", parts.query, ""))
    return key.replace(" ", "%20")


_PAGE_RULES = RefRules(
    max_links=MAX_REFS_PER_PAGE,
    max_images=MAX_REFS_PER_PAGE,
    every_candidate=True,
    canonical=_url_key,
)
"""How pass one reads a page: every srcset candidate, no lazy attributes, links kept apart
from embeds, no node cap (the reference caps bound the walk), references as URL keys."""
