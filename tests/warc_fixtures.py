"""Build small WARC and ARC files for tests.

WARCs are written with warcio's own `WARCWriter`, so they are what real crawlers produce
(digests, Content-Length, gzip member per record). ARC has no writer in warcio, so
`write_arc` writes ARC v1 by hand: a `filedesc://` header record, then one
`URL IP DATE content-type length` line and HTTP response per record.

Typical use::

    write_warc(path, pages=[(url, html)], images=[(url, jpeg_bytes, "image/jpeg")], gzip=True)
"""

from __future__ import annotations

import gzip as gzip_module
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from io import BytesIO
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

DEFAULT_WARC_DATE = "2024-05-06T07:08:09Z"
DEFAULT_ARC_DATE = "20240506070809"

Page = tuple[str, str]
"""(URL, HTML) of a page, served as `text/html; charset=utf-8`."""

Image = tuple[str, bytes, str]
"""(URL, body, Content-Type) of an image (or anything else) served with status 200."""


@dataclass(frozen=True, slots=True)
class Capture:
    """One HTTP response with full control over how it is served."""

    url: str
    body: bytes
    content_type: str | None
    status: int = 200
    chunked: bool = False
    """Send with `Transfer-Encoding: chunked` (body split in 3 chunks)."""
    gzip_encoded: bool = False
    """Send with `Content-Encoding: gzip`."""
    extra_headers: tuple[tuple[str, str], ...] = ()


class WrittenWarc(NamedTuple):
    """What `write_warc` wrote: the file, and per URL its response's record ID and digest."""

    path: Path
    record_ids: dict[str, str]
    payload_digests: dict[str, str]


def write_warc(
    path: Path,
    pages: Sequence[Page] = (),
    images: Sequence[Image] = (),
    *,
    gzip: bool = True,
    images_first: bool = False,
    captures: Sequence[Capture] = (),
    resources: Sequence[Image] = (),
    revisits: Sequence[str] = (),
    requests: bool = False,
    warcinfo: bool = True,
    date: str = DEFAULT_WARC_DATE,
) -> WrittenWarc:
    """Write a WARC with one response record per page, image and capture.

    Order: warcinfo, pages and images (images first if `images_first`), `captures`,
    `resources` (WARC `resource` records, no HTTP), then a `revisit` record for each URL in
    `revisits` (pointing at that URL's earlier response when there is one). With `requests`,
    each response is preceded by a GET `request` record, as crawlers write them.
    """
    page_captures = [Capture(url, html.encode(), "text/html; charset=utf-8") for url, html in pages]
    image_captures = [Capture(url, body, ctype) for url, body, ctype in images]
    ordered = image_captures + page_captures if images_first else page_captures + image_captures
    written = WrittenWarc(Path(path), {}, {})
    with Path(path).open("wb") as out:
        writer = WARCWriter(out, gzip=gzip)
        if warcinfo:
            info = writer.create_warcinfo_record(Path(path).name, {"software": "faceledger-tests"})
            writer.write_record(info)
        for capture in [*ordered, *captures]:
            if requests:
                writer.write_record(_request_record(writer, capture.url, date))
            _write_response(writer, capture, date, written)
        for url, body, ctype in resources:
            _write_resource(writer, url, body, ctype, date, written)
        for url in revisits:
            writer.write_record(_revisit_record(writer, url, date, written))
    return written


def write_arc(
    path: Path, records: Sequence[Capture], *, gzip: bool = False, date: str = DEFAULT_ARC_DATE
) -> Path:
    """Write an ARC v1 file by hand (gzip: one member per record, like real .arc.gz)."""
    members = [_arc_header(Path(path).name, date)]
    for capture in records:
        block = _http_response(capture)
        ctype = capture.content_type or "no-type"
        line = f"{capture.url} 192.0.2.1 {date} {ctype} {len(block)}\n"
        members.append(line.encode() + block + b"\n")
    with Path(path).open("wb") as out:
        for member in members:
            out.write(gzip_module.compress(member) if gzip else member)
    return Path(path)


