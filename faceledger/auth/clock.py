"""Time for authentication, injectable so lock-outs and expiry are testable without sleeping."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from faceledger.store.models import utcnow

Clock = Callable[[], datetime]

__all__ = ["Clock", "as_utc", "utcnow"]


def as_utc(moment: datetime) -> datetime:
    """An aware UTC datetime: SQLite hands back naive ones even for timezone-aware columns."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
