"""The device's sending half of one session (docs/reader-link-protocol.md § 3): numbering and stop
and wait, with retransmission after `ack_timeout_s` and the link declared lost after
`retransmissions` retransmissions. Messages queue in order behind the one in flight."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from readerhost.drivers.reader.link.codec import MAX_SEQ, Message, MessageType, encode

from .script import LinkTimings

logger = logging.getLogger("readerhost.reader_device")


class Outbox:
    """Runs as one task per session; a HELLO starts a new session, hence a new Outbox."""

    def __init__(
        self, write: Callable[[bytes], Awaitable[None]], timings: LinkTimings, on_lost: Callable[[], None]
    ) -> None:
        self._write = write
        self._timings = timings
        self._on_lost = on_lost
        self._queue: deque[Message] = deque()
        self._ready = asyncio.Event()
        self._next_seq = 1
        self._in_flight: tuple[int, asyncio.Future[None]] | None = None
        self._task = asyncio.get_running_loop().create_task(self._run())

    def put(self, kind: MessageType, body: Mapping[str, Any], *, seq: int | None = None) -> None:
        """Queue a message; seq is the next one unless given (WELCOME has seq 0)."""
        if seq is None:
            seq = self._next_seq
            self._next_seq = self._next_seq % MAX_SEQ + 1
        self._queue.append(Message(kind, seq, dict(body)))
        self._ready.set()

    def acked(self, seq: int) -> None:
        """An ACK arrived; one for anything but the message in flight is stale and ignored."""
        if self._in_flight is not None and self._in_flight[0] == seq and not self._in_flight[1].done():
            self._in_flight[1].set_result(None)

    def cancel(self) -> None:
        """Stop now (from inside the task too: it was losing the link)."""
        self._task.cancel()

    async def close(self) -> None:
        self._task.cancel()
        if self._task is asyncio.current_task():
            return
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        while True:
            await self._ready.wait()
            if not self._queue:
                self._ready.clear()
                continue
            message = self._queue.popleft()
            if not await self._deliver(message):
                logger.warning("no ACK for %s seq %d: link lost", message.type.name, message.seq)
                self._queue.clear()
                self._on_lost()
                return

    async def _deliver(self, message: Message) -> bool:
        frame = encode(message)
        acked: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._in_flight = (message.seq, acked)
        try:
            for _attempt in range(1 + self._timings.retransmissions):
                await self._write(frame)
                # Not wait_for: in 3.11 it swallows a cancel (a HELLO) that comes with the ACK.
                done, _ = await asyncio.wait({acked}, timeout=self._timings.ack_timeout_s)
                if done:
                    return True
            return False
        finally:
            self._in_flight = None
