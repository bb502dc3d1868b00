"""readerhostd for tests: in-process (fast, for protocol conformance) or as a real process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from readerhost.daemon.app import BuiltInEmulator, Daemon, StandIns, build
from readerhost.daemon.config import load_config
from readerhost.daemon.ui.controller import UiController
from readerhost.daemon.ui.screens import Screen
from support.protocol_relay import ProtocolRelay

# The simulated reader waits for `reader.present` unless a test says otherwise.
DEFAULT_CONFIG = """
[reader.simulated]
present_after_s = -1
"""


def write_config(tmp_path: Path, text: str = DEFAULT_CONFIG) -> Path:
    path = tmp_path / "readerhost.toml"
    path.write_text(text)
    return path


def daemon_env(tmp_path: Path) -> dict[str, str]:
    """An environment with no Stripe key (built-in emulator) and every path under tmp_path."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("STRIPE_API_KEY", "READERHOST_CONFIG", "CREDENTIALS_DIRECTORY")
    }
    env.update(
        READERHOST_SOCKET=str(tmp_path / "api.sock"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_RUNTIME_DIR=str(tmp_path / "run"),
    )
    return env


@contextlib.asynccontextmanager
async def running_daemon(tmp_path: Path, config_text: str = DEFAULT_CONFIG, **stand_ins: Any) -> AsyncIterator[Daemon]:
    """The daemon in this process and event loop; its socket is `daemon.socket_path`. `stand_ins`
    (display_bus, gpio_factory, ble_backends) replace hardware, as StandIns' fields."""
    env = daemon_env(tmp_path)
    config = load_config(str(write_config(tmp_path, config_text)), env)
    daemon = await build(config, env, cwd=tmp_path, home=tmp_path, stand_ins=StandIns(**stand_ins))
    await daemon.start()
    try:
        yield daemon
    finally:
        await daemon.stop()


def ui_of(daemon: Daemon) -> UiController:
    """The daemon's screen and buttons (configured in the test)."""
    assert daemon.ui is not None, "no display or GPIO configured"
    return daemon.ui


def screen_of(daemon: Daemon) -> Screen:
    """The screen the kiosk shows now."""
    screen = ui_of(daemon).screen
    assert screen is not None, "nothing shown yet"
    return screen


def emulator_of(daemon: Daemon) -> BuiltInEmulator:
    """The daemon's built-in Stripe emulator (a daemon without a Stripe key)."""
    assert daemon.emulator is not None, "a Stripe key or api_base is configured"
    return daemon.emulator


class LogLines:
    """A process's output read to its end in a thread (a full pipe would stall the process),
    waited on line by line with a timeout."""

    def __init__(self, stream: IO[str]) -> None:
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._done = threading.Event()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def until(self, predicate: Callable[[str], bool], timeout: float = 30.0) -> str:
        """The first line from here on that satisfies `predicate`."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no such line within {timeout} s; saw {self.seen}") from None
            if line is None:
                self._done.set()
                raise AssertionError(f"the output ended; saw {self.seen}")
            self.seen.append(line)
            if predicate(line):
                return line

    def rest(self, timeout: float = 30.0) -> str:
        """Everything up to the end of the output (the process must be ending)."""
        deadline = time.monotonic() + timeout
        while not self._done.is_set():
            line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            if line is None:
                self._done.set()
            else:
                self.seen.append(line)
        return "\n".join(self.seen)


@dataclass
class DaemonProcess:
    process: subprocess.Popen[str]
    socket_path: Path  # the protocol relay's: what every client is told (its traffic is judged)
    log: LogLines
    daemon_socket_path: Path  # the daemon's own, for tests about the socket or the peer itself


@contextlib.contextmanager
def daemon_process(
    tmp_path: Path, config_text: str = DEFAULT_CONFIG, timeout: float = 30.0, wrapper: tuple[str, ...] = ()
) -> Iterator[DaemonProcess]:
    """readerhostd as a real process; yields once it says it is ready. Stopped with SIGTERM.
    `wrapper` is put in front of the command; it must exec the daemon (the SIGTERM goes to its pid).

    Clients reach it through a ProtocolRelay, so that their traffic is checked against
    docs/protocol/ whoever the client is."""
    env = daemon_env(tmp_path)
    config = write_config(tmp_path, config_text)
    process = subprocess.Popen(
        [*wrapper, sys.executable, "-m", "readerhost.daemon.app", "--config", str(config)],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert process.stderr is not None
    log = LogLines(process.stderr)
    try:
        log.until(lambda line: " ready on " in line, timeout)
        daemon_socket = Path(env["READERHOST_SOCKET"])
        relay = ProtocolRelay(daemon_socket, tmp_path / f"relay-{process.pid}.sock")  # one per daemon
        try:
            yield DaemonProcess(process, relay.path, log, daemon_socket)
        finally:
            relay.close()
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class LineClient:
    """A raw protocol client over a real socket, for conformance tests: lines in, JSON out."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.next_id = 0
        self.events: list[dict[str, Any]] = []  # received, not yet taken by event()
        self.seen_events: list[dict[str, Any]] = []  # every event notification, in arrival order

    @classmethod
    async def connect(cls, path: Path) -> LineClient:
        reader, writer = await asyncio.open_unix_connection(str(path), limit=2**20)
        return cls(reader, writer)

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def receive(self, timeout: float = 10.0) -> dict[str, Any]:
        line = await asyncio.wait_for(self.reader.readline(), timeout)
        if not line:
            raise ConnectionError("the daemon closed the connection")
        message: dict[str, Any] = json.loads(line)
        if message.get("method") == "event":
            self.seen_events.append(message["params"])
        return message

    async def call(self, method: str, params: dict[str, Any] | None = None, timeout: float = 10.0) -> dict[str, Any]:
        """Send a request; return its response, keeping the events that arrive meanwhile."""
        self.next_id += 1
        request: dict[str, Any] = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            request["params"] = params
        await self.send_raw(json.dumps(request).encode() + b"\n")
        while True:
            message = await self.receive(timeout)
            if message.get("id") == self.next_id:
                return message
            self.events.append(message)

    async def event(self, predicate: Any = None, timeout: float = 10.0) -> dict[str, Any]:
        """The next event (matching `predicate`, if given), from those kept or those to come."""
        while True:
            for index, message in enumerate(self.events):
                if message.get("method") == "event" and (predicate is None or predicate(message["params"])):
                    return self.events.pop(index)
            message = await self.receive(timeout)
            self.events.append(message)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


def of_type(kind: str, **data: Any) -> Callable[[dict[str, Any]], bool]:
    """A predicate for LineClient.event: an event of `kind` whose data has these values."""
    return lambda e: e["type"] == kind and all(e["data"].get(k) == v for k, v in data.items())


async def subscribed_when_connected(path: Path) -> LineClient:
    """A POS subscribed to payment and reader events, once the daemon has its reader."""
    pos = await LineClient.connect(path)
    await pos.receive()  # the banner
    snapshot = (await pos.call("events.subscribe", {"topics": ["payment", "reader"]}))["result"]["snapshot"]
    if snapshot["reader"]["state"] != "ready":
        await pos.event(of_type("reader.connected"))
    return pos


def socket_accepts(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True
