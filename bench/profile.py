"""Where readerhostd's own time goes in a payment: py-spy on the daemon while it takes payments.

A real readerhostd (pacing lifted, `[stripe] requests_per_second = 1000`, the emulator served from
this process so that its work is not sampled) makes N whole payments through its socket, as the
payment-overhead benchmark makes them. Two py-spy recorders attach to it at once with
`--nonblocking` (the daemon is never paused; every thread is sampled, the outbox's sending threads
too, idle ones not): one writes the flame graph (SVG, under docs/performance/), the other the raw
stacks, from which the table is counted. A sample is 1/RATE s of one thread's CPU: divided by the
payments, the milliseconds per payment each function costs, on its own (self) and with what it calls
(total). py-spy attaches to a process of the same user (root here, or with CAP_SYS_PTRACE); where it
is not installed or cannot attach, this section says so and measures nothing (cProfile would see
only the event loop's thread, not the outbox's).
"""

from __future__ import annotations

import asyncio
import collections
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import Result, table
from bench.support import JsonLines, daemon_config, pay, readerhostd, stripe_emulator, workdir

KEY = "profile"
RATE = 250  # samples a second per thread
SVG = "docs/performance/payment-profile.svg"
TOP = 14
# `name (path:line)` as py-spy names a frame; the line is dropped to count a function once.
_FRAME = re.compile(r"^(?P<name>.*) \((?P<path>[^()]*?)(?::\d+)?\)$")


@dataclass(frozen=True)
class Profile:
    stacks: dict[tuple[str, ...], int]  # outermost frame first -> samples
    payments: int
    seconds: float
    svg: bytes


