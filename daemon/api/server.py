"""The socket server: peers checked by their credentials, one reader and one writer per client.

Each client of the POS socket gets the banner first, then answers to its requests in order and the
events it subscribed to. A client of the plain JSON-RPC socket (protocol 1.5) is sent nothing it did
not ask for but its events: generic JSON-RPC libraries take any first line for their first answer.

What a client is sent waits in a bounded queue; a client that leaves that queue full
for longer than the slow-client timeout is disconnected, so it can never slow the daemon or
another client. Requests are read one line at a time, at most MAX_FRAME bytes each.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import os
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .protocol import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    MAX_FRAME,
    BadRequest,
    RpcError,
    error_line,
    notification_line,
    parse_request,
    result_line,
)

logger = logging.getLogger(__name__)


# Linux >= 4.13; Python's socket module does not export it (asm-generic/socket.h: 59 on every
# architecture a Pi runs).
SO_PEERGROUPS = 59
# Python's getsockopt takes at most 1024 bytes: 256 groups, far more than any POS user is in.
_PEERGROUPS_BUFFER = 1024


@dataclass(frozen=True)
class Peer:
    pid: int
    uid: int
    gid: int
    groups: frozenset[int]

    @classmethod
    def of(cls, connection: socket.socket) -> Peer:
        """The peer's credentials as the kernel took them at connect(), from the socket alone: not from
        /proc/<pid>/status, which ProtectProc=invisible hides from the daemon (and which a peer's pid
        could be reused for)."""
        pid, uid, gid = struct.unpack("3i", connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
        return cls(pid, uid, gid, _supplementary_groups(connection, pid))


def _supplementary_groups(connection: socket.socket, pid: int) -> frozenset[int]:
    """The peer's supplementary groups (SO_PEERCRED carries only the primary one)."""
    try:
        packed = connection.getsockopt(socket.SOL_SOCKET, SO_PEERGROUPS, _PEERGROUPS_BUFFER)
    except OSError as error:  # ERANGE: in more groups than fit
        logger.warning(
            "cannot read the supplementary groups of the client with pid %d (%s): only its user and primary group "
            "are checked", pid, error.strerror,
        )  # fmt: skip
        return frozenset()
    return frozenset(struct.unpack(f"{len(packed) // 4}I", packed))


@dataclass(frozen=True)
class PeerPolicy:
    """Who may talk to the daemon: root, the daemon's own user, and the configured users and groups."""

    allowed_uids: frozenset[int] = frozenset()
    allowed_gids: frozenset[int] = frozenset()

    def allows(self, peer: Peer) -> bool:
        if is_technician(peer) or peer.uid in self.allowed_uids:
            return True
        return bool(({peer.gid} | peer.groups) & self.allowed_gids)


def is_technician(peer: Peer) -> bool:
    """Root or the daemon's own user (`sudo readerhostctl ...`): they may also change how the daemon is
    set up (reader.register); the configured POS users and groups may not."""
    return peer.uid in (0, os.getuid())


@dataclass(frozen=True)
class ServerLimits:
    max_clients: int = 32
    max_queued_messages: int = 256
    slow_client_timeout_s: float = 5.0


@dataclass(eq=False)
class Client:
    number: int
    peer: Peer
    writer: asyncio.StreamWriter
    outbox: asyncio.Queue[bytes | None]  # None: close once everything before it is written
    topics: set[str] = field(default_factory=set)
    full_since: float | None = None
    closed: bool = False
    seq: int = 0  # the last event number given to this connection
    sender: asyncio.Task[None] | None = None
    spoke: bool = False  # it has sent at least one line
    # On the plain JSON-RPC socket: no banner, and leaving abandons nothing (a generic library may
    # open one connection per request, so a connection cannot own a payment there).
    plain: bool = False

    def describe(self) -> str:
        return f"client {self.number} (pid {self.peer.pid}, uid {self.peer.uid})"

    def journal_fields(self) -> dict[str, int]:
        return {"PEER_PID": self.peer.pid, "PEER_UID": self.peer.uid}


Handler = Callable[[Client, str, dict[str, Any]], Awaitable[Any]]
Hook = Callable[[Client], Awaitable[None]]


