"""One pace for every request the daemon makes to Stripe on its own: the worker's queued mutations
and the smart reader's health checks take turns below `[stripe] requests_per_second`, so that a
kiosk stays under Stripe's rate limits (test mode: 25 reads and 25 writes a second) whatever asks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class Pacer:
    """Turns at most `requests_per_second` a second, first come first served (on the monotonic
    clock: a Pi's wall clock jumps at boot and when NTP syncs)."""

    def __init__(self, requests_per_second: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not requests_per_second > 0:
            raise ValueError(f"requests_per_second must be above 0; got {requests_per_second}")
        self._interval = 1.0 / requests_per_second
        self._clock = clock
        self._next_at = 0.0

    async def turn(self) -> None:
        """Wait for this request's turn."""
        now = self._clock()
        at = max(now, self._next_at)
        self._next_at = at + self._interval
        if at > now:
            await asyncio.sleep(at - now)


class Allowance:
    """At most `burst` in a row, then one more every `every_s` seconds (a token bucket on the monotonic
    clock): for what a local client may ask as often as it likes but costs the kiosk's share of Stripe."""

    def __init__(self, burst: int, every_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if burst < 1 or not every_s > 0:
            raise ValueError(f"an allowance needs a burst of at least 1 and a period above 0; got {burst}, {every_s}")
        self.burst = burst
        self.every_s = every_s
        self._clock = clock
        self._left = float(burst)
        self._at = clock()

    def take(self) -> float:
        """0.0 when one was taken; else the seconds until one can be (nothing is taken)."""
        now = self._clock()
        self._left = min(float(self.burst), self._left + (now - self._at) / self.every_s)
        self._at = now
        if self._left >= 1.0:
            self._left -= 1.0
            return 0.0
        return (1.0 - self._left) * self.every_s
