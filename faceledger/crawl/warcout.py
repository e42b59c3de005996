"""WARC output: every capture the crawl keeps, as a standard, verifiable web archive.

Ingestion reads faces out of these files and evidence cites them, so each capture is written
as a gzip member per record (`response`, then its `request`, then a `metadata` record with
what the crawler extracted), linked by `WARC-Concurrent-To` and carrying block and payload
digests and the IP address actually connected to. Bodies are stored as the server sent them
(still content-encoded; transfer-encoding is already undone, so that header is dropped).

Durability is what makes resume exact: a file is written as `crawl-NNNNN.warc.gz.open` and
only renamed to `crawl-NNNNN.warc.gz` once closed, each capture is flushed and fsynced before
the crawl state marks its URL done, and the state remembers the offset after the last
committed capture. A SIGKILL can therefore leave at most a partial tail past that offset;
`recover` cuts it off and closes the file, so the archives never hold a capture twice.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from faceledger.crawl.fetch import FetchResult

__all__ = ["OPEN_SUFFIX", "WarcFileWriter", "Written", "recover", "warc_name"]

OPEN_SUFFIX = ".open"
_DROPPED_HEADERS = frozenset({"transfer-encoding"})


def warc_name(index: int, prefix: str = "crawl") -> str:
    """Final file name of the `index`-th WARC file of a crawl."""
    return f"{prefix}-{index:05d}.warc.gz"


@dataclass(frozen=True, slots=True)
class Written:
    """Where a capture landed: file name, offset after it, its response record id, digest."""

    file: str
    end_offset: int
    record_id: str
    payload_digest: str | None


def _warc_date(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class WarcFileWriter:
    """Writes captures into one `.open` WARC file at a time; not thread-safe (one lock)."""

    def __init__(self, directory: Path, info: dict[str, str] | None = None) -> None:
        self.directory = directory
        self.info = info or {}
        self._file: BinaryIO | None = None
        self._writer: WARCWriter | None = None
        self.name: str | None = None

    @property
    def is_open(self) -> bool:
        return self._file is not None

    @property
    def size(self) -> int:
        return self._file.tell() if self._file is not None else 0

    def open(self, name: str) -> int:
        """Start `name` (as `name.open`) with a warcinfo record; return the offset after it."""
        if self._file is not None:
            raise RuntimeError(f"{self.name} is still open")
        self.directory.mkdir(parents=True, exist_ok=True)
        handle = (self.directory / (name + OPEN_SUFFIX)).open("xb")
        self._file, self.name = handle, name
        self._writer = WARCWriter(handle, gzip=True, warc_version="1.1")
        info = {"software": "faceledger crawler", "format": "WARC File Format 1.1", **self.info}
        self._writer.write_record(self._writer.create_warcinfo_record(name, info))
        return self._sync()

    def write(self, result: FetchResult, metadata: dict[str, object] | None = None) -> Written:
        """Append one capture (response, request, optional metadata); durable on return."""
        writer = self._writer
        if writer is None or self.name is None:
            raise RuntimeError("no WARC file is open")
        date = _warc_date(result.started_at)
        headers = [(k, v) for k, v in result.headers if k.lower() not in _DROPPED_HEADERS]
        status_line = f"{result.status} {result.reason_phrase}".strip()
        warc_headers = {"WARC-Date": date}
        if result.peer_ip:
            warc_headers["WARC-IP-Address"] = result.peer_ip
        if result.truncated:
            warc_headers["WARC-Truncated"] = "length"
        response = writer.create_warc_record(
            result.url,
            "response",
            payload=io.BytesIO(result.raw_body),
            length=None,
            warc_headers_dict=warc_headers,
            http_headers=StatusAndHeaders(status_line, headers, protocol=result.http_version),
        )
        record_id = response.rec_headers.get_header("WARC-Record-ID")
        request_line = f"GET {result.request_target} {result.http_version}"
        request = writer.create_warc_record(
            result.url,
            "request",
            payload=io.BytesIO(b""),
            warc_headers_dict={"WARC-Date": date, "WARC-Concurrent-To": record_id},
            http_headers=StatusAndHeaders(
                request_line, list(result.request_headers), is_http_request=True
            ),
        )
        writer.write_record(response)
        writer.write_record(request)
        if metadata is not None:
            body = json.dumps(metadata, ensure_ascii=False, sort_keys=True).encode("utf-8")
            writer.write_record(
                writer.create_warc_record(
                    result.url,
                    "metadata",
                    payload=io.BytesIO(body),
                    length=len(body),
                    warc_content_type="application/json",
                    warc_headers_dict={"WARC-Date": date, "WARC-Concurrent-To": record_id},
                )
            )
        end = self._sync()
        digest = response.rec_headers.get_header("WARC-Payload-Digest")
        return Written(self.name, end, record_id, digest)

    def close(self) -> Path | None:
        """Close the open file and give it its final name; return that path."""
        if self._file is None or self.name is None:
            return None
        self._sync()
        self._file.close()
        final = self.directory / self.name
        os.replace(self.directory / (self.name + OPEN_SUFFIX), final)
        _fsync_dir(self.directory)
        self._file, self._writer, self.name = None, None, None
        return final

    def abandon(self) -> None:
        """Close the handle without finishing the file (the next start recovers it)."""
        if self._file is not None:
            self._file.close()
        self._file, self._writer, self.name = None, None, None

    def _sync(self) -> int:
        assert self._file is not None
        self._file.flush()
        os.fsync(self._file.fileno())
        return self._file.tell()


def recover(directory: Path, name: str, committed: int, captures: int) -> Path | None:
    """Finish a file a killed crawl left open: cut it to `committed` bytes and close it.

    Bytes past `committed` belong to captures the state never marked done; they are fetched
    again, so keeping them would archive those URLs twice. A file with no committed capture
    is deleted. Returns the final path, or None when nothing was kept.
    """
    final = directory / name
    partial = directory / (name + OPEN_SUFFIX)
    if not partial.exists():
        return final if final.exists() and captures > 0 else None
    if captures <= 0 or committed <= 0:
        partial.unlink()
        return None
    with partial.open("r+b") as handle:
        handle.truncate(committed)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, final)
    _fsync_dir(directory)
    return final
