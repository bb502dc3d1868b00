"""One connected link, host side (docs/reader-link-protocol.md § 3): numbering, acknowledgement,
retransmission, duplicate suppression and keepalive. What the messages mean is the reader's
business (reader.py): the session hands each new device message to `deliver`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .codec import MAX_SEQ, FrameDecoder, FrameError, Message, MessageError, MessageType, encode
from .transport import Connection, LinkLost

logger = logging.getLogger("readerhost.reader")


@dataclass(frozen=True)
class LinkTimings:
    ack_timeout_s: float = 0.5
    retransmissions: int = 3
    keepalive_s: float = 5.0


class Session:
    def __init__(
        self,
        connection: Connection,
        deliver: Callable[[Message], None],
        timings: LinkTimings,
        on_malformed: Callable[[MessageError], None],
    ) -> None:
        self._connection = connection
        self._deliver = deliver
        self._on_malformed = on_malformed
        self._timings = timings
        self._decoder = FrameDecoder()
        self._next_seq = 1
        self._last_seq_in: int | None = None
        self._send_lock = asyncio.Lock()  # stop and wait: one unacknowledged message at a time
        self._write_lock = asyncio.Lock()  # a frame's bytes never interleave with an ACK's
        self._awaiting_ack: tuple[int, asyncio.Future[None]] | None = None
        self._lost: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._last_heard = time.monotonic()

    # -- sending ----------------------------------------------------------------------------------

    async def send(self, kind: MessageType, body: Mapping[str, Any] | None = None) -> None:
        """Send and wait for the ACK, retransmitting as § 3 says; LinkLost if it never comes."""
        async with self._send_lock:
            if kind is MessageType.HELLO:
                seq, self._next_seq, self._last_seq_in = 0, 1, None
            else:
                seq = self._next_seq
                self._next_seq = self._next_seq % MAX_SEQ + 1
            frame = encode(Message(kind, seq, body or {}))
            acked: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._awaiting_ack = (seq, acked)
            try:
                for attempt in range(self._timings.retransmissions + 1):
                    if attempt:
                        logger.debug("reader link: no ACK for %s seq %d, sending it again", kind.name, seq)
                    await self._write(frame)
                    waiting: set[asyncio.Future[Any]] = {acked, self._lost}
                    done, _ = await asyncio.wait(
                        waiting, timeout=self._timings.ack_timeout_s, return_when=asyncio.FIRST_COMPLETED
                    )
                    if acked in done:
                        return
                    if self._lost in done:
                        raise LinkLost(self._lost.result())
            finally:
                self._awaiting_ack = None
            self.abandon(f"no acknowledgement of {kind.name} after {self._timings.retransmissions} retransmissions")
            raise LinkLost(self._lost.result())

    async def _write(self, data: bytes) -> None:
        async with self._write_lock:
            try:
                await self._connection.write(data)
            except LinkLost as error:
                self.abandon(error.reason)
                raise

    # -- receiving --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Read and dispatch until the link is lost; then raise LinkLost with the reason."""
        keepalive = asyncio.create_task(self._keepalive())
        reading = asyncio.create_task(self._read_forever())
        try:
            either: set[asyncio.Future[Any]] = {self._lost, reading}
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (keepalive, reading):
                task.cancel()
            for task in (keepalive, reading):
                with contextlib.suppress(asyncio.CancelledError, LinkLost):
                    await task
        if not self._lost.done():
            self.abandon("the reading task ended")
        raise LinkLost(self._lost.result())

    def abandon(self, reason: str) -> None:
        """Give up on this link (the first reason given is the one reported)."""
        if not self._lost.done():
            self._lost.set_result(reason)

    async def _read_forever(self) -> None:
        try:
            while True:
                data = await self._connection.read()
                self._last_heard = time.monotonic()
                for item in self._decoder.feed(data):
                    await self._handle(item)
        except LinkLost as error:
            self.abandon(error.reason)
        except Exception:  # a bug of ours must cost a link reset, not the reader for good
            logger.exception("reader link: failed handling what the device sent")
            self.abandon("an internal error in the daemon (see the log)")

    async def _handle(self, item: Message | Exception) -> None:
        if isinstance(item, FrameError):
            logger.warning("reader link: dropped a damaged frame (%s)", item)
            return
        if isinstance(item, MessageError):
            await self._acknowledge(item.seq)  # it arrived intact: a retransmission would not help
            logger.warning("reader link: malformed message seq %d: %s", item.seq, item)
            self._on_malformed(item)
            return
        assert isinstance(item, Message)
        if item.type is MessageType.ACK:
            waiting = self._awaiting_ack
            if waiting is not None and waiting[0] == item.body["ack"] and not waiting[1].done():
                waiting[1].set_result(None)
            return
        await self._acknowledge(item.seq)
        if item.type.from_host:
            logger.warning("reader link: the device sent a host message (%s): ignored", item.type.name)
            return
        if item.type is MessageType.WELCOME:
            self._last_seq_in = 0
        elif item.seq == self._last_seq_in:
            return  # our ACK was lost and the device sent it again: already handled
        else:
            self._last_seq_in = item.seq
        self._deliver(item)

    async def _acknowledge(self, seq: int) -> None:
        await self._write(encode(Message(MessageType.ACK, 0, {"ack": seq})))

    async def _keepalive(self) -> None:
        """PING when the device has said nothing for a while: a hung device shows as a lost link."""
        while True:
            silent_for = time.monotonic() - self._last_heard
            await asyncio.sleep(max(0.0, self._timings.keepalive_s - silent_for))
            if time.monotonic() - self._last_heard >= self._timings.keepalive_s:
                try:
                    await self.send(MessageType.PING)
                except LinkLost:
                    return
                self._last_heard = time.monotonic()
