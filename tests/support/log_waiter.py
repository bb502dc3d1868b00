"""Log records of an in-process daemon, kept for a test to wait on: for what a daemon says only in
its log (e.g. a reader that cannot be reached, said once), so that a test waits for the saying
instead of polling or sleeping."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator

WAIT_S = 15.0


class LogWaiter(logging.Handler):
    """Keeps the records of the logger it is attached to (`attached`); records come from the test's
    own event loop (the daemon runs in it), so a waiter is woken directly."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._changed: asyncio.Condition | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        if self._changed is not None:
            asyncio.get_running_loop().create_task(self._wake())

    async def _wake(self) -> None:
        assert self._changed is not None
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[str], bool]) -> str:
        """The first message (old or new) for which `predicate` holds; TimeoutError after WAIT_S."""
        self._changed = self._changed or asyncio.Condition()

        def found() -> str | None:
            return next((m for r in self.records if predicate(m := r.getMessage())), None)

        async with asyncio.timeout(WAIT_S), self._changed:
            await self._changed.wait_for(lambda: found() is not None)
        message = found()
        assert message is not None
        return message


@contextlib.contextmanager
def attached(name: str) -> Iterator[LogWaiter]:
    """A LogWaiter on logger `name` (at DEBUG) while the block runs."""
    logger = logging.getLogger(name)
    waiter = LogWaiter()
    level = logger.level
    logger.addHandler(waiter)
    logger.setLevel(logging.DEBUG)
    try:
        yield waiter
    finally:
        logger.removeHandler(waiter)
        logger.setLevel(level)
