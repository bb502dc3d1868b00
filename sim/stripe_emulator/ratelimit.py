"""Stripe-like request rate limiting: one token bucket for reads and one for writes.

Stripe limits read and write requests separately (test mode: 25 of each per second). The
bucket holds one second's worth of tokens, so a short burst up to the rate passes and a
sustained excess is answered with 429s. It runs on real (monotonic) time, not the emulator's
business clock, because it models the load on the server.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class _Bucket:
    def __init__(self, per_second: float, now: float) -> None:
        self.per_second = per_second
        self.tokens = per_second
        self.updated = now

    def take(self, now: float) -> bool:
        self.tokens = min(self.per_second, self.tokens + (now - self.updated) * self.per_second)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class RateLimiter:
    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._per_second: float | None = None
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    @property
    def per_second(self) -> float | None:
        return self._per_second

    def configure(self, per_second: float | None) -> None:
        if per_second is not None and per_second <= 0:
            raise ValueError("per_second must be a positive number, or null to turn the limit off")
        with self._lock:
            self._per_second = per_second
            self._buckets.clear()

    def allow(self, is_write: bool) -> bool:
        with self._lock:
            if self._per_second is None:
                return True
            now = self._monotonic()
            kind = "write" if is_write else "read"
            bucket = self._buckets.setdefault(kind, _Bucket(self._per_second, now))
            return bucket.take(now)
