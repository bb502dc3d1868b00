"""Startup: from exec to READY=1 over sd_notify, against the floor of `python -c "import stripe"`.

Also holds the small helpers the memory, idle and reader-link benchmarks share: a real readerhostd
process with a temporary configuration and every path under a temporary folder (as
tests/support/daemon.py does), a notify socket, an external Stripe emulator and the reader link
emulator on a pty.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from .common import Result, spread, table

KEY = "startup"
READY_TIMEOUT_S = 60.0

# The simulated reader waits for `reader.present`, as in the tests.
SIMULATED_ONLY = """
[reader.simulated]
present_after_s = -1
"""


def external_config(api_base: str, extra: str = "", *, reader: str = SIMULATED_ONLY) -> str:
    """A reader (the simulated one unless told) talking to an emulator outside the daemon (as live)."""
    return f'{reader}\n[stripe]\napi_base = "{api_base}"\n{extra}'


def serial_reader(device: Path) -> str:
    """The `[reader]` tables of a serial (reader link) reader on `device`."""
    return f'[reader]\ndriver = "serial"\n\n[reader.serial]\ndevice = "{device}"\n'


def daemon_env(folder: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """No Stripe key, no systemd variables from outside, every path under `folder`."""
    dropped = {"STRIPE_API_KEY", "READERHOST_CONFIG", "CREDENTIALS_DIRECTORY", "NOTIFY_SOCKET", "WATCHDOG_USEC"}
    dropped |= {"WATCHDOG_PID", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"}
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update(
        READERHOST_SOCKET=str(folder / "api.sock"),
        XDG_STATE_HOME=str(folder / "state"),
        XDG_RUNTIME_DIR=str(folder / "run"),
    )
    if extra:
        env.update(extra)
    return env


class NotifySocket:
    """An AF_UNIX datagram socket standing in for systemd's; keeps every message it receives."""

    def __init__(self, folder: Path) -> None:
        self.path = str(folder / "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages: list[tuple[float, str]] = []
        self._draining = False

    def wait_for(self, line: str, timeout: float) -> float:
        """The monotonic time a message holding `line` arrived; TimeoutError when none comes in time."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {line} within {timeout} s")
            self.sock.settimeout(remaining)
            data = self.sock.recv(65536)
            at = time.monotonic()
            text = data.decode(errors="replace")
            self.messages.append((at, text))
            if line in text.splitlines():
                return at

    def drain(self) -> None:
        """Keep reading in a thread from now on, so the daemon's sends never wait on a full buffer."""
        self._draining = True

        def pump() -> None:
            self.sock.settimeout(None)
            with contextlib.suppress(OSError):
                while True:
                    data = self.sock.recv(65536)
                    if not data:
                        return
                    self.messages.append((time.monotonic(), data.decode(errors="replace")))

        threading.Thread(target=pump, daemon=True).start()

    def count(self, line: str) -> int:
        return sum(1 for _, text in self.messages if line in text.splitlines())

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


class _Lines:
    """A process's stderr read to its end in a thread (a full pipe would stall the process)."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self.ready = threading.Event()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))
            if " ready on " in line:
                self.ready.set()
        self.ready.set()


@dataclass
class Daemon:
    process: subprocess.Popen[str]
    socket_path: Path
    log: list[str]
    ready_s: float  # from just before Popen to READY=1 (or the "ready on" line without a notify socket)
    notify: NotifySocket | None = None
    folder: Path = field(default_factory=Path)

    @property
    def pid(self) -> int:
        return self.process.pid


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def running_daemon(
    config_text: str = SIMULATED_ONLY,
    extra_env: Mapping[str, str] | None = None,
    *,
    notify: bool = False,
    python_flags: Sequence[str] = (),
) -> Iterator[Daemon]:
    """readerhostd as a real process (stdout to /dev/null); yields once it is ready. Stopped with SIGTERM."""
    with tempfile.TemporaryDirectory(prefix="readerhost-bench-") as name:
        folder = Path(name)
        config = folder / "readerhost.toml"
        config.write_text(config_text)
        env = daemon_env(folder, extra_env)
        notifier = NotifySocket(folder) if notify else None
        if notifier is not None:
            env["NOTIFY_SOCKET"] = notifier.path
        command = [sys.executable, *python_flags, "-m", "readerhost.daemon.app", "--config", str(config)]
        started = time.monotonic()
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            assert process.stderr is not None
            lines = _Lines(process.stderr)
            if notifier is not None:
                ready_at = notifier.wait_for("READY=1", READY_TIMEOUT_S)
                notifier.drain()
                lines.ready.wait(READY_TIMEOUT_S)
            else:
                if not lines.ready.wait(READY_TIMEOUT_S) or process.poll() is not None:
                    raise RuntimeError("readerhostd did not get ready: " + "\n".join(lines.lines[-20:]))
                ready_at = time.monotonic()
            yield Daemon(process, Path(env["READERHOST_SOCKET"]), lines.lines, ready_at - started, notifier, folder)
        finally:
            _stop(process)
            if notifier is not None:
                notifier.close()


@contextlib.contextmanager
def external_emulator() -> Iterator[tuple[str, int]]:
    """`readerhost-stripe-emulator` as a separate process; yields (its URL, its pid)."""
    command = [sys.executable, "-m", "readerhost.sim.stripe_emulator.cli", "--port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"listening on (\S+)", line)
        if match is None:
            raise RuntimeError(f"the emulator did not start: {line!r}")
        yield match.group(1), process.pid
    finally:
        _stop(process)


@contextlib.contextmanager
def reader_emulator(link: Path, *flags: str, timeout: float = 10.0) -> Iterator[int]:
    """`readerhost-reader-emulator --link LINK FLAGS` as a separate process; yields its pid once LINK is there.

    Its stdout (a JSON line per event) goes to a file beside LINK: a pipe nobody reads would fill
    and stall it, and a thread reading it would share the measured process's CPU.
    """
    output = link.with_name(link.name + ".out")
    command = [sys.executable, "-m", "readerhost.sim.reader_device.cli", "--link", str(link), *flags]
    with output.open("w") as out:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + timeout
        while f"link: {link}" not in output.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the reader emulator did not start: {output.read_text()[-500:]!r}")
            time.sleep(0.02)
        yield process.pid
    finally:
        _stop(process)


def _time_import_stripe() -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "import stripe"], check=True)
    return time.monotonic() - started


def _time_daemon(config: str = SIMULATED_ONLY, env: Mapping[str, str] | None = None) -> float:
    with running_daemon(config, env, notify=True) as daemon:
        return daemon.ready_s


# As on a kiosk: a serial reader, the panel and the buttons, Stripe outside the daemon (bench/memory.py's).
KIOSK_UI = '\n[display]\nkind = "terminal"\n\n[gpio]\nenabled = true\n'
KIOSK_ENV = {"GPIOZERO_PIN_FACTORY": "mock"}
TARGET_MS = 60.0  # the kiosk daemon's start may exceed the floor by this much (issue 21)


def run(quick: bool) -> Result:
    rounds = 2 if quick else 10
    daemon_s: list[float] = []
    kiosk_s: list[float] = []
    floor_s: list[float] = []
    with (
        external_emulator() as (api_base, _),
        tempfile.TemporaryDirectory(prefix="readerhost-bench-") as folder,
        reader_emulator(Path(folder) / "reader-tty", "--card", "visa"),
    ):
        kiosk = external_config(api_base, KIOSK_UI, reader=serial_reader(Path(folder) / "reader-tty"))
        _time_import_stripe()  # warm the page cache and the bytecode caches once, unmeasured
        _time_daemon()
        _time_daemon(kiosk, KIOSK_ENV)
        for _ in range(rounds):
            daemon_s.append(_time_daemon())
            kiosk_s.append(_time_daemon(kiosk, KIOSK_ENV))
            floor_s.append(_time_import_stripe())
    ms = [s * 1000 for s in daemon_s]
    kiosk_ms = [s * 1000 for s in kiosk_s]
    floor_ms = [s * 1000 for s in floor_s]
    difference = [d - f for d, f in zip(ms, floor_ms, strict=True)]
    kiosk_difference = [d - f for d, f in zip(kiosk_ms, floor_ms, strict=True)]
    met = statistics.median(kiosk_difference) <= TARGET_MS
    rows = [
        ["readerhostd: exec → READY=1 (simulated reader, built-in emulator)", spread(ms, " ms", 0)],
        ["readerhostd: exec → READY=1 (serial reader, panel, GPIO, external emulator: as on a kiosk)",
         spread(kiosk_ms, " ms", 0)],
        ['floor: `python -c "import stripe"` (exec → exit)', spread(floor_ms, " ms", 0)],
        ["difference, built-in emulator (paired per round)", spread(difference, " ms", 0)],
        ["difference, as on a kiosk (paired per round)", spread(kiosk_difference, " ms", 0)],
    ]  # fmt: skip
    notes = (
        f"{rounds} rounds, alternating the two daemons and the floor, after one unmeasured warm-up of each; median "
        "(min-max). A daemon is timed from just before Popen to the receipt of READY=1 on an AF_UNIX datagram socket "
        "passed as NOTIFY_SOCKET; the floor from just before exec to the process's exit. The kiosk daemon's reader "
        "is `readerhost-reader-emulator` on a pty, its panel the `terminal` one, its pins gpiozero's mock pins.",
        "The difference is the daemon's own start: its modules, the configuration, opening the SQLite store, "
        "starting the built-in emulator's HTTP server (emulator mode only), binding the socket and recovering "
        "payments. What READY=1 does not wait for comes after it (daemon/app.py): the Stripe client, built in "
        "a thread (importing stripe and requests: the floor's own work), and the panel and the pins (Pillow, "
        "gpiozero and its pin factory); `readerhostd` serves the socket meanwhile. Before issue 21 they came "
        "before READY=1, and the kiosk daemon's difference was 376 ms.",
        f"Target (issue 21): the kiosk daemon within {TARGET_MS:g} ms of the floor — "
        f"{'met' if met else 'not met'} ({statistics.median(kiosk_difference):.0f} ms).",
    )
    return Result(KEY, "Startup time", table(["what", "time"], rows), notes, met)
