"""Settings: environment variables over an optional TOML file over defaults.

One place decides where data lives and which knobs are in force, so the CLI, the services
and (later) the web app agree. Precedence: explicit argument > FACELEDGER_* environment
variable > `config.toml` in the data directory > built-in default.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from platformdirs import user_data_dir

ENV_PREFIX = "FACELEDGER_"

# Crawl defaults live here, not in crawl/: settings sit below every package that reads them.
DEFAULT_CONTACT_URL = "https://faceledger.invalid/crawler"
"""Placeholder: an installation sets its own contact page (the integrator passes Settings)."""

DEFAULT_EXCLUDED_DOMAINS: tuple[str, ...] = (
    "bsky.app",
    "dailymotion.com",
    "discord.com",
    "facebook.com",
    "fb.com",
    "flickr.com",
    "instagram.com",
    "kick.com",
    "linkedin.com",
    "mastodon.social",
    "onlyfans.com",
    "pinterest.com",
    "reddit.com",
    "redd.it",
    "rumble.com",
    "snapchat.com",
    "t.me",
    "telegram.org",
    "threads.net",
    "tiktok.com",
    "tumblr.com",
    "twitch.tv",
    "twitter.com",
    "vimeo.com",
    "vk.com",
    "weibo.com",
    "x.com",
    "youtu.be",
    "youtube.com",
)
"""Social-media and video platforms: never crawled unless a scope explicitly opts in."""


@dataclass(frozen=True)
class Settings:
    """Everything configurable. Thresholds are calibrated figures: see README, 'Accuracy'."""

    data_dir: Path = field(default_factory=lambda: Path(user_data_dir("faceledger")))
    database_url: str = ""
    # Cosine similarity of unit embeddings at or above which two faces are called a match.
    match_threshold: float = 0.9125
    # Detection scale: up to 2x within detect_max_side, tiny images up to detect_min_side.
    detect_min_side: int = 500
    detect_max_side: int = 1024
    detector: str = "hog"
    workers: int = max(1, os.cpu_count() or 1)
    # Models converted from packaged weights (derived, safe to delete); default: data_dir/models.
    model_dir: Path | None = None
    # What a search may be for; a request must name one of these.
    purposes: tuple[str, ...] = ("investigation", "missing-person", "safeguarding", "self-search")
    # Probe photos are deleted this many days after the request (their hash stays in the ledger).
    probe_retention_days: int = 30
    # An approval must be used within this many hours, once.
    approval_hours: int = 24
    # An external authorisation must be recorded within this many hours or results are purged.
    authorisation_hours: int = 48
    # A face at or above this similarity to an opted-out template is treated as that person.
    optout_threshold: float = 0.9125
    # Crawling: who may start a crawl, how the crawler names itself, what it never visits.
    crawl_roles: tuple[str, ...] = ("admin",)
    crawl_contact_url: str = DEFAULT_CONTACT_URL
    crawl_excluded_domains: tuple[str, ...] = DEFAULT_EXCLUDED_DOMAINS
    # Private address ranges (CIDR) every crawl may reach; a job may add its own (admin only).
    crawl_allowed_addresses: tuple[str, ...] = ()
    crawl_per_host_delay: float = 1.0
    crawl_per_host_concurrency: int = 2
    crawl_concurrency: int = 8
    # Watch alerts: a face at or above this similarity to an enrolled template is an alert.
    watch_threshold: float = 0.9125
    # Where alerts go: webhook URLs (JSON POST) and e-mail through an SMTP server.
    alert_webhooks: tuple[str, ...] = ()
    alert_emails: tuple[str, ...] = ()
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_sender: str = "faceledger@localhost"

    @property
    def database(self) -> str:
        """The SQLAlchemy URL: SQLite inside the data directory unless one is configured."""
        return self.database_url or f"sqlite:///{self.data_dir / 'faceledger.db'}"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def probe_dir(self) -> Path:
        return self.data_dir / "probes"

    @property
    def model_cache_dir(self) -> Path:
        return self.model_dir or self.data_dir / "models"

    @property
    def crawl_dir(self) -> Path:
        """One folder per crawl job: its frontier, statistics and WARC files."""
        return self.data_dir / "crawls"


def _coerce(name: str, raw: Any) -> Any:
    default = {f.name: f for f in fields(Settings)}[name]
    kind = default.type if isinstance(default.type, str) else default.type.__name__
    if "Path" in kind:
        return Path(raw).expanduser()
    if kind.startswith("tuple"):
        items = raw.split(",") if isinstance(raw, str) else raw
        return tuple(str(item).strip() for item in items if str(item).strip())
    if kind == "float":
        return float(raw)
    if kind == "int":
        return int(raw)
    return str(raw)


def load_settings(data_dir: Path | None = None, **overrides: Any) -> Settings:
    """Build settings from the environment, the data directory's config.toml and overrides."""
    names = {f.name for f in fields(Settings)}
    values: dict[str, Any] = {}
    env = {
        n: os.environ[ENV_PREFIX + n.upper()] for n in names if ENV_PREFIX + n.upper() in os.environ
    }
    if data_dir is not None:
        env["data_dir"] = str(data_dir)
    base = Settings(
        **({"data_dir": _coerce("data_dir", env["data_dir"])} if "data_dir" in env else {})
    )
    toml_path = base.data_dir / "config.toml"
    if toml_path.is_file():
        with toml_path.open("rb") as handle:
            from_file = tomllib.load(handle)
        unknown = set(from_file) - names
        if unknown:
            raise ValueError(f"{toml_path}: unknown settings {sorted(unknown)}")
        values.update(from_file)
    values.update(env)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return replace(base, **{k: _coerce(k, v) for k, v in values.items()})
