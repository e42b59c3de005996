"""How the web app runs: session lifetimes, rate limits and upload limits.

Kept apart from `faceledger.config.Settings` (what the services need) because only the
web layer reads these. The defaults are the production values; tests may tighten them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from faceledger.faces.decode import DEFAULT_LIMITS, DecodeLimits


@dataclass(frozen=True)
class Bucket:
    """A token bucket: `burst` requests at once, then `per_minute` on average."""

    burst: int
    per_minute: float


@dataclass(frozen=True)
class WebConfig:
    cookie_name: str = "faceledger_session"
    # Strict: the session cookie is never sent with a request another site starts.
    same_site: Literal["strict", "lax"] = "strict"
    # A session lapses after this long without a request, and in any case this long after login.
    idle_minutes: int = 60
    session_hours: int = 12
    # Per client address: password logins (the per-name lock-out is auth.login's), and failed
    # API tokens (each failed use is ledgered, so a flood would fill the ledger).
    login_rate: Bucket = Bucket(burst=10, per_minute=10)
    bad_token_rate: Bucket = Bucket(burst=10, per_minute=10)
    # Per user: searches asked for (each runs the face pipeline).
    search_rate: Bucket = Bucket(burst=20, per_minute=60)
    # One uploaded photo; the decoder applies the same limits to its pixels.
    upload: DecodeLimits = field(default_factory=lambda: DEFAULT_LIMITS)

    @property
    def max_body(self) -> int:
        """The largest request body: one photo plus the form fields around it."""
        return self.upload.max_bytes + 1024 * 1024
