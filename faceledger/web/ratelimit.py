"""In-process token buckets, keyed by client address or user.

One uvicorn process serves the app, so its memory is the right place for counters that
only need to slow a guesser or a runaway script down; they reset on restart, which the
password lock-out (stored in the database) does not. The number of keys is bounded: the
least recently used bucket is forgotten first.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from faceledger.web.config import Bucket

MAX_KEYS = 10_000


class RateLimiter:
    def __init__(self, bucket: Bucket, clock: Callable[[], float] = time.monotonic) -> None:
        if bucket.burst < 1 or bucket.per_minute <= 0:
            raise ValueError("a rate limit needs a burst of at least 1 and a positive rate")
        self.capacity = float(bucket.burst)
        self.per_second = bucket.per_minute / 60.0
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str, *, spend: bool = True) -> float | None:
        """Spend one token for `key` (or only look, with `spend=False`): None if one was
        there, else the seconds until one is."""
        now = self._clock()
        with self._lock:
            tokens, stamp = self._buckets.pop(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - stamp) * self.per_second)
            allowed = tokens >= 1.0
            if allowed and spend:
                tokens -= 1.0
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > MAX_KEYS:
                self._buckets.popitem(last=False)
        return None if allowed else (1.0 - tokens) / self.per_second
