"""Operator settings of the crawler, kept apart from a job's declared `Scope`.

A scope says *what* a job may crawl and is ledgered with it; `CrawlConfig` says *how* this
installation crawls anything: politeness, limits, the excluded platforms and the address
ranges an administrator has allowed. The defaults are the safe production values; tests
shorten the timeouts but never widen a safeguard beyond loopback.
"""

from __future__ import annotations

from dataclasses import dataclass

from faceledger.config import DEFAULT_CONTACT_URL, DEFAULT_EXCLUDED_DOMAINS

__all__ = ["DEFAULT_CONTACT_URL", "DEFAULT_EXCLUDED_DOMAINS", "CrawlConfig"]

_MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class CrawlConfig:
    """How this installation crawls; see the module docstring for why it is not `Scope`."""

    contact_url: str = DEFAULT_CONTACT_URL
    user_agent: str | None = None
    """Full User-Agent header; None builds `faceledger/0.1 (+contact_url)`."""
    robots_agent: str = "faceledger"
    """Product token matched against robots.txt `User-agent` lines."""
    per_host_delay: float = 1.0
    per_host_concurrency: int = 2
    global_concurrency: int = 8
    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    max_fetch_seconds: float = 120.0
    """Wall-clock cap on one request, so a server trickling bytes cannot hold a slot forever."""
    max_redirects: int = 5
    max_page_bytes: int = 5 * _MiB
    max_image_bytes: int = 20 * _MiB
    max_robots_bytes: int = 512 * 1024
    """robots.txt beyond this is cut and the first part parsed, as the major engines do."""
    max_crawl_delay: float = 60.0
    """A robots.txt crawl-delay above this refuses the host rather than stall the crawl."""
    retries: int = 3
    backoff_base: float = 1.0
    retry_after_cap: float = 60.0
    excluded_domains: tuple[str, ...] = DEFAULT_EXCLUDED_DOMAINS
    allowed_cidrs: tuple[str, ...] = ()
    """Address ranges the SSRF guard lets through although they are private (admin only)."""
    warc_max_bytes: int = 1024 * _MiB
    """A WARC file is closed and a new one started once it reaches this size."""
    stats_interval: float = 2.0

    @property
    def effective_user_agent(self) -> str:
        """The User-Agent header: names faceledger and how to reach the operator."""
        return self.user_agent or f"faceledger/0.1 (+{self.contact_url})"

    def __post_init__(self) -> None:
        for name in ("per_host_concurrency", "global_concurrency", "max_page_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("per_host_delay", "backoff_base", "retry_after_cap", "retries"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        for name in ("connect_timeout", "read_timeout", "max_fetch_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
