"""Work the emulator does later, on its own, in real time: one timer thread per pending callback."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)


class Timers:
    """Callbacks after a delay; `cancel_all` drops every one still pending (reset, shutdown)."""

    def __init__(self) -> None:
        self._pending: set[threading.Timer] = set()
        self._lock = threading.Lock()

    def after(self, seconds: float, callback: Callable[[], None]) -> threading.Timer:
        timer: threading.Timer

        def run() -> None:
            with self._lock:
                if timer not in self._pending:
                    return  # canceled just as it fired
                self._pending.discard(timer)
            try:
                callback()
            except Exception:  # a bug in the emulator: say so on stderr, keep serving
                logger.exception("an emulator timer failed")

        timer = threading.Timer(max(seconds, 0.0), run)
        timer.daemon = True
        with self._lock:
            self._pending.add(timer)
        timer.start()
        return timer

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def cancel(self, timer: threading.Timer) -> None:
        with self._lock:
            self._pending.discard(timer)
        timer.cancel()

    def cancel_all(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, set()
        for timer in pending:
            timer.cancel()
