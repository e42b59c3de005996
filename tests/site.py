"""A small, deliberately hostile test website served by real HTTP servers on loopback.

The crawler is tested against sockets, not mocks: `TestSite` runs stdlib
`ThreadingHTTPServer`s on 127.0.0.1 and 127.0.0.2 (a second host name for the cross-host
image rule; Linux routes all of 127/8 to loopback) and optionally 127.0.0.3, each on its own
port 0. It serves ordinary pages and images (made with Pillow) next to every trap a crawler
meets: robots.txt rules, an excluded platform link, redirect chains and loops, a slow
endpoint, a 429 with Retry-After, an endless calendar, broken HTML, Content-Length lies, an
endless body and a gzip bomb. Every request is counted per (host, path), so tests can prove
what was and was not fetched, and how often.
"""

from __future__ import annotations

import gzip
import io
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

from PIL import Image

__all__ = ["HOST_A", "HOST_B", "HOST_C", "TestSite", "make_jpeg", "make_png"]

HOST_A = "127.0.0.1"
HOST_B = "127.0.0.2"
HOST_C = "127.0.0.3"
HANG_SECONDS = 5.0
"""Longest a hanging endpoint holds its connection (it lets go early on shutdown)."""


def make_jpeg(color: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def make_png(color: tuple[int, int, int], size: tuple[int, int] = (40, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def _gzip_bomb(decoded_bytes: int) -> bytes:
    """gzip of `decoded_bytes` zeros, written in pieces so making it costs little memory."""
    out = io.BytesIO()
    block = b"\x00" * (1024 * 1024)
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9) as archive:
        for _ in range(decoded_bytes // len(block)):
            archive.write(block)
    return out.getvalue()


def _page(title: str, body: str) -> bytes:
    return (
        f"<!doctype html><html><head><title>{title}</title></head><body>{body}</body></html>"
    ).encode()


class TestSite:
    """Start with `with TestSite() as site:`; `site.url(path)` is a URL on host A.

    `images` replaces the bytes served at image paths (`/img/a.jpg`, `/img/b-large.jpg`,
    `/img/pic.jpg`, `/img/final.jpg`, `/photos/linked.jpg`, ...) with real photos.
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(
        self,
        *,
        chain_pages: int = 0,
        chain_images: bool = True,
        robots_c_status: int = 503,
        slow_seconds: float = 1.5,
        images: dict[str, bytes] | None = None,
    ) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self.times: dict[tuple[str, str], list[float]] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.chain_pages = chain_pages
        self.chain_images = chain_images
        self.robots_c_status = robots_c_status
        self.slow_seconds = slow_seconds
        self.images = {
            "/img/a.jpg": make_jpeg((200, 30, 30)),
            "/img/b-small.jpg": make_jpeg((30, 200, 30), (32, 24)),
            "/img/b-large.jpg": make_jpeg((30, 200, 30), (320, 240)),
            "/img/pic.jpg": make_jpeg((30, 30, 200)),
            "/img/og.png": make_png((250, 250, 0)),
            "/img/final.jpg": make_jpeg((90, 90, 90)),
            "/img/broken.jpg": make_jpeg((10, 10, 10)),
            "/photos/linked.jpg": make_jpeg((120, 0, 120)),
            "/img/cdn.jpg": make_jpeg((0, 120, 120)),
            "/img/private.jpg": make_jpeg((1, 2, 3)),
        }
        self.images.update(images or {})  # e.g. face photos in place of the flat colours
        self.bomb = _gzip_bomb(64 * 1024 * 1024)
        self.servers: dict[str, ThreadingHTTPServer] = {}
        self.threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> TestSite:
        for host in (HOST_A, HOST_B, HOST_C):
            server = ThreadingHTTPServer((host, 0), _handler_for(self))
            server.daemon_threads = True
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            self.servers[host] = server
            self.threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for server in self.servers.values():
            server.shutdown()
            server.server_close()
        for thread in self.threads:
            thread.join(timeout=5)

    def port(self, host: str = HOST_A) -> int:
        return self.servers[host].server_address[1]

    def url(self, path: str, host: str = HOST_A) -> str:
        return f"http://{host}:{self.port(host)}{path}"

    def hits(self, path: str, host: str = HOST_A) -> int:
        with self.lock:
            return self.counts[(host, path)]

    def paths(self, host: str = HOST_A) -> dict[str, int]:
        with self.lock:
            return {p: n for (h, p), n in self.counts.items() if h == host}

    # ------------------------------------------------------------------ content

    def home(self) -> bytes:
        b = self.url
        links = [
            "/page1",
            "/page2",
            "/private/secret",
            "https://x.com/someone",
            "https://www.youtube.com/watch?v=1",
            "/broken",
            "/redirect/1",
            "/loop/a",
            "/slow",
            "/retry",
            "/calendar/2024/01",
            "/lie",
            "/lie-hang",
            "/lie-close",
            "/endless",
            "/bomb",
            "/deep",
            "/missing",
            "/photos/linked.jpg",
            "/img/fake.jpg",
            b("/other-page", HOST_B),
            "/page1?utm_source=newsletter&sessionid=abc123",
            "mailto:someone@example.org",
            "/page2#comments",
        ]
        body = "".join(f'<a href="{link}">link</a>\n' for link in links)
        body += '<img src="/img/a.jpg" alt="Alice at the harbour">'
        return _page("Home", body)

    def page1(self) -> bytes:
        cdn = self.url("/img/cdn.jpg", HOST_B)
        body = (
            '<img src="/img/b-small.jpg" srcset="/img/b-small.jpg 100w, /img/b-large.jpg 800w"'
            ' alt="Bob in a field">'
            '<picture><source srcset="/img/pic.jpg 1x"><img src="/img/pic.jpg" alt="Picture">'
            "</picture>"
            f'<img src="{cdn}" alt="From the CDN">'
            '<a href="/">home</a>'
        )
        head = '<meta property="og:image" content="/img/og.png">'
        return (
            f"<!doctype html><html><head><title>Page one</title>{head}</head>"
            f"<body>{body}</body></html>"
        ).encode()

    def calendar(self, year: int, month: int) -> bytes:
        links = []
        for step in range(1, 7):
            total = year * 12 + (month - 1) + step
            links.append(f'<a href="/calendar/{total // 12}/{total % 12 + 1:02d}">next</a>')
        return _page(f"Calendar {year}-{month:02d}", "".join(links))

    def chain(self, number: int) -> bytes:
        body = ""
        for step in (1, 2):
            if number + step < self.chain_pages:
                body += f'<a href="/chain/{number + step}">next</a>'
        if self.chain_images:
            body += f'<img src="/chain-img/{number}.jpg" alt="chain {number}">'
        return _page(f"Chain {number}", body)


def _handler_for(site: TestSite) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        pass

    Handler.site = site
    return Handler


class _Handler(BaseHTTPRequestHandler):
    """Routes of the test site; each method answers one kind of trouble."""

    site: ClassVar[TestSite]
    protocol_version = "HTTP/1.1"
    timeout = 10

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        return

    @property
    def host(self) -> str:
        return str(self.server.server_address[0])

    def do_GET(self) -> None:
        site = self.site
        with site.lock:
            site.counts[(self.host, self.path)] += 1
            site.times.setdefault((self.host, self.path), []).append(time.monotonic())
        path = self.path.split("?", 1)[0]
        handler = self._route(path)
        try:
            if handler is None:
                self._send(404, b"<html><title>Not found</title></html>", "text/html")
            else:
                handler()
        except OSError:  # the crawler hung up (timeouts, size caps): expected here
            self.close_connection = True

    def _route(self, path: str) -> Callable[[], None] | None:
        site = self.site
        if self.host == HOST_C:
            if path == "/robots.txt":
                return lambda: self._send(site.robots_c_status, b"busy", "text/plain")
            return lambda: self._send(200, _page("C", "hello"), "text/html")
        if self.host == HOST_B:
            routes_b: dict[str, Callable[[], None]] = {
                "/img/cdn.jpg": lambda: self._send(200, site.images["/img/cdn.jpg"], "image/jpeg"),
                "/other-page": lambda: self._send(200, _page("Other", "x"), "text/html"),
            }
            return routes_b.get(path)
        if path in site.images:
            # a.jpg is mislabelled on purpose: sniffing, not Content-Type, must decide
            kind = "text/plain" if path == "/img/a.jpg" else "image/jpeg"
            return lambda: self._send(200, site.images[path], kind)
        if path.startswith("/calendar/"):
            parts = path.split("/")
            if len(parts) == 4 and parts[2].isdigit() and parts[3].isdigit():
                page = site.calendar(int(parts[2]), int(parts[3]))
                return lambda: self._send(200, page, "text/html")
        if path.startswith("/chain/") and path[7:].isdigit():
            page = site.chain(int(path[7:]))
            return lambda: self._send(200, page, "text/html")
        if path.startswith("/chain-img/"):
            number = int(path.rsplit("/", 1)[1].split(".")[0])
            color = (number * 7 % 256, number * 13 % 256, 99)
            return lambda: self._send(200, make_jpeg(color), "image/jpeg")
        routes: dict[str, Callable[[], None]] = {
            "/robots.txt": lambda: self._send(
                200, b"User-agent: *\nDisallow: /private/\n", "text/plain"
            ),
            "/": lambda: self._send(200, site.home(), "text/html"),
            "/page1": lambda: self._send(200, site.page1(), "text/html"),
            "/page2": lambda: self._send(
                200, _page("Page two", '<a href="/page1">1</a><img src="/img/a.jpg">'), "text/html"
            ),
            "/page3": lambda: self._send(200, _page("Page three", "ok"), "text/html"),
            "/private/secret": lambda: self._send(200, _page("Secret", ""), "text/html"),
            "/broken": self._broken,
            "/redirect/1": lambda: self._redirect("/redirect/2"),
            "/redirect/2": lambda: self._redirect("/redirect/3"),
            "/redirect/3": lambda: self._redirect("/final"),
            "/final": lambda: self._send(
                200, _page("Final", '<img src="/img/final.jpg" alt="end">'), "text/html"
            ),
            "/loop/a": lambda: self._redirect("/loop/b"),
            "/loop/b": lambda: self._redirect("/loop/a"),
            "/slow": self._slow,
            "/retry": self._retry,
            "/lie": lambda: self._lie(2_000_000_000, close=False),
            "/lie-hang": lambda: self._lie(100_000, close=False),
            "/lie-close": lambda: self._lie(100_000, close=True),
            "/endless": self._endless,
            "/bomb": self._bomb,
            "/deep": lambda: self._send(200, b"<html>" + b"<div>" * 50_000, "text/html"),
            "/img/fake.jpg": lambda: self._send(200, _page("Not an image", ""), "image/jpeg"),
            "/to-metadata": lambda: self._redirect("http://169.254.169.254/latest/meta-data/"),
            "/to-private": lambda: self._redirect("http://10.0.0.1/admin"),
            "/to-ipv6": lambda: self._redirect(f"http://[::1]:{site.port()}/"),
            "/to-evil": lambda: self._redirect(f"http://evil.test:{site.port()}/"),
            "/ssrf-page": lambda: self._send(
                200,
                _page(
                    "SSRF",
                    '<img src="http://10.0.0.1/x.jpg"><img src="http://169.254.169.254/y.jpg">'
                    f'<img src="http://evil.test:{site.port()}/img/a.jpg">',
                ),
                "text/html",
            ),
        }
        return routes.get(path)

    # ------------------------------------------------------------------ responses

    def _send(
        self, status: int, body: bytes, kind: str, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self._send(302, b"", "text/html", {"Location": location})

    def _broken(self) -> None:
        body = (
            b"\xef\xbb\xbf<html><head><title>Broken <b>page</title><body><div><table><tr><td>"
            b'<img src="/img/broken.jpg" alt="broken"<p>unclosed <a href="/page3">three</a>'
            b"</i></b></div></div></span>\x00\xff\xfe<script>document.write('<a href=x')"
            b"<!-- never closed <a href='/private/secret'>"
        )
        self._send(200, body, "text/html")

    def _slow(self) -> None:
        self.site.stop.wait(self.site.slow_seconds)
        self._send(200, _page("Slow", ""), "text/html")

    def _retry(self) -> None:
        if self.site.hits("/retry") == 1:
            self._send(429, b"slow down", "text/plain", {"Retry-After": "1"})
        else:
            self._send(200, _page("Retried", '<img src="/img/a.jpg">'), "text/html")

    def _lie(self, declared: int, close: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(declared))
        self.end_headers()
        self.wfile.write(b"<html><body>")
        self.wfile.flush()
        if close:
            self.close_connection = True
            return
        self.site.stop.wait(HANG_SECONDS)
        self.close_connection = True

    def _endless(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        chunk = b"<p>" + b"x" * 65_000 + b"</p>"
        try:
            for _ in range(2000):  # bounded: ~130 MB at most, far past any cap
                if self.site.stop.is_set():
                    break
                self.wfile.write(chunk)
        except OSError:
            pass

    def _bomb(self) -> None:
        self._send(200, self.site.bomb, "text/html", {"Content-Encoding": "gzip"})
