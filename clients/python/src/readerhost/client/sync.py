"""The blocking client: the same methods as AsyncClient over a plain socket, for scripts and
readerhostctl. One thread at a time per Client (use one Client per thread, or AsyncClient)."""

from __future__ import annotations

import collections
import contextlib
import itertools
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from . import wire
from .aio import _why
from .base import ClientBase
from .errors import CannotConnect, ConnectionLost, ProtocolError
from .methods import PosMethods, Rpc
from .paths import default_socket_path
from .wire import Banner, Event, Response

_DEFAULT: Any = object()
_CHUNK = 64 * 1024
P = ParamSpec("P")
R = TypeVar("R")


class Client(ClientBase, PosMethods):
    """A blocking connection to readerhostd. Create it with `Client.connect(...)`; the POS methods
    (status, start_payment, ...) are PosMethods' (methods.py). Events that arrive while a
    call waits for its answer are kept for next_event()/events()."""

    def __init__(
        self,
        sock: socket.socket,
        banner: Banner,
        *,
        path: Path,
        buffered: bytes = b"",
        call_timeout: float | None = wire.DEFAULT_CALL_TIMEOUT,
        max_events: int = wire.MAX_KEPT_EVENTS,
    ) -> None:
        self.banner = banner
        self.path = path
        self.call_timeout = call_timeout
        self._sock = sock
        self._buffer = bytearray(buffered)
        self._ids = itertools.count(1)
        # Beyond max_events untaken events, the oldest are dropped (the gap shows in seq).
        self._events: collections.deque[Event] = collections.deque(maxlen=max_events)
        self._lost: str | None = None

    @classmethod
    def connect(
        cls,
        path: str | os.PathLike[str] | None = None,
        timeout: float = 5.0,
        *,
        call_timeout: float | None = wire.DEFAULT_CALL_TIMEOUT,
        max_events: int = wire.MAX_KEPT_EVENTS,
    ) -> Client:
        """Connect and read the banner (within `timeout` seconds). Raises CannotConnect, the daemon's
        refusal (Forbidden, Busy), or IncompatibleProtocol."""
        where = Path(path) if path is not None else default_socket_path()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            try:
                sock.connect(str(where))
            except TimeoutError:
                raise CannotConnect(str(where), f"no answer within {timeout:g} s") from None
            except OSError as error:
                raise CannotConnect(str(where), _why(error)) from None
            buffer = bytearray()
            deadline = time.monotonic() + timeout
            while b"\n" not in buffer:
                sock.settimeout(max(0.001, deadline - time.monotonic()))
                try:
                    chunk = sock.recv(_CHUNK)
                except TimeoutError:
                    raise CannotConnect(str(where), f"no banner within {timeout:g} s") from None
                except OSError as error:
                    raise CannotConnect(str(where), f"reading the banner failed: {_why(error)}") from None
                if not chunk:
                    raise CannotConnect(str(where), "the daemon closed the connection before its banner")
                buffer += chunk
                if len(buffer) > wire.MAX_LINE:
                    raise CannotConnect(str(where), "the daemon's banner is too long")
            end = buffer.index(b"\n") + 1
            banner = wire.parse_banner(bytes(buffer[:end]))
        except BaseException:
            sock.close()
            raise
        return cls(
            sock, banner, path=where, buffered=bytes(buffer[end:]), call_timeout=call_timeout, max_events=max_events
        )

    # -- requests ------------------------------------------------------------------------------

    def call(self, method: str, params: dict[str, Any] | None = None, timeout: float | None = _DEFAULT) -> Any:
        """Send one request and return its result, or raise its error (a ReaderhostError subclass).
        TimeoutError if no answer comes in time; ConnectionLost if the connection ends first."""
        if timeout is _DEFAULT:
            timeout = self.call_timeout
        request_id = next(self._ids)
        line = wire.encode_request(request_id, method, params)
        self._check_open()
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            self._sock.settimeout(timeout)
            self._sock.sendall(line)
        except TimeoutError:
            raise TimeoutError(f"{method}: the daemon did not take the request within {timeout:g} s") from None
        except OSError as error:
            raise self._lose(f"sending to the daemon failed: {error}") from None
        while True:
            try:
                message = self._receive(deadline)
            except TimeoutError:
                raise TimeoutError(f"{method}: no answer from readerhostd within {timeout:g} s") from None
            if isinstance(message, Event):
                self._events.append(message)
            elif isinstance(message, Response) and (
                message.id == request_id or (message.id is None and message.error is not None)
            ):
                if message.error is not None:
                    raise message.error
                return message.result
            # anything else: an event kept above, or the late answer to a call that timed out

    def _request(self, rpc: Rpc[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """One method of the table: its parameters built from the arguments, its result shaped."""
        return rpc.result(self.call(rpc.method, rpc.params(*args, **kwargs)))

    # -- events --------------------------------------------------------------------------------

    def next_event(self, timeout: float | None = None) -> Event:
        """The next event, in the order the daemon sent them. TimeoutError when none comes in time;
        ConnectionLost once the connection has ended and every event received has been taken."""
        if self._events:
            return self._events.popleft()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            message = self._receive(deadline)
            if isinstance(message, Event):
                return message

    def wait_for_event(self, predicate: Callable[[Event], bool], timeout: float | None = None) -> Event:
        """The next event for which predicate(event) is true; the events before it are consumed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            event = self.next_event(remaining)
            if predicate(event):
                return event

    def events(self, timeout: float | None = None) -> Iterator[Event]:
        """Every event, in order, until the connection ends (subscribe first). With a timeout,
        TimeoutError is raised when no event comes for that long."""
        while True:
            try:
                event = self.next_event(timeout)
            except ConnectionLost:
                return
            yield event

    # -- the connection ------------------------------------------------------------------------

    def close(self) -> None:
        if self._lost is None:
            self._lost = "the client was closed"
        with contextlib.suppress(OSError):
            self._sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._lost is not None:
            raise ConnectionLost(self._lost)

    def _lose(self, why: str) -> ConnectionLost:
        if self._lost is None:
            self._lost = why
        with contextlib.suppress(OSError):
            self._sock.close()
        return ConnectionLost(self._lost)

    def _receive(self, deadline: float | None) -> wire.Message:
        """The next message; TimeoutError at the deadline (what was read so far is kept)."""
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                line = bytes(self._buffer[: end + 1])
                del self._buffer[: end + 1]
                try:
                    return wire.decode(line)
                except ProtocolError as error:
                    raise self._lose(f"the daemon sent something unreadable: {error.message}") from None
            self._check_open()
            if len(self._buffer) > wire.MAX_LINE:
                raise self._lose(f"the daemon sent a line over {wire.MAX_LINE} bytes")
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError("no message from readerhostd in time")
            try:
                self._sock.settimeout(remaining)
                chunk = self._sock.recv(_CHUNK)
            except TimeoutError:
                raise TimeoutError("no message from readerhostd in time") from None
            except OSError as error:
                raise self._lose(f"the connection broke: {error}") from None
            if not chunk:
                raise self._lose("the daemon closed the connection")
            self._buffer += chunk
