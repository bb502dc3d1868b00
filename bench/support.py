"""Shared by the benchmarks: readerhostd as a real process, an emulator in this process, a raw client.

Nothing here runs at import. The daemon is started exactly as an operator would start it
(`python -m readerhost.daemon.app --config FILE`), with every path under a fresh temporary folder
and no Stripe key, so it either runs its built-in emulator or, with `daemon_config(api_base=...)`,
talks to an emulator that the benchmark started itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from readerhost.sim.stripe_emulator import StripeEmulator

# The simulated reader waits for `reader.present` (the benchmark plays the customer).
SIMULATED_READER = """
[reader.simulated]
present_after_s = -1
"""


def daemon_config(api_base: str | None = None, *, requests_per_second: float | None = None, extra: str = "") -> str:
    """A config for a benchmark: the waiting simulated reader, optionally an external emulator."""
    text = SIMULATED_READER
    stripe_lines = []
    if api_base is not None:
        stripe_lines.append(f'api_base = "{api_base}"')
    if requests_per_second is not None:
        stripe_lines.append(f"requests_per_second = {requests_per_second}")
    if stripe_lines:
        text += "\n[stripe]\n" + "\n".join(stripe_lines) + "\n"
    return text + extra


def daemon_env(workdir: Path) -> dict[str, str]:
    """No Stripe key, no inherited config, and every path the daemon uses under `workdir`."""
    drop = ("STRIPE_API_KEY", "READERHOST_CONFIG", "CREDENTIALS_DIRECTORY", "STATE_DIRECTORY", "NOTIFY_SOCKET")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(
        READERHOST_SOCKET=str(workdir / "api.sock"),
        XDG_STATE_HOME=str(workdir / "state"),
        XDG_RUNTIME_DIR=str(workdir / "run"),
    )
    return env


class DaemonEnded(RuntimeError):
    """readerhostd ended before it was ready: its exit status (negative: the signal that ended it)
    and everything it wrote."""

    def __init__(self, status: int, lines: list[str]) -> None:
        super().__init__(f"readerhostd ended before it was ready (status {status}): {lines[-20:]}")
        self.status = status
        self.lines = lines


class StderrLines:
    """The daemon's log, read to its end in a thread so that a full pipe never stalls it."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def drain(self, timeout: float = 10.0) -> list[str]:
        """Every line up to the end of the output (the process must have ended): `lines` then holds
        the whole log, for a reader that needs all of it (the reliability harness scans it)."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
        return self.lines

    def until(self, predicate: Callable[[str], bool], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(
                    f"readerhostd said nothing matching within {timeout} s: {self.lines[-20:]}"
                ) from None
            if line is None:
                raise RuntimeError(f"readerhostd ended before it was ready: {self.lines[-20:]}")
            self.lines.append(line)
            if predicate(line):
                return line


@dataclass
class RunningDaemon:
    process: subprocess.Popen[str]  # readerhostd, or the wrapper (strace) that started it
    workdir: Path
    log: StderrLines
    started_s: float  # from Popen to " ready on " in its log
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def socket_path(self) -> Path:
        return self.workdir / "api.sock"

    @property
    def store_path(self) -> Path:
        return self.workdir / "state" / "readerhost" / "readerhost.db"

    def daemon_pid(self) -> int:
        """readerhostd's own pid (a wrapper's only child, when it runs under one)."""
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children")
        for _ in range(100):
            try:
                found = children.read_text().split()
            except OSError:
                return pid
            if found:
                return int(found[0])
            time.sleep(0.01)
        return pid


@contextlib.contextmanager
def workdir(prefix: str = "rhb-") -> Iterator[Path]:
    """A short temporary folder (a Unix socket path must stay under 108 bytes), removed after."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def readerhostd(
    config_text: str = SIMULATED_READER,
    *,
    folder: Path | None = None,
    wrapper: Sequence[str] = (),
    timeout: float = 30.0,
) -> Iterator[RunningDaemon]:
    """readerhostd as a real process; yields once it logs that it is ready; SIGTERM at the end.

    `wrapper` is put in front of the command (e.g. strace); the SIGTERM then goes to readerhostd
    itself, so that the wrapper sees it end and finishes its own output.
    """
    with contextlib.ExitStack() as stack:
        base = folder if folder is not None else stack.enter_context(workdir())
        config = base / "readerhost.toml"
        config.write_text(config_text)
        command = [*wrapper, sys.executable, "-m", "readerhost.daemon.app", "--config", str(config)]
        started = time.perf_counter()
        process = subprocess.Popen(
            command, env=daemon_env(base), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
        )
        assert process.stderr is not None
        daemon = RunningDaemon(process, base, StderrLines(process.stderr), 0.0)
        try:
            try:
                daemon.log.until(lambda line: " ready on " in line, timeout)
            except RuntimeError:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=2)  # its output ended: so does the process, in a moment
                if process.returncode is None:
                    raise  # it still runs, not ready in time
                raise DaemonEnded(process.returncode, daemon.log.lines) from None
            daemon.started_s = time.perf_counter() - started
            yield daemon
        finally:
            stop(daemon)


