"""The asyncio client: one connection, one reader task that hands each response to its caller
and queues the events; any number of tasks may call at once."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from . import wire
from .base import ClientBase
from .errors import CannotConnect, ConnectionLost, ProtocolError, ReaderhostError
from .methods import PosMethods, Rpc
from .paths import default_socket_path
from .wire import Banner, Event, Response

_DEFAULT: Any = object()  # "the client's call timeout"
P = ParamSpec("P")
R = TypeVar("R")


class AsyncClient(ClientBase, PosMethods):
    """A connection to readerhostd. Create it with `await AsyncClient.connect(...)`; the POS methods
    (status, start_payment, ...) are PosMethods' (methods.py)."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        banner: Banner,
        *,
        path: Path,
        call_timeout: float | None = wire.DEFAULT_CALL_TIMEOUT,
        max_events: int = wire.MAX_KEPT_EVENTS,
    ) -> None:
        self.banner = banner
        self.max_events = max_events
        self.path = path
        self.call_timeout = call_timeout
        self._reader = reader
        self._writer = writer
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._events: asyncio.Queue[Event | None] = asyncio.Queue()
        self._write_lock = asyncio.Lock()
        self._lost: str | None = None  # why the connection ended, once it has
        self._reader_task = asyncio.create_task(self._read_loop(), name=f"readerhost-client {path}")

    @classmethod
    async def connect(
        cls,
        path: str | os.PathLike[str] | None = None,
        timeout: float = 5.0,
        *,
        call_timeout: float | None = wire.DEFAULT_CALL_TIMEOUT,
        max_events: int = wire.MAX_KEPT_EVENTS,
    ) -> AsyncClient:
        """Connect and read the banner (within `timeout` seconds). Raises CannotConnect, the daemon's
        refusal (Forbidden, Busy), or IncompatibleProtocol."""
        where = Path(path) if path is not None else default_socket_path()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_unix_connection(str(where), limit=wire.MAX_LINE), timeout
            )
        except TimeoutError:
            raise CannotConnect(str(where), f"no answer within {timeout:g} s") from None
        except OSError as error:
            raise CannotConnect(str(where), _why(error)) from None
        try:
            try:
                line = await asyncio.wait_for(reader.readline(), timeout)
            except TimeoutError:
                raise CannotConnect(str(where), f"no banner within {timeout:g} s") from None
            except (OSError, ValueError) as error:
                raise CannotConnect(str(where), f"reading the banner failed: {error}") from None
            if not line:
                raise CannotConnect(str(where), "the daemon closed the connection before its banner")
            banner = wire.parse_banner(line)
        except BaseException:
            writer.close()
            raise
        return cls(reader, writer, banner, path=where, call_timeout=call_timeout, max_events=max_events)

    # -- requests ------------------------------------------------------------------------------

    async def call(self, method: str, params: dict[str, Any] | None = None, timeout: float | None = _DEFAULT) -> Any:
        """Send one request and return its result, or raise its error (a ReaderhostError subclass).
        TimeoutError if no answer comes in time; ConnectionLost if the connection ends first."""
        if timeout is _DEFAULT:
            timeout = self.call_timeout
        request_id = next(self._ids)
        line = wire.encode_request(request_id, method, params)
        if self._lost is not None:
            raise ConnectionLost(self._lost)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            try:
                async with self._write_lock:
                    self._writer.write(line)
                    await self._writer.drain()
            except (OSError, RuntimeError) as error:
                self._shut(f"sending to the daemon failed: {error}")
            try:
                return await asyncio.wait_for(future, timeout)
            except TimeoutError:
                raise TimeoutError(f"{method}: no answer from readerhostd within {timeout:g} s") from None
        finally:
            self._pending.pop(request_id, None)

    async def _request(self, rpc: Rpc[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """One method of the table: its parameters built from the arguments, its result shaped."""
        return rpc.result(await self.call(rpc.method, rpc.params(*args, **kwargs)))

    # -- events --------------------------------------------------------------------------------

    async def next_event(self, timeout: float | None = None) -> Event:
        """The next event, in the order the daemon sent them. TimeoutError when none comes in time;
        ConnectionLost once the connection has ended and every event received has been taken."""
        event = await asyncio.wait_for(self._events.get(), timeout)
        if event is None:
            self._events.put_nowait(None)  # the end stays visible to every later reader
            raise ConnectionLost(self._lost or "the connection is closed")
        return event

    async def wait_for_event(self, predicate: Callable[[Event], bool], timeout: float | None = None) -> Event:
        """The next event for which predicate(event) is true; the events before it are consumed."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - loop.time())
            event = await self.next_event(remaining)
            if predicate(event):
                return event

    async def events(self) -> AsyncIterator[Event]:
        """Every event, in order, until the connection ends (subscribe first)."""
        while True:
            try:
                event = await self.next_event()
            except ConnectionLost:
                return
            yield event

    # -- the connection ------------------------------------------------------------------------

    async def close(self) -> None:
        self._shut("the client was closed")
        self._writer.close()
        with contextlib.suppress(OSError, RuntimeError):
            await self._writer.wait_closed()
        if self._reader_task is not asyncio.current_task():
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _read_loop(self) -> None:
        why = "the daemon closed the connection"
        try:
            while True:
                line = await self._reader.readline()
                if not line.endswith(b"\n"):
                    break  # end of stream (a last line without its newline is not a message)
                message = wire.decode(line)
                if isinstance(message, Event):
                    if self._events.qsize() >= self.max_events:
                        self._events.get_nowait()  # nobody takes them: the oldest goes (seq shows the gap)
                    self._events.put_nowait(message)
                elif isinstance(message, Response):
                    self._answer(message)
        except ProtocolError as error:
            why = f"the daemon sent something unreadable: {error.message}"
        except ValueError:
            why = f"the daemon sent a line over {wire.MAX_LINE} bytes"
        except OSError as error:
            why = f"the connection broke: {error}"
        finally:
            self._shut(why)
            self._writer.close()

    def _answer(self, response: Response) -> None:
        if response.id is None:
            # An error about a line the daemon could not attribute (only a frame it refused: then it hangs up).
            if response.error is not None:
                for waiting in self._pending.values():
                    if not waiting.done():
                        waiting.set_exception(_copy(response.error))
            return
        future = self._pending.get(response.id) if isinstance(response.id, int) else None
        if future is None or future.done():
            return  # an answer that came after its caller gave up
        if response.error is not None:
            future.set_exception(response.error)
        else:
            future.set_result(response.result)

    def _shut(self, why: str) -> None:
        """The connection is over: every waiting caller and the event stream learn it, once."""
        if self._lost is not None:
            return
        self._lost = why
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionLost(why))
        self._events.put_nowait(None)


def _copy(error: ReaderhostError) -> ReaderhostError:
    return type(error)(error.code, error.message, error.data)


def _why(error: OSError) -> str:
    if isinstance(error, FileNotFoundError):
        return "no such socket (is readerhostd running? set READERHOST_SOCKET or --socket)"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused (readerhostd is not running; the socket is left over)"
    if isinstance(error, PermissionError):
        return "permission denied (is this user in the daemon's group?)"
    return error.strerror or str(error)