def function_of(frame: str) -> str:
    """`handle (readerhost/daemon/api/server.py:120)` -> `handle (daemon/api/server.py)`: a function
    named once, whatever line it was on, by its path from the package (or the library) it is in."""
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    path = match["path"]
    for marker in ("site-packages/", "/lib/python3", "/work/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    path = re.sub(r"^[^/]*/(?=(daemon|drivers|sim)/)", "", path)  # the worktree's folder
    path = re.sub(r"^\.\d+/", "", path)  # python3.11/... -> the stdlib's own path
    return f"{match['name']} ({path})"


def parse_raw(text: str) -> dict[tuple[str, ...], int]:
    """py-spy's `--format raw` (folded stacks: `outer;...;inner COUNT`) -> stacks and their samples."""
    stacks: dict[tuple[str, ...], int] = collections.Counter()
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[tuple(function_of(frame) for frame in stack.split(";"))] += int(count)
    return stacks


def costs(stacks: dict[tuple[str, ...], int]) -> tuple[collections.Counter[str], collections.Counter[str]]:
    """Samples per function: in it (self, the innermost frame) and under it (total, once per sample)."""
    own: collections.Counter[str] = collections.Counter()
    under: collections.Counter[str] = collections.Counter()
    for stack, count in stacks.items():
        own[stack[-1]] += count
        for function in set(stack):
            under[function] += count
    return own, under


# What a sample was spent on: its innermost frame that one of these names (checked in this order at
# each frame, from the innermost outward); a sample none names is the rest.
PARTS = (
    (
        "the Stripe request in stripe-python and requests (the floor does the same work)",
        ("stripe/", "requests/", "urllib3/", "http/client.py", "ssl.py", "socket.py", "email/"),
    ),
    (
        "the gateway: Stripe's answers to outcomes (daemon/payments/gateway.py, operations.py)",
        ("daemon/payments/gateway.py", "daemon/payments/operations.py"),
    ),
    ("the store: SQLite statements and rows to objects (daemon/payments/store.py)", ("daemon/payments/store.py",)),
    ("logging (the daemon's journal lines)", ("logging/",)),
    ("the POS socket: JSON-RPC lines in and out (daemon/api/)", ("daemon/api/",)),
    ("events to listeners (daemon/payments/events.py)", ("daemon/payments/events.py",)),
    (
        "the hop to the outbox's sending thread and back",
        ("concurrent/futures/", "threading.py", "_write_to_self", "call_soon_threadsafe", "to_thread"),
    ),
)
REST = "the rest: the event loop, the payment service, the worker, the reader"


def part_of(stack: tuple[str, ...]) -> str:
    for frame in reversed(stack):
        for name, markers in PARTS:
            if any(marker in frame for marker in markers):
                return name
    return REST


def record(quick: bool) -> Profile | None:
    beside = Path(sys.executable).parent / "py-spy"  # the virtualenv's, not on PATH when run as .venv/bin/python
    spy = str(beside) if beside.exists() else shutil.which("py-spy")
    if spy is None:
        return None
    n = 20 if quick else 300
    with stripe_emulator() as (url, _emulator), workdir("rhp-") as folder:
        with readerhostd(daemon_config(url, requests_per_second=1000)) as daemon:
            loop = asyncio.new_event_loop()
            try:
                client = loop.run_until_complete(JsonLines.connect(daemon.socket_path, ["payment", "reader"]))
                for i in range(3):  # warm-up: imports, connections, SQLite pages
                    loop.run_until_complete(pay(client, f"W-{i}"))
                pid = str(daemon.daemon_pid())
                common = [spy, "record", "--pid", pid, "--nonblocking", "--gil", "--rate", str(RATE)]
                recorders = [
                    subprocess.Popen(
                        [*common, "--format", kind, "-o", str(folder / name)],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.PIPE,
                        text=True,
                    )
                    for kind, name in (("raw", "raw.txt"), ("flamegraph", "profile.svg"))
                ]
                time.sleep(1.0)  # py-spy reads the interpreter's layout before its first sample
                started = time.perf_counter()
                for i in range(n):
                    loop.run_until_complete(pay(client, f"S-{i}"))
                seconds = time.perf_counter() - started
                for recorder in recorders:
                    recorder.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
                for recorder in recorders:
                    _, errors = recorder.communicate(timeout=60)
                    if recorder.returncode not in (0, -signal.SIGINT, 130):
                        raise RuntimeError(f"py-spy failed ({recorder.returncode}): {errors.strip()[-300:]}")
                loop.run_until_complete(client.close())
            finally:
                loop.close()
        raw = (folder / "raw.txt").read_text(errors="replace")  # a frame py-spy misread may not be UTF-8
        svg = (folder / "profile.svg").read_bytes()
    return Profile(parse_raw(raw), n, seconds, svg)


def hop_cpu_ms(count: int = 2000) -> float:
    """The CPU one hop to a thread and back costs alone (asyncio.to_thread of a function that
    returns at once), measured in this process: the floor of the outbox's hop per request."""

    async def hops() -> float:
        for _ in range(50):
            await asyncio.to_thread(int)
        started = time.process_time()
        for _ in range(count):
            await asyncio.to_thread(int)
        return (time.process_time() - started) / count * 1000

    return asyncio.run(hops())


def run(quick: bool) -> Result:
    profile = record(quick)
    hop_ms = hop_cpu_ms()
    header = ["what the daemon's CPU did", "ms per payment", "share"]
    if profile is None:
        return Result(
            key=KEY,
            title="Profile of a payment",
            table=table(header, []),
            notes=("py-spy is not installed here (`pip install py-spy`, in the `test` extra): nothing was sampled.",),
        )
    own, under = costs(profile.stacks)
    samples = sum(profile.stacks.values())
    per_payment = 1000 / RATE / profile.payments  # ms of the GIL per sample, per payment
    parts: collections.Counter[str] = collections.Counter()
    for stack, count in profile.stacks.items():
        parts[part_of(stack)] += count
    rows = [[name, f"{count * per_payment:.2f}", f"{count / samples:.0%}"] for name, count in parts.most_common()]
    rows.append(["**all**", f"**{samples * per_payment:.2f}**", "100%"])

    def row(function: str) -> list[str]:
        return [
            f"`{function}`",
            f"{under[function] * per_payment:.2f}",
            f"{own[function] * per_payment:.2f}",
        ]

    ours = [f for f, _ in under.most_common() if _is_readerhost(f)][:TOP]
    hot = [f for f, _ in own.most_common(TOP)]
    functions = ["function", "total ms per payment", "self ms per payment"]
    notes = (
        f"{profile.payments} payments (start → authorised → captured) through a readerhostd without pacing, "
        f"{profile.seconds / profile.payments * 1000:.1f} ms each end to end, sampled by py-spy at {RATE} Hz "
        f"(`--gil`: the thread holding Python's lock, whichever it is; time in a system call that lets go "
        f"of it, such as a sync or a socket wait, is not counted): {samples} samples. The table gives each "
        "sample to the innermost frame that names a part. The flame graph of the same run: "
        "[payment-profile.svg](performance/payment-profile.svg) (open it in a browser: each frame says "
        "its samples).",
        "readerhost's own functions, by the time spent in them and in what they call (total) and in "
        "themselves (self):\n\n" + table(functions, [row(f) for f in ours]),
        "The functions, anyone's, that spent the most time in themselves:\n\n"
        + table(functions, [row(f) for f in hot]),
        f"The hop to the sending thread: one alone costs {hop_ms:.3f} ms of CPU here (asyncio.to_thread "
        "of a function that returns at once), and a payment makes three. What py-spy puts in "
        "`concurrent.futures`' `submit` beyond that is not explained yet: the event loop holds "
        "Python's lock there while the sending thread wakes, and on two busy cores that may be "
        "waiting rather than work.",
    )
    return Result(
        key=KEY,
        title="Profile of a payment",
        table=table(header, rows),
        notes=notes,
        files=((SVG, profile.svg),),
    )


def _is_readerhost(function: str) -> bool:
    return ("(daemon/" in function or "(drivers/" in function) and "(daemon/app.py)" not in function