def stop(daemon: RunningDaemon, timeout: float = 15.0) -> int | None:
    """SIGTERM to readerhostd (not its wrapper), then wait; SIGKILL if it hangs. The exit status."""
    if daemon.process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(daemon.daemon_pid(), signal.SIGTERM)
        try:
            daemon.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            daemon.process.kill()
            daemon.process.wait()
    return daemon.process.returncode


@contextlib.contextmanager
def stripe_emulator(*, rate_limit: float | None = None) -> Iterator[tuple[str, StripeEmulator]]:
    """An emulator served from this process (a thread), search reading after write: (URL, emulator)."""
    from readerhost.sim.stripe_emulator import running_emulator

    with running_emulator(rate_limit=rate_limit, search_lag_s=0) as served:
        yield served


class JsonLines:
    """A raw JSON-lines client of the POS socket: what any integrator would write."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.next_id = 0
        self.pending: list[dict[str, Any]] = []  # events received while waiting for an answer

    @classmethod
    async def connect(cls, path: Path, topics: Sequence[str] = ()) -> JsonLines:
        """Connected, greeted, and subscribed to `topics` when some are given."""
        reader, writer = await asyncio.open_unix_connection(str(path), limit=2**20)
        client = cls(reader, writer)
        hello = await client.receive()
        if hello.get("method") != "hello":
            raise RuntimeError(f"expected hello first, got {hello}")
        if topics:
            await client.call("events.subscribe", {"topics": list(topics)})
        return client

    async def receive(self, timeout: float = 30.0) -> dict[str, Any]:
        line = await asyncio.wait_for(self.reader.readline(), timeout)
        if not line:
            raise ConnectionError("readerhostd closed the connection")
        message: dict[str, Any] = json.loads(line)
        return message

    async def call(self, method: str, params: dict[str, Any] | None = None, timeout: float = 30.0) -> Any:
        """The result of one request; an error answer raises RuntimeError."""
        self.next_id += 1
        request: dict[str, Any] = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            request["params"] = params
        self.writer.write(json.dumps(request).encode() + b"\n")
        await self.writer.drain()
        while True:
            message = await self.receive(timeout)
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result")
            if message.get("method") == "event":
                self.pending.append(message["params"])

    async def event(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 30.0) -> dict[str, Any]:
        """The next event (its params) matching `predicate`; others before it are dropped."""
        while self.pending:
            kept = self.pending.pop(0)
            if predicate(kept):
                return kept
        deadline = time.monotonic() + timeout
        while True:
            message = await self.receive(max(0.0, deadline - time.monotonic()))
            if message.get("method") == "event" and predicate(message["params"]):
                params: dict[str, Any] = message["params"]
                return params

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


def is_state(payment_id: str, state: str) -> Callable[[dict[str, Any]], bool]:
    def matches(event: dict[str, Any]) -> bool:
        data = event.get("data") or {}
        return bool(
            event.get("type") == "payment.state" and data.get("payment_id") == payment_id and data.get("state") == state
        )

    return matches


async def pay(client: JsonLines, order_id: str, amount: int = 1250, card: str = "visa") -> str:
    """One whole payment: start, present `card` when the reader asks, authorised, capture, captured.

    `client` must be subscribed to `payment` and `reader`. Returns the payment id.
    """
    payment = await client.call("payment.start", {"order_id": order_id, "amount": amount, "currency": "usd"})
    payment_id: str = payment["payment_id"]
    await client.event(
        lambda e: e.get("type") == "reader.input_options" and (e.get("data") or {}).get("payment_id") == payment_id
    )
    await client.call("reader.present", {"card": card})
    await client.event(is_state(payment_id, "authorized"))
    await client.call("payment.capture", {"payment_id": payment_id})
    await client.event(is_state(payment_id, "captured"))
    return payment_id
