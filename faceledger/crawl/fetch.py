"""One polite, bounded HTTP GET at a time: the crawler's only way onto the network.

Every request goes through the SSRF-guarded transport and never follows redirects (the
crawler follows them itself, so each hop is re-checked against scope, robots.txt and the
guard). Politeness is per host: at most `per_host_concurrency` requests in flight and at
least `per_host_delay` seconds (or robots.txt's crawl-delay) between request starts. 429
and 5xx answers, and failed connections, are retried with exponential backoff, honouring
`Retry-After` up to a cap; a backoff delays the whole host, not just the one URL.

Bodies are hostile until read: `Content-Length` is only used to refuse early (a server can
claim anything), bodies are streamed and counted, and compressed bodies are inflated here
with a bound on the *output* of every step, so a gzip bomb costs at most the cap in memory.
The raw bytes (still content-encoded, as the server sent them) are kept for the WARC record;
the decoded bytes are used for sniffing and link extraction. Whether a body is HTML or an
image is decided by its bytes (`sniff_format` and the WHATWG HTML signatures), never by the
URL's extension.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import urljoin

import httpx

from faceledger.crawl.config import CrawlConfig
from faceledger.crawl.guard import AddressGuard, ResolveError, guarded_transport
from faceledger.errors import FaceledgerError
from faceledger.faces.decode import sniff_format

__all__ = [
    "RETRY_STATUSES",
    "FetchError",
    "FetchResult",
    "Fetcher",
    "Politeness",
    "parse_retry_after",
    "sniff_kind",
]

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
ACCEPT = "text/html,application/xhtml+xml,image/avif,image/webp,image/*;q=0.9,*/*;q=0.5"
ACCEPT_ENCODING = "gzip, deflate"
"""Only what `_Inflater` decodes, so every body we accept can be bounded while inflating."""

Kind = Literal["html", "image", "other"]
_HTML_SIGNATURES = (
    b"<!doctype html",
    b"<html",
    b"<head",
    b"<script",
    b"<iframe",
    b"<h1",
    b"<div",
    b"<font",
    b"<table",
    b"<a",
    b"<style",
    b"<title",
    b"<b",
    b"<body",
    b"<br",
    b"<p",
    b"<!--",
)
_HTML_TYPES = ("text/html", "application/xhtml+xml")


class FetchError(FaceledgerError):
    """A fetch that produced no usable response; `reason` is a stats slug.

    `bytes_read` counts body bytes received before giving up (they still cost budget).
    """

    code = "source_unavailable"
    http_status = 502

    def __init__(self, reason: str, detail: str = "", bytes_read: int = 0) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.bytes_read = bytes_read

    @property
    def retryable(self) -> bool:
        """Connection failures may be transient; a hanging or hostile server is not retried."""
        return self.reason in ("connect_error", "connect_timeout")


@dataclass(frozen=True, slots=True)
class FetchResult:
    """One complete HTTP response, with what the WARC writer needs to archive it."""

    url: str
    status: int
    reason_phrase: str
    http_version: str
    request_target: str
    request_headers: list[tuple[str, str]]
    headers: list[tuple[str, str]]
    raw_body: bytes
    body: bytes
    started_at: datetime
    elapsed: float
    peer_ip: str | None = None
    attempts: int = 1
    truncated: bool = False
    bytes_received: int = 0
    kind: Kind = field(default="other")

    def header(self, name: str) -> str | None:
        """First value of header `name` (case-insensitive), or None."""
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)

    @property
    def location(self) -> str | None:
        """Absolute redirect target of a 3xx response, or None."""
        target = self.header("location")
        if not (300 <= self.status < 400) or not target or not target.strip():
            return None
        try:
            return urljoin(self.url, target.strip())
        except ValueError:
            return None


def sniff_kind(body: bytes, content_type: str | None) -> Kind:
    """HTML, image or other, judged by the bytes; Content-Type only breaks ties for text.

    A declared text/html body that starts with no HTML signature (broken markup, a text
    preamble) still counts as HTML as long as it does not look binary.
    """
    if sniff_format(body[:18]) is not None:
        return "image"
    head = body[:1024].lstrip(b"\xef\xbb\xbf \t\r\n\x0c").lower()
    for signature in _HTML_SIGNATURES:
        if head.startswith(signature):
            tail = head[len(signature) : len(signature) + 1]
            if signature == b"<!--" or tail in (b" ", b">", b"\t", b"\n", b"\r", b"\x0c", b""):
                return "html"
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in _HTML_TYPES and b"\x00" not in head:
        return "html"
    return "other"


def parse_retry_after(value: str | None, cap: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), capped."""
    if not value or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return min(float(text), cap)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(0.0, (when - datetime.now(UTC)).total_seconds()), cap)


# --------------------------------------------------------------------------- politeness


@dataclass(slots=True)
class _HostSlot:
    semaphore: asyncio.Semaphore
    lock: asyncio.Lock
    delay: float
    next_start: float = 0.0


