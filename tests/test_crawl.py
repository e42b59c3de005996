"""The crawler against a real, hostile test site on loopback (see tests/site.py).

Every crawl here is bounded by `asyncio.wait_for`, every poll loop by a deadline, and all
traffic goes to 127.0.0.x: SSRF cases use literal private addresses or names resolved by an
injected resolver, and prove with a recording socket layer that no connection was attempted.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpcore
import pytest
from warcio.archiveiterator import ArchiveIterator

from faceledger.crawl import CrawlConfig, CrawlStats, Scope, crawl, read_stats
from faceledger.crawl.crawler import STATE_FILE, STATS_FILE, WARC_DIR, JobBusy
from faceledger.crawl.extract import extract
from faceledger.crawl.fetch import _Inflater, _TooLarge, parse_retry_after, sniff_kind
from faceledger.crawl.guard import AddressGuard, GuardedBackend, Refused, check_url
from faceledger.crawl.items import iter_crawl_items
from faceledger.crawl.robots import RobotsRules
from faceledger.crawl.scope import ShapeCounter, canonicalize, url_shape
from faceledger.crawl.state import CrawlState
from faceledger.html_refs import largest_candidate
from faceledger.ingest.warc import iter_warc
from tests.site import HOST_A, HOST_B, HOST_C, TestSite, make_jpeg

REPO = Path(__file__).resolve().parents[1]
LOOPBACK = ("127.0.0.0/8",)
CRAWL_TIMEOUT = 30.0


def config(**overrides: Any) -> CrawlConfig:
    """Production rules with test-sized clocks and caps; loopback allowed explicitly."""
    values: dict[str, Any] = {
        "per_host_delay": 0.0,
        "connect_timeout": 2.0,
        "read_timeout": 0.5,
        "max_fetch_seconds": 4.0,
        "backoff_base": 0.05,
        "retry_after_cap": 3.0,
        "max_page_bytes": 256 * 1024,
        "max_image_bytes": 1024 * 1024,
        "allowed_cidrs": LOOPBACK,
        "stats_interval": 0.2,
    }
    values.update(overrides)
    return CrawlConfig(**values)


class Recorder(httpcore.AsyncNetworkBackend):
    """The socket layer below the guard: records every connection, then really connects."""

    def __init__(self) -> None:
        self.inner = httpcore.AnyIOBackend()
        self.hosts: list[str] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.hosts.append(host)
        if not host.startswith("127.0.0."):
            raise AssertionError(f"test traffic must stay on 127.0.0.x, not {host}")
        return await self.inner.connect_tcp(host, port, timeout, local_address, socket_options)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.AsyncNetworkStream:
        raise AssertionError("no unix sockets")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def run_crawl(
    job: Path, scope: Scope, cfg: CrawlConfig, **kwargs: Any
) -> tuple[CrawlStats, list[CrawlStats]]:
    seen: list[CrawlStats] = []
    stats = asyncio.run(
        asyncio.wait_for(crawl(job, scope, cfg, seen.append, **kwargs), CRAWL_TIMEOUT)
    )
    return stats, seen


def fake_resolver(names: dict[str, list[str]]) -> Any:
    def resolve(host: str, port: int) -> list[str]:
        if host in names:
            return names[host]
        raise OSError(f"{host} is not resolvable in tests")

    return resolve


def warc_responses(files: Sequence[str]) -> Counter[str]:
    """Target URI -> number of `response` records across `files`."""
    found: Counter[str] = Counter()
    for name in files:
        with open(name, "rb") as handle:
            for record in ArchiveIterator(handle):
                if record.rec_type == "response":
                    found[record.rec_headers.get_header("WARC-Target-URI")] += 1
    return found


# --------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def site_crawl(tmp_path_factory: pytest.TempPathFactory) -> Any:
    job = tmp_path_factory.mktemp("crawl") / "job"
    recorder = Recorder()
    with TestSite() as site:
        scope = Scope(seeds=[site.url("/")], max_depth=3, max_pages=200, max_per_shape=5)
        started = time.monotonic()
        stats, progress = run_crawl(job, scope, config(), network_backend=recorder)
        elapsed = time.monotonic() - started
        yield site, stats, progress, job, recorder, elapsed


def test_right_pages_crawled_and_wrong_ones_not(site_crawl: Any) -> None:
    site, stats, _, _, recorder, elapsed = site_crawl
    for path in ("/", "/page1", "/page2", "/broken", "/page3", "/final", "/robots.txt"):
        assert site.hits(path) == 1, path
    for path in ("/redirect/1", "/redirect/2", "/redirect/3", "/loop/a", "/loop/b"):
        assert site.hits(path) == 1, path
    assert site.hits("/private/secret") == 0  # robots.txt
    assert site.hits("/other-page", HOST_B) == 0  # out of scope host
    assert site.hits("/page1?utm_source=newsletter&sessionid=abc123") == 0  # canonicalised
    assert set(recorder.hosts) <= {HOST_A, HOST_B}  # x.com, youtube.com never contacted
    assert stats.finished and stats.stop_reason == "done"
    assert elapsed < CRAWL_TIMEOUT


def test_refusals_and_errors_are_counted_by_reason(site_crawl: Any) -> None:
    _, stats, _, _, _, _ = site_crawl
    assert stats.refused["robots"] >= 1
    assert stats.refused["excluded_platform"] == 2
    assert stats.refused["out_of_scope"] >= 1
    assert stats.refused["trap"] >= 1
    assert stats.refused["too_large"] == 3  # 2 GB Content-Length, endless body, gzip bomb
    assert stats.refused["not_image"] == 1  # /img/fake.jpg is HTML
    assert stats.refused["hostile_html"] == 1  # /deep: 50,000 nested divs
    assert stats.errors["timeout"] == 2  # /slow and the hanging Content-Length lie
    assert stats.errors["protocol_error"] == 1  # Content-Length lie, then closed
    assert stats.errors["redirect_loop"] == 1
    assert stats.errors["http_404"] == 1
    assert stats.redirects == 4
    assert stats.bytes > 0


def test_hostile_endpoints_are_each_fetched_once_and_stop_at_caps(site_crawl: Any) -> None:
    site, stats, *_ = site_crawl
    for path in ("/slow", "/lie", "/lie-hang", "/lie-close", "/endless", "/bomb", "/deep"):
        assert site.hits(path) == 1, path
    # the bodies read stay near the caps: nothing like 2 GB, 64 MiB of zeros or 130 MB
    assert stats.bytes < 4 * 1024 * 1024
    calendar = [p for p in site.paths() if p.startswith("/calendar/")]
    assert 1 <= len(calendar) <= 5  # shape cap


def test_retry_after_is_honoured(site_crawl: Any) -> None:
    site, *_ = site_crawl
    times = site.times[(HOST_A, "/retry")]
    assert len(times) == 2
    assert times[1] - times[0] >= 0.9


def test_images_largest_candidate_cross_host_and_sniffed(site_crawl: Any) -> None:
    site, stats, *_ = site_crawl
    for path in ("/img/a.jpg", "/img/b-large.jpg", "/img/pic.jpg", "/img/og.png"):
        assert site.hits(path) == 1, path
    assert site.hits("/img/final.jpg") == 1
    assert site.hits("/photos/linked.jpg") == 1
    assert site.hits("/img/b-small.jpg") == 0  # srcset: only the largest candidate
    assert site.hits("/img/cdn.jpg", HOST_B) == 1  # image on another host, referenced
    assert site.hits("/img/broken.jpg") == 1  # found in broken HTML
    assert stats.images == 8


def test_warc_output_is_read_by_the_ingester_with_page_urls(site_crawl: Any) -> None:
    site, stats, _, job, _, _ = site_crawl
    assert stats.warc_files
    assert not list((job / WARC_DIR).glob("*.open"))
    items = [item for name in stats.warc_files for item in iter_warc(name)]
    assert all(item.error is None and item.captured_at and item.warc_digest for item in items)
    pages = {item.image_url: item.page_url for item in items}
    assert pages[site.url("/img/a.jpg")] == site.url("/")
    assert pages[site.url("/img/b-large.jpg")] == site.url("/page1")
    assert pages[site.url("/img/og.png")] == site.url("/page1")
    assert pages[site.url("/img/cdn.jpg", HOST_B)] == site.url("/page1")
    assert pages[site.url("/img/final.jpg")] == site.url("/final")
    assert pages[site.url("/photos/linked.jpg")] == site.url("/")
    assert len(items) == stats.images
    responses = warc_responses(stats.warc_files)
    assert max(responses.values()) == 1
    assert site.url("/private/secret") not in responses
    titles = {item.page_title for item in items}
    assert "Page one" in titles


def test_stats_file_and_progress(site_crawl: Any) -> None:
    _, stats, progress, job, _, _ = site_crawl
    saved = read_stats(job / STATS_FILE)
    assert saved.pages == stats.pages and saved.refused == stats.refused
    assert saved.finished
    assert progress and all(p.pages <= stats.pages for p in progress)


def test_state_keeps_embeds_with_alt_text(site_crawl: Any) -> None:
    site, _, _, job, _, _ = site_crawl
    state = CrawlState(job / STATE_FILE)
    try:
        embeds = {(page, image): alt for page, image, alt in state.embeds()}
    finally:
        state.close()
    assert embeds[(site.url("/"), site.url("/img/a.jpg"))] == "Alice at the harbour"
    assert embeds[(site.url("/page1"), site.url("/img/b-large.jpg"))] == "Bob in a field"


# --------------------------------------------------------------------------- robots, caps


def test_robots_server_error_disallows_the_host(tmp_path: Path) -> None:
    with TestSite(robots_c_status=503) as site:
        scope = Scope(seeds=[site.url("/", HOST_C)])
        stats, _ = run_crawl(tmp_path / "job", scope, config(retries=1))
        assert stats.refused == {"robots": 1}
        assert site.paths(HOST_C) == {"/robots.txt": 2}  # one retry, never the page


def test_robots_not_found_allows_all(tmp_path: Path) -> None:
    with TestSite(robots_c_status=404) as site:
        stats, _ = run_crawl(tmp_path / "job", Scope(seeds=[site.url("/", HOST_C)]), config())
        assert stats.pages == 1
        assert site.hits("/", HOST_C) == 1


def test_robots_rules_and_crawl_delay() -> None:
    text = "User-agent: faceledger\nCrawl-delay: 3\nDisallow: /no/\n\nUser-agent: *\nDisallow: /"
    rules = RobotsRules("http://h", "rules", text=text)
    assert rules.allows("http://h/yes", "faceledger")
    assert not rules.allows("http://h/no/x", "faceledger")
    assert not rules.allows("http://h/yes", "otherbot")
    assert rules.delay("faceledger") == 3.0
    assert RobotsRules("http://h", "disallow_all").allows("http://h/", "faceledger") is False
    assert RobotsRules("http://h", "allow_all").allows("http://h/", "faceledger") is True


def test_page_cap_is_never_overshot(tmp_path: Path) -> None:
    with TestSite(chain_pages=40, chain_images=False) as site:
        scope = Scope(seeds=[site.url("/chain/0")], max_depth=50, max_pages=7)
        stats, _ = run_crawl(tmp_path / "job", scope, config(global_concurrency=8))
        chain = [p for p in site.paths() if p.startswith("/chain/")]
        assert len(chain) == 7
        assert stats.pages == 7 and stats.stop_reason == "page_cap"


# --------------------------------------------------------------------------- SSRF


FORBIDDEN = [
    "10.0.0.1",
    "169.254.169.254",
    "::1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "0.0.0.0",
    "224.0.0.1",
    "100.64.0.1",
    "192.168.1.1",
    "172.16.0.1",
    "fd00:ec2::254",
    "fe80::1",
    "2002:0a00:0001::1",
    "64:ff9b::a00:1",
    "255.255.255.255",
]


@pytest.mark.parametrize("address", FORBIDDEN)
def test_guard_refuses_forbidden_addresses(address: str) -> None:
    assert AddressGuard().why_refused(address)
    assert AddressGuard(LOOPBACK).why_refused(address)  # allowing loopback allows no more


def test_guard_allows_public_and_explicitly_allowed_addresses() -> None:
    guard = AddressGuard()
    assert guard.why_refused("93.184.216.34") is None
    assert guard.why_refused("2606:4700::1") is None
    assert guard.why_refused("127.0.0.1")
    allowed = AddressGuard(LOOPBACK)
    assert allowed.why_refused("127.0.0.1") is None
    assert allowed.why_refused("::ffff:127.0.0.2") is None
    assert allowed.why_refused("::1")


class _NeverConnect(httpcore.AsyncNetworkBackend):
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def connect_tcp(self, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(host)
        return object()  # never a real socket: nothing leaves the machine

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@pytest.mark.parametrize(
    ("host", "names"),
    [
        ("10.0.0.1", {}),
        ("169.254.169.254", {}),
        ("[::1]", {}),
        ("::1", {}),
        ("evil.test", {"evil.test": ["10.1.2.3"]}),
        ("mixed.test", {"mixed.test": ["93.184.216.34", "192.168.0.7"]}),
        ("mapped.test", {"mapped.test": ["::ffff:169.254.169.254"]}),
    ],
)
def test_backend_refuses_before_connecting(host: str, names: dict[str, list[str]]) -> None:
    inner = _NeverConnect()
    backend = GuardedBackend(AddressGuard((), fake_resolver(names)), inner)
    with pytest.raises(Refused) as caught:
        asyncio.run(asyncio.wait_for(backend.connect_tcp(host, 80), 5))
    assert caught.value.reason == "private_address"
    assert inner.calls == []


def test_backend_connects_to_the_vetted_address_not_the_name() -> None:
    inner = _NeverConnect()
    backend = GuardedBackend(AddressGuard((), fake_resolver({"ok.test": ["93.184.216.34"]})), inner)
    asyncio.run(asyncio.wait_for(backend.connect_tcp("ok.test", 443), 5))
    assert inner.calls == ["93.184.216.34"]


@pytest.mark.parametrize(
    "url",
    ["ftp://example.org/x", "file:///etc/passwd", "http://user:pw@example.org/", "gopher://h/"],
)
def test_check_url_refuses_schemes_and_credentials(url: str) -> None:
    with pytest.raises(Refused):
        check_url(url)


def test_private_seeds_are_refused_before_any_connection(tmp_path: Path) -> None:
    recorder = Recorder()
    seeds = [
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8080/",
        "http://evil.test/",
    ]
    scope = Scope(seeds=seeds)
    stats, _ = run_crawl(
        tmp_path / "job",
        scope,
        config(),
        resolver=fake_resolver({"evil.test": ["10.1.2.3"]}),
        network_backend=recorder,
    )
    assert stats.refused == {"private_address": 4}
    assert recorder.hosts == []
    assert stats.pages == 0


def test_redirects_and_images_to_private_addresses_are_refused(tmp_path: Path) -> None:
    recorder = Recorder()
    with TestSite() as site:
        seeds = [site.url(p) for p in ("/to-metadata", "/to-private", "/to-ipv6", "/to-evil")]
        seeds.append(site.url("/ssrf-page"))
        scope = Scope(
            seeds=seeds,
            allow_domains=["127.0.0.1", "169.254.169.254", "10.0.0.1", "::1", "evil.test"],
        )
        stats, _ = run_crawl(
            tmp_path / "job",
            scope,
            config(),
            resolver=fake_resolver({"evil.test": ["10.1.2.3"]}),
            network_backend=recorder,
        )
        state = CrawlState(tmp_path / "job" / STATE_FILE)
        refused = {url: reason for url, _, status, reason in state.urls("refused")}
        state.close()
    assert set(recorder.hosts) == {HOST_A}
    for url in (
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/admin",
        f"http://[::1]:{site.port()}/",
        f"http://evil.test:{site.port()}/",
        "http://10.0.0.1/x.jpg",
        "http://169.254.169.254/y.jpg",
        f"http://evil.test:{site.port()}/img/a.jpg",
    ):
        assert refused[url] == "private_address", url
    assert stats.redirects == 4


def test_loopback_is_refused_unless_allowed(tmp_path: Path) -> None:
    with TestSite() as site:
        stats, _ = run_crawl(
            tmp_path / "job", Scope(seeds=[site.url("/")]), config(allowed_cidrs=())
        )
        assert stats.refused == {"private_address": 1}
        assert site.paths() == {}


# --------------------------------------------------------------------------- scope units


def test_canonicalisation() -> None:
    assert canonicalize("HTTP://Example.COM:80/a/?b=2&a=1#frag") == "http://example.com/a/?a=1&b=2"
    assert canonicalize("https://h:443/p?utm_source=x&id=3&PHPSESSID=9") == "https://h/p?id=3"
    assert canonicalize("http://h/p;jsessionid=ABC?x=1") == "http://h/p?x=1"
    assert canonicalize("http://h:8080/p?sid=1") == "http://h:8080/p"
    assert url_shape("http://h/calendar/2024/01?d=3") == url_shape("http://h/calendar/2031/12?d=4")


def test_scope_rules() -> None:
    scope = Scope(seeds=["https://news.example.org/a"], path_prefixes=["/a", "/img"], max_depth=2)
    assert scope.in_scope("https://news.example.org/a/b", 2)
    assert scope.in_scope("https://news.example.org/b", 1).reason == "out_of_scope"
    assert scope.in_scope("https://other.org/a", 1).reason == "out_of_scope"
    assert scope.in_scope("https://news.example.org/a/b", 3).reason == "too_deep"
    assert scope.in_scope("ftp://news.example.org/a", 0).reason == "bad_scheme"
    assert scope.in_scope("https://u:p@news.example.org/a", 0).reason == "credentials"
    assert scope.image_allowed("https://cdn.other.net/x.jpg")
    assert scope.image_allowed("https://scontent.instagram.com/x.jpg").reason == (
        "excluded_platform"
    )
    long = "https://news.example.org/a/" + "x" * 3000
    assert scope.in_scope(long, 0).reason == "trap"
    many = "https://news.example.org/a?" + "&".join(f"k{i}=1" for i in range(40))
    assert scope.in_scope(many, 0).reason == "trap"
    assert scope.in_scope("https://news.example.org/a/x/x/x/x/x", 0).reason == "trap"


def test_excluded_platforms_need_the_explicit_flag() -> None:
    named = Scope(seeds=["https://x.com/someone"], allow_domains=["x.com"])
    assert named.in_scope("https://x.com/someone", 0).reason == "excluded_platform"
    assert Scope(seeds=["https://m.youtube.com/"]).in_scope("https://m.youtube.com/", 0).reason == (
        "excluded_platform"
    )
    flagged = Scope(seeds=["https://x.com/someone"], allow_excluded_platforms=True)
    assert flagged.in_scope("https://x.com/someone", 0)
    assert flagged.image_allowed("https://www.instagram.com/p.jpg").reason == "excluded_platform"


def test_shape_counter_caps_traps() -> None:
    counter = ShapeCounter(3)
    verdicts = [counter.admit(f"http://h/calendar/2024/{m:02d}") for m in range(1, 7)]
    assert [bool(v) for v in verdicts] == [True, True, True, False, False, False]
    assert counter.admit("http://h/about")


# --------------------------------------------------------------------------- extraction


def test_extract_images_links_and_alt_text() -> None:
    html = b"""<!doctype html><html><head><title> My  page </title>
    <base href="http://h/base/">
    <meta property="og:image" content="/og.jpg"><meta name="twitter:image" content="tw.jpg">
    </head><body>
    <img src="s.jpg" srcset="m.jpg 2x, l.jpg 3x" alt=" Ann ">
    <img src="w.jpg" srcset="w1.jpg 300w, w3.jpg 900w, w2.jpg 600w">
    <img src="data:image/gif;base64,R0lG" data-src="lazy.jpg" alt="lazy">
    <picture><source srcset="p1.webp 1x, p2.webp 2x"><img src="p.jpg" alt="Pic"></picture>
    <video><source src="v.mp4"></video>
    <a href="page.html#top">p</a><a href="photo.JPG" title="Full size">photo</a>
    <a href="mailto:x@y">m</a><a href="javascript:alert(1)">j</a>
    </body></html>"""
    content = extract(html, "http://h/dir/index.html")
    images = {ref.url: ref for ref in content.images}
    assert content.title == "My page"
    assert content.links == ["http://h/base/page.html"]
    assert set(images) == {
        "http://h/og.jpg",
        "http://h/base/tw.jpg",
        "http://h/base/l.jpg",
        "http://h/base/w3.jpg",
        "http://h/base/lazy.jpg",
        "http://h/base/p2.webp",
        "http://h/base/p.jpg",
        "http://h/base/photo.JPG",
    }
    assert images["http://h/base/l.jpg"].alt == "Ann"
    assert images["http://h/base/p2.webp"].alt == "Pic"
    assert images["http://h/base/photo.JPG"].via == "link"
    assert largest_candidate("a.jpg 1x", "b.jpg") == "a.jpg"
    assert largest_candidate("a.jpg 2x", "b.jpg") == "a.jpg"
    assert largest_candidate("", "b.jpg") == "b.jpg"
    assert largest_candidate("x,y.jpg 10w, z.jpg 20w", None) == "z.jpg"


def test_extract_survives_hostile_html() -> None:
    nested = b"<div>" * 1_000_000 + b'<img src="deep.jpg">'  # minutes for the parser
    started = time.monotonic()
    assert extract(nested, "http://h/").hostile
    assert time.monotonic() - started < 5  # generous: the estimate is one linear pass
    sloppy = b"<div>" * 2_000 + b"<p>text" * 50_000 + b'<img src="ok.jpg">'
    assert [r.url for r in extract(sloppy, "http://h/").images] == ["http://h/ok.jpg"]
    many = b"".join(b'<a href="/p%d">x</a>' % i for i in range(20_000))
    assert len(extract(many, "http://h/").links) == 5_000
    garbage = bytes(range(256)) * 100 + b"<a href='/ok'>"
    assert extract(garbage, "http://h/").links == ["http://h/ok"]
    assert extract(b"", "http://h/").links == []


# --------------------------------------------------------------------------- fetch units


def test_sniffing_decides_by_bytes() -> None:
    jpeg = make_jpeg((1, 2, 3))
    assert sniff_kind(jpeg, "text/html") == "image"
    assert sniff_kind(b"  <!DOCTYPE html><p>", "image/jpeg") == "html"
    assert sniff_kind(b"hello <b>there</b>", "text/html") == "html"
    assert sniff_kind(b"%PDF-1.7\x00\x01", "text/html") == "other"
    assert sniff_kind(b"plain words", "text/plain") == "other"


def test_retry_after_parsing() -> None:
    assert parse_retry_after("1", 60) == 1.0
    assert parse_retry_after("86400", 60) == 60
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 60) == 0.0
    assert parse_retry_after("soon", 60) is None
    assert parse_retry_after(None, 60) is None


def test_gzip_bomb_inflates_only_up_to_the_cap() -> None:
    bomb = gzip.compress(b"\x00" * (32 * 1024 * 1024))
    out = bytearray()
    with pytest.raises(_TooLarge):
        _Inflater(gzip=True).feed(bomb, out, 100_000)
    assert len(out) <= 100_001


# --------------------------------------------------------------------------- SIGKILL + resume

RUNNER = """
import asyncio, json, sys
from pathlib import Path
from faceledger.crawl import CrawlConfig, Scope, crawl
args = json.loads(sys.argv[1])
asyncio.run(crawl(Path(args["job"]), Scope(**args["scope"]), CrawlConfig(**args["config"])))
"""


def _done_pages(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db, timeout=5) as con:
        try:
            row = con.execute(
                "SELECT COUNT(*) FROM urls WHERE status='done' AND reason='page'"
            ).fetchone()
        except sqlite3.OperationalError:
            return 0
    return int(row[0])


def test_sigkill_and_resume_fetch_nothing_twice(tmp_path: Path) -> None:
    job = tmp_path / "job"
    cfg = {
        "per_host_delay": 0.03,
        "read_timeout": 2.0,
        "allowed_cidrs": list(LOOPBACK),
        "warc_max_bytes": 8 * 1024,
        "stats_interval": 0.2,
    }
    with TestSite(chain_pages=60) as site:
        scope = {
            "seeds": [site.url("/chain/0")],
            "max_depth": 100,
            "max_pages": 1000,
            "max_per_shape": 1000,
        }
        argument = json.dumps({"job": str(job), "scope": scope, "config": cfg})
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        process = subprocess.Popen([sys.executable, "-c", RUNNER, argument], env=env, cwd=REPO)
        try:
            deadline = time.monotonic() + 25
            while _done_pages(job / STATE_FILE) < 12 and time.monotonic() < deadline:
                assert process.poll() is None, "the crawl ended before it could be killed"
                time.sleep(0.05)
            assert (job / STATS_FILE).exists()  # queryable while it runs
            running = json.loads((job / STATS_FILE).read_text())
            assert not running["finished"]
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
        assert process.returncode == -signal.SIGKILL

        state = CrawlState(job / STATE_FILE)
        interrupted = {urlsplit(u).path for u, *_ in state.urls("fetching")}
        done_before = {u for u, *_ in state.urls("done")}
        state.close()
        assert len(done_before) >= 12
        hits_before = dict(site.paths())

        stats, _ = run_crawl(job, Scope(**scope), config(**{**cfg, "allowed_cidrs": LOOPBACK}))
        hits = site.paths()

    assert stats.finished and stats.stop_reason == "done"
    assert stats.pages == 60 and stats.images == 60
    twice = {path: n for path, n in hits.items() if n > 1}
    assert set(twice) <= interrupted | {"/robots.txt"}, (twice, interrupted)
    assert all(n == 2 for n in twice.values())
    assert set(hits) - set(hits_before)  # the kill really came mid-crawl
    assert not list((job / WARC_DIR).glob("*.open"))
    responses = warc_responses(stats.warc_files)
    pages = {uri: n for uri, n in responses.items() if "/chain/" in uri}
    assert len(pages) == 60 and set(pages.values()) == {1}
    assert len(done_before - set(responses)) == 0
    items = [item for name in stats.warc_files for item in iter_warc(name)]
    assert all(item.error is None for item in items)
    assert len(items) == 60
    # rotation splits pages from their images; the crawl state links them again
    linked = list(iter_crawl_items(job))
    assert len(linked) == 60
    for item in linked:
        number = item.image_url.rsplit("/", 1)[1].split(".")[0]
        assert item.page_url == site.url(f"/chain/{number}")
        assert item.page_title == f"Chain {number}"


def test_cancelled_crawl_resumes_without_refetching(tmp_path: Path) -> None:
    job = tmp_path / "job"
    cfg = config(per_host_delay=0.03, warc_max_bytes=8 * 1024)
    with TestSite(chain_pages=30) as site:
        scope = Scope(seeds=[site.url("/chain/0")], max_depth=100, max_per_shape=1000)

        async def cancel_midway() -> None:
            task = asyncio.create_task(crawl(job, scope, cfg))
            deadline = time.monotonic() + 20
            while _done_pages(job / STATE_FILE) < 5 and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(asyncio.wait_for(cancel_midway(), CRAWL_TIMEOUT))
        assert read_stats(job / STATS_FILE).stop_reason == "cancelled"
        state = CrawlState(job / STATE_FILE)
        interrupted = {urlsplit(u).path for u, *_ in state.urls("fetching")}
        state.close()
        stats, _ = run_crawl(job, scope, cfg)
        hits = site.paths()
    assert stats.pages == 30 and stats.images == 30
    # only requests cut off by the cancellation (never archived) are made again
    assert {p for p, n in hits.items() if n > 1} <= interrupted
    assert set(warc_responses(stats.warc_files).values()) == {1}


def test_a_job_runs_in_one_process_at_a_time(tmp_path: Path) -> None:
    job = tmp_path / "job"
    with TestSite(chain_pages=2) as site:
        scope = Scope(seeds=[site.url("/chain/0")])

        async def twice() -> None:
            first = asyncio.create_task(crawl(job, scope, config(per_host_delay=0.1)))
            await asyncio.sleep(0.1)
            with pytest.raises(JobBusy, match="already running"):
                await crawl(job, scope, config())
            await first

        asyncio.run(asyncio.wait_for(twice(), CRAWL_TIMEOUT))


def test_recover_cuts_the_uncommitted_tail(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from faceledger.crawl.fetch import FetchResult
    from faceledger.crawl.warcout import OPEN_SUFFIX, WarcFileWriter, recover

    def capture(path: str) -> FetchResult:
        body = make_jpeg((5, 5, 5))
        headers = [("Content-Type", "image/jpeg")]
        return FetchResult(
            f"http://h{path}", 200, "OK", "HTTP/1.1", path, [], headers, body, body,
            datetime.now(UTC), 0.0, kind="image",
        )  # fmt: skip

    writer = WarcFileWriter(tmp_path)
    writer.open("crawl-00000.warc.gz")
    committed = writer.write(capture("/a.jpg")).end_offset
    writer.write(capture("/b.jpg"))  # complete but never committed: will be fetched again
    writer.abandon()
    with (tmp_path / ("crawl-00000.warc.gz" + OPEN_SUFFIX)).open("ab") as handle:
        handle.write(b"\x1f\x8b\x08\x00partial")  # a SIGKILL mid-record
    final = recover(tmp_path, "crawl-00000.warc.gz", committed, 1)
    assert final is not None and final.stat().st_size == committed
    items = list(iter_warc(final))
    assert [(i.image_url, i.error) for i in items] == [("http://h/a.jpg", None)]
