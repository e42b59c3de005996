"""What a crawl job may fetch: its declared scope, URL canonicalisation and trap caps.

A crawl is lawful only inside the scope it declared (seeds, domains, path prefixes, depth,
page and byte caps), so every URL is checked here before it is queued. URLs are canonicalised
first (w3lib's `canonicalize_url`, no fragment, no session ids or tracking parameters, no
default port), so the same page spelled two ways is fetched once and a session id minted per
request cannot make a site endless. What canonicalisation cannot catch (endless calendars,
`?page=N+1` forever) is capped by *shape*: the URL with every digit run replaced by `#`; a
shape may yield at most `max_per_shape` pages.

Social-media and video platforms are refused even when a scope names them; only the explicit
`allow_excluded_platforms` flag together with naming the domain lets one in.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from w3lib.url import canonicalize_url

from faceledger.crawl.config import DEFAULT_EXCLUDED_DOMAINS
from faceledger.crawl.guard import Refused, check_url

__all__ = [
    "Scope",
    "ShapeCounter",
    "Verdict",
    "canonicalize",
    "host_of",
    "url_shape",
]

SESSION_PARAMS = frozenset(
    {
        "sessionid",
        "session_id",
        "jsessionid",
        "phpsessid",
        "aspsessionid",
        "sid",
        "cfid",
        "cftoken",
        "fbclid",
        "gclid",
        "msclkid",
    }
)
"""Query parameters that name a visitor or a click, never a page; dropped from every URL."""

_PATH_SESSION = re.compile(r";(?:jsessionid|phpsessid|sessionid|sid)=[^/?#]*", re.IGNORECASE)
_DIGITS = re.compile(r"\d+")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class Verdict(NamedTuple):
    """Whether a URL may be fetched; falsy when refused, with a reason slug and detail."""

    allowed: bool
    reason: str = ""
    detail: str = ""

    def __bool__(self) -> bool:
        return self.allowed


_OK = Verdict(True)


def canonicalize(url: str) -> str:
    """The canonical form used for the seen-set, the frontier and the WARC target URI.

    Raises `ValueError` for a URL that cannot be parsed.
    """
    url = url.strip()
    parts = urlsplit(url)
    path = _PATH_SESSION.sub("", parts.path)
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k.lower() not in SESSION_PARAMS and not k.lower().startswith("utm_")
    ]
    cleaned = urlunsplit((parts.scheme, parts.netloc, path, urlencode(query), ""))
    canonical = canonicalize_url(cleaned, keep_fragments=False)
    parts = urlsplit(canonical)
    scheme = parts.scheme.lower()
    if parts.port is not None and _DEFAULT_PORTS.get(scheme) == parts.port:
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        canonical = urlunsplit((scheme, netloc, parts.path, parts.query, ""))
    return canonical


def host_of(url: str) -> str:
    """Lower-case host name of `url` (no port, no brackets), or "" when there is none."""
    try:
        return (urlsplit(url).hostname or "").lower().rstrip(".")
    except ValueError:
        return ""


def url_shape(url: str) -> str:
    """`url` with digit runs replaced by `#` and query values reduced likewise.

    `/calendar/2024/01` and `/calendar/2031/12` share the shape `/calendar/#/#`; that is what
    a trap generates forever while ordinary sites vary the words in their paths.
    """
    parts = urlsplit(url)
    query = "&".join(sorted(f"{k}={_DIGITS.sub('#', v)}" for k, v in parse_qsl(parts.query, True)))
    path = _DIGITS.sub("#", parts.path)
    return f"{parts.scheme}://{(parts.netloc or '').lower()}{path}?{query}"


def _normalise_domain(domain: str) -> str:
    domain = domain.strip().lower().rstrip(".")
    if "://" in domain:
        domain = host_of(domain)
    domain = domain.lstrip("*.").strip("[]")
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return domain


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _matches(host: str, domains: Iterable[str]) -> str | None:
    """The entry of `domains` that `host` equals or is a subdomain of, if any."""
    for domain in domains:
        if host == domain or (not _is_ip(domain) and host.endswith("." + domain)):
            return domain
    return None


@dataclass(frozen=True)
class Scope:
    """A crawl job's declared scope. Sequences are stored as tuples; domains normalised.

    `allow_domains` defaults to the seeds' hosts; a domain admits its subdomains too.
    `path_prefixes` (empty: any path) restrict pages, never images: images referenced by an
    in-scope page may live elsewhere (a CDN) and are checked by `image_allowed` instead.
    `max_depth` counts links from a seed (seeds are depth 0). `max_pages` caps page fetches
    and `max_bytes` the bytes downloaded; the crawler enforces both.
    """

    seeds: Sequence[str]
    allow_domains: Sequence[str] | None = None
    path_prefixes: Sequence[str] = ()
    max_depth: int = 2
    max_pages: int = 1000
    max_bytes: int = 1024 * 1024 * 1024
    allow_excluded_platforms: bool = False
    excluded_domains: Sequence[str] = DEFAULT_EXCLUDED_DOMAINS
    max_url_length: int = 2048
    max_query_params: int = 16
    max_path_segments: int = 32
    max_repeated_segment: int = 3
    max_per_shape: int = 50
    _domains: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        seeds = tuple(s.strip() for s in self.seeds if s and s.strip())
        if not seeds:
            raise ValueError("a crawl needs at least one seed URL")
        if self.max_depth < 0 or self.max_pages < 1 or self.max_bytes < 1:
            raise ValueError("max_depth must be >= 0, max_pages and max_bytes >= 1")
        object.__setattr__(self, "seeds", seeds)
        named = self.allow_domains
        domains = tuple(_normalise_domain(d) for d in (named or [host_of(s) for s in seeds]))
        object.__setattr__(self, "allow_domains", tuple(named) if named is not None else None)
        object.__setattr__(self, "_domains", tuple(dict.fromkeys(d for d in domains if d)))
        object.__setattr__(self, "path_prefixes", tuple(self.path_prefixes))
        object.__setattr__(
            self, "excluded_domains", tuple(_normalise_domain(d) for d in self.excluded_domains)
        )

    @property
    def domains(self) -> tuple[str, ...]:
        """The effective allowed domains (normalised; the seeds' hosts by default)."""
        return self._domains

    def in_scope(self, url: str, depth: int) -> Verdict:
        """May the page at canonical `url`, `depth` links from a seed, be fetched?"""
        verdict = self._basic(url)
        if not verdict:
            return verdict
        host = host_of(url)
        if _matches(host, self._domains) is None:
            return Verdict(False, "out_of_scope", f"host {host} is not an allowed domain")
        path = urlsplit(url).path or "/"
        if self.path_prefixes and not any(path.startswith(p) for p in self.path_prefixes):
            return Verdict(False, "out_of_scope", f"path {path} is outside the path prefixes")
        if depth > self.max_depth:
            return Verdict(False, "too_deep", f"depth {depth} > {self.max_depth}")
        return _OK

    def image_allowed(self, url: str) -> Verdict:
        """May an image that an in-scope page references be fetched (any host, same rules)?"""
        return self._basic(url)

    def _basic(self, url: str) -> Verdict:
        """Checks shared by pages and images: well-formed, not a trap, not a platform."""
        try:
            check_url(url)
        except Refused as refused:
            return Verdict(False, refused.reason, refused.detail)
        if len(url) > self.max_url_length:
            return Verdict(False, "trap", f"URL longer than {self.max_url_length} characters")
        parts = urlsplit(url)
        if len(parse_qsl(parts.query, keep_blank_values=True)) > self.max_query_params:
            return Verdict(False, "trap", f"more than {self.max_query_params} query parameters")
        segments = [s for s in parts.path.split("/") if s]
        if len(segments) > self.max_path_segments:
            return Verdict(False, "trap", f"more than {self.max_path_segments} path segments")
        repeats = Counter(segments).most_common(1)
        if repeats and repeats[0][1] > self.max_repeated_segment:
            return Verdict(False, "trap", f"path segment {repeats[0][0]!r} repeats")
        host = host_of(url)
        platform = _matches(host, self.excluded_domains)
        if platform is not None:
            named = self.allow_excluded_platforms and _matches(host, self._domains) is not None
            if not named:
                return Verdict(False, "excluded_platform", f"{platform} is an excluded platform")
        return _OK


class ShapeCounter:
    """Counts admitted pages per URL shape and refuses a shape past its cap (trap guard)."""

    def __init__(self, limit: int, counts: Iterable[tuple[str, int]] = ()) -> None:
        self.limit = limit
        self.counts: Counter[str] = Counter(dict(counts))

    def admit(self, url: str) -> Verdict:
        """Count `url` against its shape, or refuse it as a trap when the shape is full."""
        shape = url_shape(url)
        if self.counts[shape] >= self.limit:
            return Verdict(False, "trap", f"more than {self.limit} URLs shaped {shape}")
        self.counts[shape] += 1
        return _OK