def http_response_bytes(capture: Capture) -> bytes:
    """The raw HTTP response (status line, headers, encoded body) for `capture`."""
    return _http_response(capture)


# --------------------------------------------------------------------------- helpers


def _http_headers(capture: Capture, body_length: int) -> StatusAndHeaders:
    headers: list[tuple[str, str]] = []
    if capture.content_type is not None:
        headers.append(("Content-Type", capture.content_type))
    if capture.gzip_encoded:
        headers.append(("Content-Encoding", "gzip"))
    if capture.chunked:
        headers.append(("Transfer-Encoding", "chunked"))
    else:
        headers.append(("Content-Length", str(body_length)))
    headers.extend(capture.extra_headers)
    return StatusAndHeaders(_status_line(capture.status), headers, protocol="HTTP/1.1")


def _status_line(status: int) -> str:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    return f"{status} {reason}"


def _encoded_body(capture: Capture) -> bytes:
    body = gzip_module.compress(capture.body) if capture.gzip_encoded else capture.body
    return _chunk(body) if capture.chunked else body


def _chunk(body: bytes) -> bytes:
    """HTTP/1.1 chunked transfer coding of `body`, in three chunks."""
    step = max(1, len(body) // 3 + 1)
    parts = [body[i : i + step] for i in range(0, len(body), step)]
    encoded = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts)
    return encoded + b"0\r\n\r\n"


def _http_response(capture: Capture) -> bytes:
    body = _encoded_body(capture)
    headers = _http_headers(capture, len(body))
    return headers.to_bytes() + body


def _write_response(writer: WARCWriter, capture: Capture, date: str, written: WrittenWarc) -> None:
    body = _encoded_body(capture)
    record = writer.create_warc_record(
        capture.url,
        "response",
        payload=BytesIO(body),
        length=len(body),
        http_headers=_http_headers(capture, len(body)),
        warc_headers_dict={"WARC-Date": date},
    )
    writer.write_record(record)
    _remember(record.rec_headers, capture.url, written)


def _write_resource(
    writer: WARCWriter, url: str, body: bytes, ctype: str, date: str, written: WrittenWarc
) -> None:
    record = writer.create_warc_record(
        url,
        "resource",
        payload=BytesIO(body),
        length=len(body),
        warc_content_type=ctype,
        warc_headers_dict={"WARC-Date": date},
    )
    writer.write_record(record)
    _remember(record.rec_headers, url, written)


def _request_record(writer: WARCWriter, url: str, date: str) -> ArcWarcRecord:
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = StatusAndHeaders(
        f"GET {target} HTTP/1.1", [("Host", parts.netloc)], is_http_request=True
    )
    return writer.create_warc_record(
        url,
        "request",
        payload=BytesIO(b""),
        length=0,
        http_headers=headers,
        warc_headers_dict={"WARC-Date": date},
    )


def _revisit_record(writer: WARCWriter, url: str, date: str, written: WrittenWarc) -> ArcWarcRecord:
    digest = written.payload_digests.get(url, "sha1:3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ")
    headers = StatusAndHeaders("200 OK", [("Content-Type", "image/jpeg")], protocol="HTTP/1.1")
    return writer.create_revisit_record(
        url,
        digest=digest,
        refers_to_uri=url,
        refers_to_date=date,
        http_headers=headers,
        warc_headers_dict={"WARC-Date": date},
    )


def _remember(rec_headers: StatusAndHeaders, url: str, written: WrittenWarc) -> None:
    written.record_ids[url] = rec_headers.get_header("WARC-Record-ID")
    digest = rec_headers.get_header("WARC-Payload-Digest")
    if digest:
        written.payload_digests[url] = digest


def _arc_header(name: str, date: str) -> bytes:
    body = b"1 0 faceledger-tests\nURL IP-address Archive-date Content-type Archive-length\n"
    line = f"filedesc://{name} 0.0.0.0 {date} text/plain {len(body)}\n"
    return line.encode() + body + b"\n"
