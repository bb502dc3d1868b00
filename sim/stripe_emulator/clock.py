"""The emulator's clock: wall time plus an offset that tests move forward, never back."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class ClockError(ValueError):
    """A request to move the clock that would make time run backwards."""


class EmulatorClock:
    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self._wall = wall
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._wall() + self._offset

    def timestamp(self) -> int:
        """Stripe's timestamps are whole Unix seconds."""
        return int(self.now())

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ClockError("advance_s must not be negative: the emulator's clock only moves forward")
        with self._lock:
            self._offset += seconds
            return self._wall() + self._offset

    def set(self, unix_seconds: float) -> float:
        with self._lock:
            current = self._wall() + self._offset
            if unix_seconds < current - 1:  # a second of slack for clocks read just before the call
                raise ClockError(f"cannot set the clock back from {int(current)} to {int(unix_seconds)}")
            self._offset = max(unix_seconds, current) - self._wall()
            return self._wall() + self._offset

    def reset(self) -> None:
        with self._lock:
            self._offset = 0.0
