"""Idle: CPU time, context switches and wake-ups of a daemon doing nothing.

CPU time is utime + stime from /proc/PID/stat (clock ticks → ms); context switches are voluntary +
nonvoluntary from /proc/PID/task/*/status, summed over the threads. Wake-ups are counted with
`strace -f -c` over a second window of the same length (strace's own overhead stays out of the
CPU figures), as the calls to blocking waits (epoll_wait, select, poll, nanosleep, futex, ...).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .common import Result, table
from .startup import SIMULATED_ONLY, Daemon, external_config, external_emulator, running_daemon

KEY = "idle"
SETTLE_S = 3.0
WATCHDOG_USEC = 30_000_000  # pings every 15 s
# Blocking waits: each call that returns is one wake-up of a thread.
WAIT_SYSCALLS = (
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "poll",
    "ppoll",
    "select",
    "pselect6",
    "nanosleep",
    "clock_nanosleep",
    "futex",
)


def cpu_ms(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) * 1000 / os.sysconf("SC_CLK_TCK")


def context_switches(pid: int) -> int:
    total = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        with contextlib.suppress(FileNotFoundError):
            for line in status.read_text().splitlines():
                if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                    total += int(line.split()[1])
    return total


def threads(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/task").iterdir()))


def _strace(pid: int, window_s: float) -> str:
    """The summary of `strace -f -c` attached to pid for window_s seconds."""
    with tempfile.TemporaryDirectory(prefix="readerhost-strace-") as name:
        out = Path(name) / "summary.txt"
        process = subprocess.Popen(
            ["strace", "-f", "-c", "-o", str(out), "-p", str(pid)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(window_s)
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return out.read_text() if out.exists() else ""


def _wait_calls(summary: str) -> tuple[int, dict[str, int]]:
    """The number of blocking-wait calls in an `strace -c` summary, and the calls of each syscall."""
    calls: dict[str, int] = {}
    for line in summary.splitlines():
        parts = line.split()
        # % time, seconds, usecs/call, calls, [errors], syscall
        if len(parts) >= 5 and parts[0].replace(".", "", 1).isdigit() and parts[-1] != "total":
            calls[parts[-1]] = int(parts[3])
    return sum(calls.get(name, 0) for name in WAIT_SYSCALLS), calls


@dataclass
class Idle:
    cpu_ms: float
    switches: int
    threads: int
    watchdog_pings: int
    wakeups: int | None
    busiest: str


def _measure(daemon: Daemon, window_s: float, use_strace: bool) -> Idle:
    time.sleep(SETTLE_S)
    pid = daemon.pid
    cpu0, switches0 = cpu_ms(pid), context_switches(pid)
    pings0 = daemon.notify.count("WATCHDOG=1") if daemon.notify else 0
    time.sleep(window_s)
    cpu1, switches1 = cpu_ms(pid), context_switches(pid)
    pings = (daemon.notify.count("WATCHDOG=1") if daemon.notify else 0) - pings0
    wakeups: int | None = None
    busiest = ""
    if use_strace:
        wakeups, calls = _wait_calls(_strace(pid, window_s))
        top = sorted(calls.items(), key=lambda item: -item[1])[:3]
        busiest = ", ".join(f"{name} {count}" for name, count in top)
    return Idle(cpu1 - cpu0, switches1 - switches0, threads(pid), pings, wakeups, busiest)


def run(quick: bool) -> Result:
    window_s = 5.0 if quick else 60.0
    use_strace = shutil.which("strace") is not None
    per_minute = 60.0 / window_s
    watchdog_env = {"WATCHDOG_USEC": str(WATCHDOG_USEC)}
    rows: list[list[str]] = []
    results: dict[str, Idle] = {}
    with external_emulator() as (api_base, _):
        variants = [
            ("built-in emulator (emulator mode), no watchdog", SIMULATED_ONLY, None),
            ("built-in emulator (emulator mode), watchdog 30 s", SIMULATED_ONLY, watchdog_env),
            ("external emulator (as live), no watchdog", external_config(api_base), None),
            ("external emulator (as live), watchdog 30 s", external_config(api_base), watchdog_env),
        ]
        with contextlib.ExitStack() as stack:
            # All four idle at once: they are idle, and it keeps the full run at two windows.
            daemons = [
                (name, stack.enter_context(running_daemon(config, env, notify=env is not None)))
                for name, config, env in variants
            ]
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(len(daemons)) as pool:
                measured = list(pool.map(lambda item: _measure(item[1], window_s, use_strace), daemons))
            for (name, _), idle in zip(daemons, measured, strict=True):
                results[name] = idle
    for name, idle in results.items():
        row = [
            name,
            f"{idle.threads}",
            f"{idle.cpu_ms * per_minute:.0f} ms",
            f"{idle.switches * per_minute:.0f}",
            f"{idle.watchdog_pings * per_minute:.0f}",
        ]
        if use_strace:
            row.append(f"{(idle.wakeups or 0) * per_minute:.0f} ({idle.busiest})")
        rows.append(row)
    header = [
        "daemon (simulated reader, idle)",
        "threads",
        "CPU / min",
        "context switches / min",
        "watchdog pings / min",
    ]
    if use_strace:
        header.append("wake-ups / min (top syscalls in the window)")

    live = results["external emulator (as live), no watchdog"]
    live_wd = results["external emulator (as live), watchdog 30 s"]
    builtin = results["built-in emulator (emulator mode), no watchdog"]
    live_rate = live.switches * per_minute
    met = live_rate <= 10 and live_wd.switches * per_minute <= 10 + 4 * 3
    notes = [
        f"Each daemon idles {SETTLE_S:g} s after READY, then is measured over {window_s:g} s (scaled to per "
        "minute); the four run side by side against one external `readerhost-stripe-emulator`. Context switches "
        "are summed over all the daemon's threads. The watchdog runs use WATCHDOG_USEC=30000000 and a "
        "NOTIFY_SOCKET (a ping every 15 s, i.e. 4 a minute).",
        "Target: no periodic wake-ups beyond the watchdog (and a reader keepalive, which the simulated reader "
        f"does not have). Live-like (external emulator): {live_rate:.0f} context switches a minute without the "
        f"watchdog, {live_wd.switches * per_minute:.0f} with it — "
        + ("met." if met else "not met: something wakes up periodically besides the watchdog."),
        f"Emulator mode: the built-in emulator's HTTP server thread (serve_forever with poll_interval 0.05 in "
        f"daemon/app.py) wakes 20 times a second; measured {builtin.switches * per_minute:.0f} context switches "
        f"and {builtin.cpu_ms * per_minute:.0f} ms CPU a minute. Only emulator mode has it; a live kiosk does not.",
    ]
    if use_strace:
        notes.append(
            f"Wake-ups are the blocking-wait calls ({', '.join(WAIT_SYSCALLS)}) counted by `strace -f -c` "
            f"attached for a second {window_s:g} s window, after the CPU and context-switch window."
        )
    else:
        notes.append("strace is not installed here, so wake-ups were not counted; context switches stand in for them.")
    return Result(KEY, "Idle cost", table(header, rows), tuple(notes), met)
