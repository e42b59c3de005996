"""robots.txt: fetched once per origin, parsed with protego, obeyed for every URL.

A site's robots.txt is its operator's word on what may be crawled, so it is fetched through
the same guarded, polite fetcher as everything else and archived with the crawl (evidence
that the crawl was permitted). Outcomes follow RFC 9309, with one deliberate choice:

- 2xx: the rules apply to our product token (`CrawlConfig.robots_agent`), including
  `Crawl-delay` (and `Request-rate`), which only ever lengthens the per-host delay; a delay
  above `max_crawl_delay` refuses the host rather than stall the whole crawl;
- 3xx: followed up to five hops, then treated as unavailable;
- 4xx (but not 429): no robots.txt, everything is allowed;
- 429, 5xx, timeouts and network errors: the whole host is disallowed for this crawl.
  RFC 9309 permits that ("unreachable": assume complete disallow); it is the conservative
  choice for a crawler that must not collect faces where it may not have been allowed.

Results are kept in memory and in the crawl state, so a resumed crawl does not fetch them
again. A host refused by the SSRF guard raises `Refused` for each of its URLs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol
from urllib.parse import urlsplit

from protego import Protego

from faceledger.crawl.config import CrawlConfig
from faceledger.crawl.fetch import Fetcher, FetchError, FetchResult
from faceledger.crawl.guard import Refused

__all__ = ["RobotsCache", "RobotsRules", "RobotsStore", "origin_of"]

Mode = Literal["rules", "allow_all", "disallow_all"]
_MAX_HOPS = 5


class RobotsStore(Protocol):
    """Where robots.txt outcomes persist across a resume (the crawl state)."""

    def get_robots(self, origin: str) -> tuple[str, str, str] | None: ...

    def put_robots(self, origin: str, mode: str, text: str, detail: str) -> None: ...


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of `url`, lower-cased: the unit robots.txt applies to."""
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


@dataclass
class RobotsRules:
    """The robots.txt verdict for one origin."""

    origin: str
    mode: Mode
    detail: str = ""
    text: str = ""
    parser: Protego | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.parser = Protego.parse(self.text) if self.mode == "rules" else None

    def allows(self, url: str, agent: str) -> bool:
        if self.parser is None:
            return self.mode == "allow_all"
        return bool(self.parser.can_fetch(url, agent))

    def delay(self, agent: str) -> float | None:
        """Seconds between requests the site asks of `agent`, if it asks."""
        parser = self.parser
        if parser is None:
            return None
        delays: list[float] = []
        crawl_delay = parser.crawl_delay(agent)
        if crawl_delay is not None:
            delays.append(float(crawl_delay))
        rate = parser.request_rate(agent)
        if rate is not None and rate.requests:
            delays.append(rate.seconds / rate.requests)
        return max(delays) if delays else None


class RobotsCache:
    """Per-origin robots.txt, fetched at most once per crawl; see the module docstring."""

    def __init__(
        self,
        fetcher: Fetcher,
        config: CrawlConfig,
        store: RobotsStore | None = None,
        on_fetched: Callable[[FetchResult], Awaitable[None]] | None = None,
    ) -> None:
        self.fetcher = fetcher
        self.config = config
        self.store = store
        self.on_fetched = on_fetched
        self._rules: dict[str, RobotsRules | Refused] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.bytes_read = 0

    async def why_disallowed(self, url: str) -> str | None:
        """None if robots.txt lets us fetch `url`; else why not. Raises `Refused`."""
        rules = await self.rules_for(url)
        agent = self.config.robots_agent
        if not rules.allows(url, agent):
            return rules.detail or f"robots.txt of {rules.origin} disallows it"
        delay = rules.delay(agent)
        if delay is not None and delay > self.config.max_crawl_delay:
            return f"crawl-delay {delay:g}s exceeds the {self.config.max_crawl_delay:g}s limit"
        return None

    async def rules_for(self, url: str) -> RobotsRules:
        """The robots.txt rules of `url`'s origin, fetching them on first use."""
        origin = origin_of(url)
        known = self._rules.get(origin)
        if known is None:
            lock = self._locks.setdefault(origin, asyncio.Lock())
            async with lock:
                known = self._rules.get(origin)
                if known is None:
                    known = await self._load(origin)
                    self._rules[origin] = known
        if isinstance(known, Refused):
            raise known
        return known

    async def _load(self, origin: str) -> RobotsRules | Refused:
        stored = self.store.get_robots(origin) if self.store else None
        if stored is not None:
            rules = RobotsRules(origin, _mode(stored[0]), stored[2], stored[1])
        else:
            try:
                rules = await self._fetch(origin)
            except Refused as refused:
                return refused
            if self.store:
                self.store.put_robots(origin, rules.mode, rules.text, rules.detail)
        delay = rules.delay(self.config.robots_agent)
        if delay is not None:
            host = (urlsplit(origin).hostname or "").lower()
            self.fetcher.politeness.set_delay(host, min(delay, self.config.max_crawl_delay))
        return rules

    async def _fetch(self, origin: str) -> RobotsRules:
        url = f"{origin}/robots.txt"
        for _ in range(_MAX_HOPS + 1):
            try:
                result = await self.fetcher.fetch(
                    url, self.config.max_robots_bytes, allow_truncated=True
                )
            except FetchError as error:
                self.bytes_read += error.bytes_read
                return RobotsRules(origin, "disallow_all", f"robots.txt unreachable ({error})")
            self.bytes_read += result.bytes_received
            if self.on_fetched is not None:
                await self.on_fetched(result)
            status = result.status
            if 200 <= status < 300:
                text = result.body.decode("utf-8", errors="replace")
                return RobotsRules(origin, "rules", f"robots.txt of {origin} disallows it", text)
            if 300 <= status < 400:
                if result.location is None:
                    return RobotsRules(origin, "allow_all", "robots.txt redirect without target")
                url = result.location
                continue
            if 400 <= status < 500 and status != 429:
                return RobotsRules(origin, "allow_all", f"robots.txt answered {status}")
            return RobotsRules(origin, "disallow_all", f"robots.txt answered {status}")
        return RobotsRules(origin, "allow_all", "robots.txt redirected too often")


def _mode(text: str) -> Mode:
    if text in ("rules", "allow_all"):
        return text  # type: ignore[return-value]
    return "disallow_all"
