"""Build the crawler's operator settings and a job's scope from faceledger `Settings`.

`CrawlConfig` and `Scope` know nothing of faceledger's configuration file; this is the one
place that maps the installation's settings (contact URL, excluded platforms, allowed
address ranges, politeness) and a job's declared options onto them, for `crawl` and `watch`
alike.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field

from faceledger.config import Settings
from faceledger.crawl.config import CrawlConfig
from faceledger.crawl.scope import Scope

__all__ = ["ScopeOptions", "crawl_config"]


def _valid_cidrs(cidrs: Sequence[str]) -> tuple[str, ...]:
    """Normalised ranges; ValueError names one that is not an address or CIDR range."""
    found = []
    for text in cidrs:
        try:
            found.append(str(ipaddress.ip_network(text.strip(), strict=False)))
        except ValueError:
            raise ValueError(f"not an address range: {text!r}") from None
    return tuple(dict.fromkeys(found))


def crawl_config(settings: Settings, allow_addresses: Sequence[str] = ()) -> CrawlConfig:
    """The installation's crawler rules, plus the ranges one job was allowed (admin only)."""
    return CrawlConfig(
        contact_url=settings.crawl_contact_url,
        per_host_delay=settings.crawl_per_host_delay,
        per_host_concurrency=settings.crawl_per_host_concurrency,
        global_concurrency=settings.crawl_concurrency,
        excluded_domains=tuple(settings.crawl_excluded_domains),
        allowed_cidrs=_valid_cidrs([*settings.crawl_allowed_addresses, *allow_addresses]),
    )


@dataclass(frozen=True)
class ScopeOptions:
    """A job's declared scope as its creator gave it; ledgered as `as_dict()`."""

    seeds: tuple[str, ...]
    allow_domains: tuple[str, ...] = ()
    path_prefixes: tuple[str, ...] = ()
    max_depth: int = 2
    max_pages: int = 1000
    max_bytes: int = 1024 * 1024 * 1024
    max_per_shape: int = 50
    allow_addresses: tuple[str, ...] = field(default=())

    def scope(self) -> Scope:
        """ValueError for an empty or malformed scope."""
        _valid_cidrs(self.allow_addresses)
        return Scope(
            seeds=list(self.seeds),
            allow_domains=list(self.allow_domains) or None,
            path_prefixes=self.path_prefixes,
            max_depth=self.max_depth,
            max_pages=self.max_pages,
            max_bytes=self.max_bytes,
            max_per_shape=self.max_per_shape,
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "seeds": list(self.seeds),
            "allow_domains": list(self.allow_domains) or list(self.scope().domains),
            "path_prefixes": list(self.path_prefixes),
            "max_depth": self.max_depth,
            "max_pages": self.max_pages,
            "max_bytes": self.max_bytes,
            "max_per_shape": self.max_per_shape,
            "allow_addresses": list(self.allow_addresses),
        }
