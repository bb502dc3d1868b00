"""A POS client that keeps a record: every byte it exchanged and everything it was told or asked.

It speaks the protocol over a raw socket, as any integrator's code would, rather than through
`readerhost.client`: the harness needs the exact bytes on the wire (for the secrets scan) and the
errors as the daemon sent them (reason codes, ambiguous answers), which the client library turns
into exceptions on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Message = dict[str, Any]


@dataclass
class PosRecord:
    """What all the POS clients of one run were told, and what they asked for."""

    told: set[tuple[str, str]] = field(default_factory=set)  # (payment_id, state) seen in answers and events
    capture_asked: dict[str, int] = field(default_factory=dict)  # accepted captures: payment_id -> amount
    capture_maybe: set[str] = field(default_factory=set)  # a capture sent, its answer lost (connection gone)
    cancel_accepted: set[str] = field(default_factory=set)  # payment.cancel answered with the payment canceled
    automatic: set[str] = field(default_factory=set)  # payments started with capture: automatic
    refund_asked: dict[str, tuple[str, int | None]] = field(
        default_factory=dict
    )  # accepted: refund_id -> (payment, amount)
    refund_maybe: set[str] = field(default_factory=set)  # refund_ids sent (answered or not)
    refunds_told: set[tuple[str, str]] = field(default_factory=set)  # (refund_id, state) seen in answers and events
    wire: bytearray = field(default_factory=bytearray)  # everything sent and received on every connection

    def note_payments(self, value: Any) -> None:
        """Remember each payment (and refund) object inside an answer or an event as told."""
        if isinstance(value, dict):
            if isinstance(value.get("refund_id"), str) and isinstance(value.get("state"), str):
                self.refunds_told.add((value["refund_id"], value["state"]))
            elif isinstance(value.get("increment_id"), str):
                pass  # an increment's state (declined, ...) is not its payment's
            elif isinstance(value.get("payment_id"), str) and isinstance(value.get("state"), str):
                self.told.add((value["payment_id"], value["state"]))
            for inner in value.values():
                self.note_payments(inner)
        elif isinstance(value, list):
            for inner in value:
                self.note_payments(inner)


class Gone(Exception):
    """The connection ended (the daemon was killed, or dropped this client) before an answer came."""


@dataclass(frozen=True)
class Reply:
    result: Any = None
    error: Message | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def reason(self) -> str | None:
        if self.error is None:
            return None
        data = self.error.get("data") or {}
        return str(data.get("reason")) if isinstance(data, dict) else None


class PosClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, record: PosRecord) -> None:
        self._reader = reader
        self._writer = writer
        self._record = record
        self._next_id = 0
        self.events: list[Message] = []  # event params not yet taken
        self.closed = False

    @classmethod
    async def connect(
        cls, path: Path, record: PosRecord, topics: tuple[str, ...] = ("payment", "reader"), timeout: float = 10.0
    ) -> PosClient:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(path), limit=2**20), timeout)
        except (ConnectionError, FileNotFoundError) as error:
            # Nobody listens (a reconnect racing a kill: the socket file outlives the daemon), or the
            # socket is not there. Python 3.11's wait_for may raise this even when the caller was
            # cancelled meanwhile, so it must be Gone like any other end of the daemon.
            raise Gone(f"cannot connect to {path}: {error}") from error
        client = cls(reader, writer, record)
        hello = await client._receive(timeout)
        if hello.get("method") != "hello":
            raise Gone(f"expected the hello banner, got {hello}")
        if topics:
            reply = await client.call("events.subscribe", {"topics": list(topics)}, timeout)
            if not reply.ok:
                raise Gone(f"events.subscribe refused: {reply.error}")
        return client

    async def _receive(self, timeout: float) -> Message:
        try:
            line = await asyncio.wait_for(self._reader.readline(), timeout)
        except (ConnectionError, asyncio.IncompleteReadError, ValueError) as error:
            self.closed = True
            raise Gone(str(error)) from error
        if not line:
            self.closed = True
            raise Gone("the daemon closed the connection")
        self._record.wire += line
        message: Message = json.loads(line)
        if message.get("method") == "event":
            params = message.get("params") or {}
            self._record.note_payments(params.get("data"))
            self.events.append(params)
        else:
            self._record.note_payments(message.get("result"))
        return message

    async def call(self, method: str, params: Message | None = None, timeout: float = 30.0) -> Reply:
        """Send one request and wait for its answer; Gone if the connection ends first."""
        self._next_id += 1
        request: Message = {"jsonrpc": "2.0", "id": self._next_id, "method": method}
        if params is not None:
            request["params"] = params
        line = json.dumps(request).encode() + b"\n"
        self._record.wire += line
        try:
            self._writer.write(line)
            await self._writer.drain()
        except (ConnectionError, RuntimeError) as error:
            self.closed = True
            raise Gone(str(error)) from error
        deadline = time.monotonic() + timeout
        while True:
            message = await self._receive(max(0.0, deadline - time.monotonic()))
            if message.get("id") == self._next_id:
                return Reply(message.get("result"), message.get("error"))

    async def event(self, predicate: Callable[[Message], bool], timeout: float) -> Message | None:
        """The first event matching `predicate` (kept or still to come), or None after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            for index, params in enumerate(self.events):
                if predicate(params):
                    return self.events.pop(index)
            self.events.clear()  # none matched: nothing kept is wanted any more
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                await self._receive(remaining)

    async def close(self) -> None:
        self.closed = True
        self._writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()


def payment_event(payment_id: str, *types: str) -> Callable[[Message], bool]:
    """A predicate: an event about `payment_id` (of one of `types`, when given)."""

    def matches(params: Message) -> bool:
        data = params.get("data") or {}
        return data.get("payment_id") == payment_id and (not types or params.get("type") in types)

    return matches