class Politeness:
    """Per-host concurrency and spacing of request starts; backoffs delay the whole host."""

    def __init__(self, delay: float, concurrency: int) -> None:
        self.delay = delay
        self.concurrency = concurrency
        self._hosts: dict[str, _HostSlot] = {}

    def _slot(self, host: str) -> _HostSlot:
        slot = self._hosts.get(host)
        if slot is None:
            slot = _HostSlot(asyncio.Semaphore(self.concurrency), asyncio.Lock(), self.delay)
            self._hosts[host] = slot
        return slot

    def set_delay(self, host: str, delay: float) -> None:
        """Space requests to `host` by max(`delay`, the configured per-host delay)."""
        self._slot(host).delay = max(self.delay, delay)

    def push_back(self, host: str, seconds: float) -> None:
        """No request to `host` starts within the next `seconds`."""
        slot = self._slot(host)
        slot.next_start = max(slot.next_start, time.monotonic() + seconds)

    @asynccontextmanager
    async def turn(self, host: str) -> AsyncIterator[None]:
        """Hold one of `host`'s concurrency slots, starting no earlier than its delay allows."""
        slot = self._slot(host)
        async with slot.semaphore:
            async with slot.lock:
                wait = slot.next_start - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                slot.next_start = time.monotonic() + slot.delay
            yield


# --------------------------------------------------------------------------- bounded bodies


class _TooLarge(FaceledgerError):
    """A body past its byte limit (caught here, reported as FetchError `too_large`)."""

    code = "too_large"


class _Inflater:
    """zlib/gzip/deflate decoder whose output never exceeds `limit` + 1 bytes per call."""

    def __init__(self, gzip: bool) -> None:
        self._gzip = gzip
        self._wbits = 31 if gzip else 15
        self._z = zlib.decompressobj(self._wbits)
        self._started = False

    def feed(self, data: bytes, out: bytearray, limit: int) -> None:
        buffer = data
        while buffer:
            try:
                chunk = self._z.decompress(buffer, max(1, limit - len(out) + 1))
            except zlib.error:
                if self._gzip or self._started:
                    raise
                # "deflate" is often sent raw, without the zlib wrapper the spec requires.
                self._wbits = -15
                self._z = zlib.decompressobj(self._wbits)
                self._started = True
                continue
            self._started = True
            out += chunk
            if len(out) > limit:
                raise _TooLarge(f"inflated past {limit} bytes")
            if not chunk and self._z.unconsumed_tail == buffer:
                return  # no progress possible: wait for more input
            buffer = self._z.unconsumed_tail
            if self._z.eof:
                rest = self._z.unused_data
                if not (self._gzip and rest.strip(b"\x00")):
                    return
                self._z = zlib.decompressobj(self._wbits)  # next gzip member
                buffer = rest


def _inflater_for(content_encoding: str | None) -> _Inflater | None:
    codings = [
        c.strip().lower()
        for c in (content_encoding or "").split(",")
        if c.strip() and c.strip().lower() != "identity"
    ]
    if not codings:
        return None
    if len(codings) == 1 and codings[0] in ("gzip", "x-gzip"):
        return _Inflater(gzip=True)
    if len(codings) == 1 and codings[0] == "deflate":
        return _Inflater(gzip=False)
    raise FetchError("unsupported_encoding", f"Content-Encoding {content_encoding!r}")


# --------------------------------------------------------------------------- the fetcher


def _host_key(url: httpx.URL) -> str:
    return url.host.lower()


def _latin1(pairs: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in pairs]


def _peer_ip(response: httpx.Response) -> str | None:
    stream = response.extensions.get("network_stream")
    try:
        address = stream.get_extra_info("server_addr") if stream is not None else None
    except Exception:  # extra info is best effort evidence, never a reason to fail
        return None
    return str(address[0]) if isinstance(address, tuple) and address else None