class ApiServer:
    def __init__(
        self,
        handler: Handler,
        banner: Callable[[], dict[str, Any]],
        policy: PeerPolicy,
        limits: ServerLimits = ServerLimits(),
        on_disconnect: Hook | None = None,
    ) -> None:
        self._handler = handler
        self._banner = banner
        self._policy = policy
        self._limits = limits
        self._on_disconnect = on_disconnect
        self._servers: list[asyncio.Server] = []
        self._clients: set[Client] = set()
        self._tasks: set[asyncio.Task[None]] = set()  # the writers
        self._connections: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}  # the readers, one per connection
        self._numbers = itertools.count(1)

    @property
    def clients(self) -> frozenset[Client]:
        return frozenset(self._clients)

    async def serve(self, listening: socket.socket, *, plain: bool = False) -> None:
        """Start accepting on a bound, listening Unix socket: the POS socket, or with `plain` the
        plain JSON-RPC socket (no banner, connections own no payment)."""
        accept = functools.partial(self._accept, plain=plain)
        self._servers.append(await asyncio.start_unix_server(accept, sock=listening, limit=MAX_FRAME + 1))

    async def close(self) -> None:
        """Stop accepting; let each client's queued lines go out, then end its connection."""
        for server in self._servers:
            server.close()
        for client in list(self._clients):
            self._close(client, "the daemon is stopping")
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=2.0)
        for writer in list(self._connections.values()):
            writer.transport.abort()  # each reader then sees the end of its connection and returns
        if self._connections:
            await asyncio.wait(set(self._connections), timeout=2.0)

    def publish(self, topic: str, line_for: Callable[[int], bytes]) -> None:
        """Queue an event for every client subscribed to `topic`, without ever waiting.

        Each connection numbers its events 1, 2, 3...: a gap tells a client it missed some
        (it fell too far behind) and should re-read what it cares about.
        """
        for client in list(self._clients):
            if topic in client.topics:
                client.seq += 1
                self._offer(client, line_for(client.seq))

    # -- one connection -----------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, plain: bool) -> None:
        connection = writer.get_extra_info("socket")
        peer = Peer.of(connection)
        client = Client(next(self._numbers), peer, writer, asyncio.Queue(self._limits.max_queued_messages), plain=plain)
        if not self._policy.allows(peer):
            logger.warning(
                "refused %s: not in the allowed users or groups", client.describe(),
                extra={"journal": client.journal_fields()},
            )  # fmt: skip
            await self._refuse(writer, RpcError.app("FORBIDDEN", "this user may not use the readerhost socket"))
            return
        if len(self._clients) >= self._limits.max_clients and not self._make_room():
            logger.warning(
                "refused %s: %d clients already connected", client.describe(), len(self._clients),
                extra={"journal": client.journal_fields()},
            )  # fmt: skip
            await self._refuse(writer, RpcError.app("BUSY", "too many clients are connected", retryable=True))
            return
        self._clients.add(client)
        logger.info("%s connected", client.describe(), extra={"journal": client.journal_fields()})
        client.sender = asyncio.create_task(self._send(client))
        self._tasks.add(client.sender)
        client.sender.add_done_callback(self._tasks.discard)
        if not plain:
            self._offer(client, notification_line("hello", self._banner()))
        this = asyncio.current_task()
        assert this is not None
        self._connections[this] = writer
        try:
            await self._receive(client, reader)
        finally:
            self._connections.pop(this, None)
            self._close(client, "disconnected")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(client.sender), timeout=2.0)
            writer.close()
            if self._on_disconnect is not None:
                await self._on_disconnect(client)

    def _make_room(self) -> bool:
        """All slots taken: free the one held longest by a client that never sent anything, if any.
        Connections leaked by a POS, or opened and left silent, must not lock working clients out."""
        silent = [client for client in self._clients if not client.spoke]
        if not silent:
            return False
        self._drop(min(silent, key=lambda client: client.number), "every slot was taken and it never sent a request")
        return True

    async def _refuse(self, writer: asyncio.StreamWriter, error: RpcError) -> None:
        with contextlib.suppress(ConnectionError):
            writer.write(error_line(None, error))
            await asyncio.wait_for(writer.drain(), timeout=1.0)
        writer.close()

    async def _receive(self, client: Client, reader: asyncio.StreamReader) -> None:
        while not client.closed:
            try:
                line = await reader.readuntil(b"\n")
            except asyncio.LimitOverrunError:
                error = RpcError(
                    INVALID_REQUEST, f"a line may be at most {MAX_FRAME} bytes", {"reason": "FRAME_TOO_LARGE"}
                )
                await self._answer(client, error_line(None, error))
                self._close(client, "it sent a line over the frame limit")
                await _discard_input(reader)
                return
            except asyncio.IncompleteReadError:
                return  # the client hung up (a last line without its newline is ignored)
            except ConnectionError:
                return
            client.spoke = True
            if len(line) > MAX_FRAME + 1:  # the limit also counts the newline
                continue
            if line.strip():
                await self._serve_line(client, line)

    async def _serve_line(self, client: Client, line: bytes) -> None:
        try:
            request = parse_request(line)
        except BadRequest as bad:
            await self._answer(client, error_line(bad.request_id, bad.error))
            return
        logger.info("%s: %s", client.describe(), request.method, extra={"journal": client.journal_fields()})
        try:
            result = await self._handler(client, request.method, request.params)
        except RpcError as error:
            reply = error_line(request.id, error)
        except Exception:
            logger.exception(
                "%s: %s failed", client.describe(), request.method, extra={"journal": client.journal_fields()}
            )
            reply = error_line(request.id, RpcError(INTERNAL_ERROR, "internal error: see the daemon's log"))
        else:
            reply = result_line(request.id, result)
        if not request.is_notification:
            await self._answer(client, reply)

    # -- sending ------------------------------------------------------------------------------

    async def _answer(self, client: Client, line: bytes) -> None:
        """Queue an answer; a client that keeps its queue full past the timeout is dropped."""
        if not client.outbox.full():
            client.outbox.put_nowait(line)  # the usual case: no timer and no task to wait with
            return
        try:
            await asyncio.wait_for(client.outbox.put(line), timeout=self._limits.slow_client_timeout_s)
        except TimeoutError:
            self._drop(client, "it does not read what it is sent")

    def _offer(self, client: Client, line: bytes) -> None:
        try:
            client.outbox.put_nowait(line)
        except asyncio.QueueFull:
            # The event is lost for this client (it sees a gap in seq); if it stays this far
            # behind for the whole timeout, it is dropped.
            if client.full_since is None:
                client.full_since = time.monotonic()
                asyncio.get_running_loop().call_later(self._limits.slow_client_timeout_s, self._check_slow, client)

    def _check_slow(self, client: Client) -> None:
        if client.full_since is not None and time.monotonic() - client.full_since >= self._limits.slow_client_timeout_s:
            self._drop(client, f"its queue stayed full for {self._limits.slow_client_timeout_s:.0f} s")

    async def _send(self, client: Client) -> None:
        """Write the client's queue in order; at the end mark, half-close (the reader side may still drain)."""
        with contextlib.suppress(ConnectionError):
            while (line := await client.outbox.get()) is not None:
                if not client.outbox.full():
                    client.full_since = None
                client.writer.write(line)
                await client.writer.drain()
            if client.writer.can_write_eof():
                client.writer.write_eof()

    def _close(self, client: Client, why: str) -> None:
        """Close after what is already queued has been written (the writer task ends the connection)."""
        if client.closed:
            return
        try:
            client.outbox.put_nowait(None)
        except asyncio.QueueFull:
            self._drop(client, why)
            return
        client.closed = True
        self._clients.discard(client)
        logger.info("%s closed: %s", client.describe(), why)

    def _drop(self, client: Client, why: str) -> None:
        """Cut a client off at once: nothing more is written to it."""
        if client.sender is not None:
            client.sender.cancel()
        client.writer.transport.abort()
        if not client.closed:
            client.closed = True
            self._clients.discard(client)
            logger.warning("%s dropped: %s", client.describe(), why)


async def _discard_input(reader: asyncio.StreamReader, limit: int = 16 * 1024 * 1024, seconds: float = 5.0) -> None:
    """Read and drop what a refused client is still sending: closing with unread input would
    reset the connection and lose the error it was sent."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    dropped = 0
    with contextlib.suppress(TimeoutError, ConnectionError):
        while dropped < limit and (remaining := deadline - loop.time()) > 0:
            chunk = await asyncio.wait_for(reader.read(65536), remaining)
            if not chunk:
                return
            dropped += len(chunk)
