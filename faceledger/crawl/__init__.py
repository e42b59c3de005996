"""Targeted, declared crawling into WARC files (never untargeted scraping).

Entry point: `await crawl(job_dir, Scope(seeds=[...]), CrawlConfig(...), progress)` returns
`CrawlStats`; the closed WARC files it lists are read by `faceledger.ingest.warc.iter_warc`.
The modules, each one concern: `scope` (what may be crawled), `guard` (SSRF), `robots`,
`fetch` (polite bounded GETs), `extract` (links and images), `warcout` (archives), `state`
(resumable frontier), `stats`, `crawler` (the loop tying them together), `items` (the
job's images, linked to their pages, for ingestion).
"""

from faceledger.crawl.config import DEFAULT_EXCLUDED_DOMAINS, CrawlConfig
from faceledger.crawl.crawler import STATE_FILE, STATS_FILE, WARC_DIR, crawl
from faceledger.crawl.guard import AddressGuard, Refused
from faceledger.crawl.items import crawl_warc_files, iter_crawl_items
from faceledger.crawl.scope import Scope, Verdict, canonicalize
from faceledger.crawl.stats import CrawlStats, read_stats

__all__ = [
    "DEFAULT_EXCLUDED_DOMAINS",
    "STATE_FILE",
    "STATS_FILE",
    "WARC_DIR",
    "AddressGuard",
    "CrawlConfig",
    "CrawlStats",
    "Refused",
    "Scope",
    "Verdict",
    "canonicalize",
    "crawl",
    "crawl_warc_files",
    "iter_crawl_items",
    "read_stats",
]