class Fetcher:
    """Guarded, polite, bounded GETs; use as an async context manager."""

    def __init__(
        self,
        config: CrawlConfig,
        guard: AddressGuard | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self.guard = guard or AddressGuard(config.allowed_cidrs, None, config.connect_timeout)
        self.politeness = Politeness(config.per_host_delay, config.per_host_concurrency)
        timeout = httpx.Timeout(
            connect=config.connect_timeout,
            read=config.read_timeout,
            write=config.read_timeout,
            pool=config.max_fetch_seconds,
        )
        self._client = httpx.AsyncClient(
            transport=transport
            or guarded_transport(self.guard, max_connections=2 * config.global_concurrency),
            follow_redirects=False,
            timeout=timeout,
            trust_env=False,
            headers={
                "User-Agent": config.effective_user_agent,
                "Accept": ACCEPT,
                "Accept-Encoding": ACCEPT_ENCODING,
            },
        )

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def fetch(
        self, url: str, max_bytes: int, *, allow_truncated: bool = False
    ) -> FetchResult:
        """GET `url` once (no redirects followed), retrying 429/5xx and failed connections.

        Raises `guard.Refused` before connecting to a forbidden URL or address, and
        `FetchError` when no complete response was had (`too_large` past `max_bytes` unless
        `allow_truncated`, which keeps the first `max_bytes` instead).
        """
        try:
            target = httpx.URL(url)
        except (httpx.InvalidURL, ValueError) as exc:
            raise FetchError("bad_url", str(exc)) from exc
        host = _host_key(target)
        received = 0
        attempts = self.config.retries + 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                async with self.politeness.turn(host):
                    result = await self._attempt(target, max_bytes, allow_truncated)
            except FetchError as error:
                received += error.bytes_read
                error.bytes_read = received
                if not error.retryable or last:
                    raise
                self.politeness.push_back(host, self.config.backoff_base * 2**attempt)
                continue
            received += result.bytes_received
            if result.status in RETRY_STATUSES and not last:
                wait = parse_retry_after(result.header("retry-after"), self.config.retry_after_cap)
                backoff = self.config.backoff_base * 2**attempt
                self.politeness.push_back(host, backoff if wait is None else max(wait, 0.0))
                continue
            return _with(result, attempts=attempt + 1, bytes_received=received)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _attempt(self, url: httpx.URL, max_bytes: int, allow_truncated: bool) -> FetchResult:
        started_at = datetime.now(UTC)
        clock = time.monotonic()
        raw = bytearray()
        try:
            async with (
                asyncio.timeout(self.config.max_fetch_seconds),
                self._client.stream("GET", url) as response,
            ):
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > max_bytes and not allow_truncated:
                    raise FetchError("too_large", f"Content-Length {declared} > {max_bytes}")
                body, truncated = await self._read(response, raw, max_bytes, allow_truncated)
                return FetchResult(
                    url=str(url),
                    status=response.status_code,
                    reason_phrase=response.reason_phrase,
                    http_version=response.http_version,
                    request_target=response.request.url.raw_path.decode("ascii", "replace"),
                    request_headers=_latin1(response.request.headers.raw),
                    headers=_latin1(response.headers.raw),
                    raw_body=bytes(raw),
                    body=body,
                    started_at=started_at,
                    elapsed=time.monotonic() - clock,
                    peer_ip=_peer_ip(response),
                    truncated=truncated,
                    bytes_received=len(raw),
                    kind=sniff_kind(body, response.headers.get("content-type")),
                )
        except FetchError as error:
            error.bytes_read = len(raw)
            raise
        except _TooLarge:
            raise FetchError("too_large", f"body over {max_bytes} bytes", len(raw)) from None
        except TimeoutError:
            raise FetchError("timeout", "request took too long", len(raw)) from None
        except httpx.HTTPError as exc:
            raise _classify(exc, len(raw)) from exc
        except zlib.error as exc:
            raise FetchError("decoding_error", str(exc), len(raw)) from exc

    async def _read(
        self, response: httpx.Response, raw: bytearray, max_bytes: int, allow_truncated: bool
    ) -> tuple[bytes, bool]:
        """Stream the body into `raw` (as sent); return (decoded body, truncated?)."""
        inflater = _inflater_for(response.headers.get("content-encoding"))
        decoded = bytearray() if inflater is not None else raw
        async for chunk in response.aiter_raw():
            raw += chunk
            try:
                if inflater is not None:
                    inflater.feed(chunk, decoded, max_bytes)
                if len(raw) > max_bytes or len(decoded) > max_bytes:
                    raise _TooLarge(f"past {max_bytes} bytes")
            except _TooLarge:
                if not allow_truncated:
                    raise
                return bytes(decoded[:max_bytes]), True
        return bytes(decoded), False


def _classify(exc: httpx.HTTPError, bytes_read: int) -> FetchError:
    """Map an httpx exception onto a stats reason."""
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectTimeout):
        return FetchError("connect_timeout", detail, bytes_read)
    if isinstance(exc, httpx.ConnectError):
        reason = "dns_error" if isinstance(exc.__cause__, ResolveError) else "connect_error"
        return FetchError(reason, detail, bytes_read)
    if isinstance(exc, httpx.TimeoutException):
        return FetchError("timeout", detail, bytes_read)
    if isinstance(exc, httpx.RemoteProtocolError):
        return FetchError("protocol_error", detail, bytes_read)
    if isinstance(exc, httpx.DecodingError):
        return FetchError("decoding_error", detail, bytes_read)
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol | httpx.LocalProtocolError):
        return FetchError("bad_url", detail, bytes_read)
    return FetchError("network_error", detail, bytes_read)


def _with(result: FetchResult, *, attempts: int, bytes_received: int) -> FetchResult:
    """`result` with retry bookkeeping filled in (it is frozen)."""
    return replace(result, attempts=attempts, bytes_received=bytes_received)
