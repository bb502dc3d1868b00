"""The socket fuzzer: hypothesis-generated and mutated frames on hostile connections, while a
well-behaved POS completes payments on its own connection.

Half the frames come from hypothesis strategies over the protocol's shape (methods, parameter
names, any JSON, raw bytes), half are valid requests mutated byte by byte (flips, cuts,
insertions, duplications). Now and then a frame over the 64 KiB limit. Every answer must be
well-formed JSON-RPC; none may be an internal error (-32603: the daemon's log then holds a
traceback); the only close allowed is the one after FRAME_TOO_LARGE. After every batch a
`status.get` on the same connection proves the daemon still answers it in order.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reliability.cashier import Cashier, Order, sell_safely
from reliability.invariants import Violation
from reliability.world import World, world

METHODS = (
    "status.get", "payment.start", "payment.get", "payment.list", "payment.confirm", "payment.collect_again",
    "payment.capture", "payment.cancel", "reconcile.run", "events.subscribe", "display.show", "reader.present",
)  # fmt: skip
PARAMS = (
    "order_id", "amount", "currency", "capture", "confirm", "offline", "metadata", "description", "payment_id",
    "states", "since", "until", "limit", "reason", "topics", "lines", "ttl_s", "card", "dry_run",
    "completed_order_ids", "payment_intent_client_secret",
)  # fmt: skip
VALID = (
    {"jsonrpc": "2.0", "id": 1, "method": "status.get"},
    {"jsonrpc": "2.0", "id": 2, "method": "payment.get", "params": {"payment_id": "pay_x"}},
    {"jsonrpc": "2.0", "id": 3, "method": "payment.list", "params": {"states": ["captured"], "limit": 5}},
    {"jsonrpc": "2.0", "id": 4, "method": "payment.start", "params": {"order_id": "F", "amount": -5}},
    {"jsonrpc": "2.0", "id": 5, "method": "payment.capture", "params": {"payment_id": "pay_x", "amount": 100}},
    {"jsonrpc": "2.0", "id": 6, "method": "events.subscribe", "params": {"topics": ["payment", "queue"]}},
    {"jsonrpc": "2.0", "id": 7, "method": "display.show", "params": {"lines": ["a", "b"], "ttl_s": 1}},
    {"jsonrpc": "2.0", "id": 8, "method": "reconcile.run", "params": {"since": "2026-01-01T00:00:00Z"}},
    {"jsonrpc": "2.0", "id": 9, "method": "payment.cancel", "params": {"payment_id": "pay_x", "reason": "duplicate"}},
)  # fmt: skip
_KIND = re.compile(r"/(pi|re|tmr|ch|pm|tml|cs)_[A-Za-z0-9]+")  # an object's id in a request's path
OVERSIZED_EVERY = 5000  # one frame in so many is over the 64 KiB limit


def hypothesis_frames(count: int, seed: int) -> list[bytes]:
    """`count` frames drawn by hypothesis from strategies over the protocol's shape."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis import strategies as st

    scalars = (
        st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
        | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30)
        | st.sampled_from(["usd", "eur", "2.0", "pay_x", "visa", "manual", "automatic", "", "\x00", "\u202e"])
    )  # fmt: skip
    values = st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
        max_leaves=10,
    )
    params = st.dictionaries(st.sampled_from(PARAMS) | st.text(max_size=8), values, max_size=5)
    request = st.fixed_dictionaries(
        {},
        optional={
            "jsonrpc": st.just("2.0") | values,
            "id": st.integers() | st.text(max_size=5) | values,
            "method": st.sampled_from(METHODS) | st.text(max_size=20),
            "params": params | values,
        },
    )
    frame = (
        request.map(lambda r: json.dumps(r).encode())
        | values.map(lambda v: json.dumps(v).encode())
        | st.binary(max_size=120)
        | st.text(max_size=60).map(lambda s: s.encode("utf-8", "surrogatepass"))
    )
    frames: list[bytes] = []

    @hypothesis_seed(seed)
    @settings(
        max_examples=count, database=None, deadline=None, phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    @given(frame)
    def collect(data: bytes) -> None:
        frames.append(data.replace(b"\n", b" ") + b"\n")

    collect()
    return frames


def mutated_frames(count: int, rng: random.Random) -> list[bytes]:
    """`count` valid requests, each damaged by a few random byte edits."""
    frames = []
    for _ in range(count):
        data = bytearray(json.dumps(rng.choice(VALID)).encode())
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(data))
            edit = rng.randrange(5)
            if edit == 0:
                data[at] = rng.randrange(256)
            elif edit == 1:
                del data[at:]
                data += b"x" if not data else b""
            elif edit == 2:
                data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
            elif edit == 3:
                data[at:at] = data[at : at + rng.randint(1, 20)]
            else:
                data[at:at] = rng.choice((b"{", b"}", b"[", b'"', b"\\", b"\xff", b"\xc3", b"\x00", b"1e999"))
        frames.append(bytes(data).replace(b"\n", b" ") + b"\n")
    return frames


@dataclass(frozen=True)
class FuzzProgress:
    """How a long run is going, every so many frames: enough to see it alive, and whether it slows or grows."""

    frames: int  # sent so far
    seconds: float  # since the run started
    frames_per_s: float  # over the frames since the last progress
    daemon_rss_kb: int  # readerhostd's resident set now (0 if it cannot be read)
    harness_rss_kb: int  # this process's (the emulator's and the clients')
    daemon_cpu_s: float  # CPU time readerhostd used since the last progress (whatever else loads the machine)
    harness_cpu_s: float  # and this process's (hypothesis drawing frames, the emulator, the clients)
    stripe_requests: Counter[str]  # served by the emulator since the last progress, by "METHOD /path"
    payments_completed: int

    def line(self) -> str:
        by_kind = Counter(_KIND.sub("/{id}", path) for path in self.stripe_requests.elements())
        served = ", ".join(f"{path} {n}" for path, n in by_kind.most_common())
        return (
            f"fuzz: {self.frames} frames, {self.seconds:.0f} s, {self.frames_per_s:.0f} frames/s, "
            f"RSS daemon {self.daemon_rss_kb / 1024:.1f} MB harness {self.harness_rss_kb / 1024:.0f} MB, "
            f"CPU s daemon {self.daemon_cpu_s:.1f} harness {self.harness_cpu_s:.1f}, "
            f"{self.payments_completed} payments, "
            f"Stripe requests {sum(self.stripe_requests.values())} ({served or 'none'})"
        )


@dataclass
class FuzzResult:
    seed: int
    frames: int = 0
    answers: Counter[str] = field(default_factory=Counter)  # by error reason (or "result")
    closes: int = 0
    payments_completed: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.problems or self.violations)


async def _send_batch(w: World, frames: list[bytes], result: FuzzResult) -> None:
    """One hostile connection: the frames written as fast as the daemon takes them, answers read
    concurrently, then a status.get whose answer must come back."""
    reader, writer = await asyncio.open_unix_connection(str(w.socket_path), limit=2**20)
    closed_for_size = False

    async def read_all() -> None:
        nonlocal closed_for_size
        while line := await reader.readline():
            message: Any = json.loads(line)  # a malformed answer fails the run here
            if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
                result.problems.append(f"not a JSON-RPC message: {line[:200]!r}")
                continue
            if message.get("id") == "fuzz-end":
                return
            error = message.get("error")
            if error is None:
                result.answers["result" if "result" in message else str(message.get("method"))] += 1
                continue
            reason = (error.get("data") or {}).get("reason", str(error.get("code")))
            result.answers[reason] += 1
            if error.get("code") == -32603:
                result.problems.append(f"internal error: {error}")
            if reason == "FRAME_TOO_LARGE":
                closed_for_size = True

    reading = asyncio.create_task(read_all())
    try:
        for frame in frames:
            writer.write(frame)
            if writer.transport.get_write_buffer_size() > 2**16:
                await writer.drain()
        writer.write(b'{"jsonrpc":"2.0","id":"fuzz-end","method":"status.get"}\n')
        await writer.drain()
    except ConnectionError:
        pass  # closed after an oversized frame: the reader tells
    try:
        await asyncio.wait_for(reading, 60.0)
    except TimeoutError:
        result.problems.append("no answer to the status.get after a batch within 60 s")
    if reading.done() and not reading.cancelled() and reading.exception() is None and not closed_for_size:
        pass
    elif closed_for_size:
        result.closes += 1
    writer.close()


def _cpu_s(pid: int) -> float:
    """CPU time (user and system) the process has used, or 0.0 if it cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_kb(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)


class _Progress:
    """Tells `report` how the run goes every `every` frames (at the end of the batch that passes them)."""

    def __init__(self, w: World, result: FuzzResult, every: int, report: Callable[[FuzzProgress], None]) -> None:
        self._world, self._result, self._every, self._report = w, result, every, report
        self._started = self._last_at = time.monotonic()
        self._last_frames = 0
        self._served = w.emulator.served()
        self._cpu = self._cpu_now()

    def _cpu_now(self) -> tuple[float, float]:
        daemon = self._world.daemon
        return (_cpu_s(daemon.daemon_pid()) if daemon is not None else 0.0), _cpu_s(os.getpid())

    def after(self, sent: int) -> None:
        if sent - self._last_frames < self._every:
            return
        now = time.monotonic()
        served = self._world.emulator.served()
        cpu = self._cpu_now()
        daemon = self._world.daemon
        self._report(
            FuzzProgress(
                frames=sent,
                seconds=now - self._started,
                frames_per_s=(sent - self._last_frames) / max(now - self._last_at, 1e-9),
                daemon_rss_kb=_rss_kb(daemon.daemon_pid()) if daemon is not None else 0,
                harness_rss_kb=_rss_kb(os.getpid()),
                daemon_cpu_s=cpu[0] - self._cpu[0],
                harness_cpu_s=cpu[1] - self._cpu[1],
                stripe_requests=served - self._served,
                payments_completed=self._result.payments_completed,
            )
        )
        self._last_at, self._last_frames, self._served, self._cpu = now, sent, served, cpu


async def _fuzz(
    w: World, seed: int, frames: int, batch: int, progress: Callable[[FuzzProgress], None] | None, every: int
) -> FuzzResult:
    started = time.monotonic()
    rng = random.Random(seed)
    result = FuzzResult(seed)
    stop = asyncio.Event()

    async def well_behaved() -> None:
        cashier = Cashier(w, random.Random(seed + 1), patience_s=60.0)
        number = 0
        while not stop.is_set():
            number += 1
            order = Order(order_id=f"W-{number:05d}", amount=1000 + number, card="visa")
            if await sell_safely(cashier, order) == "captured":
                result.payments_completed += 1
        await cashier.hang_up()

    good = asyncio.create_task(well_behaved())
    watch = _Progress(w, result, every, progress) if progress is not None else None
    sent = 0
    round_number = 0
    while sent < frames:
        size = min(batch, frames - sent)
        round_number += 1
        made = await asyncio.to_thread(hypothesis_frames, size // 2, seed * 1000 + round_number)
        made += mutated_frames(size - len(made), rng)
        rng.shuffle(made)
        if round_number % max(1, OVERSIZED_EVERY // batch) == 0:
            made.insert(rng.randrange(len(made)), b'{"jsonrpc":"2.0","id":1,"method":"' + b"x" * 70_000 + b'"}\n')
        await _send_batch(w, made, result)
        sent += len(made)
        if watch is not None:
            watch.after(sent)
    result.frames = sent
    stop.set()
    await asyncio.wait_for(good, 120.0)
    await w.until_settled(60.0)
    result.violations = w.violations(settled=True)
    result.seconds = time.monotonic() - started
    return result


def run_fuzz(
    folder: Path,
    *,
    seed: int,
    frames: int,
    batch: int = 2000,
    progress: Callable[[FuzzProgress], None] | None = None,
    progress_every: int = 10_000,
) -> FuzzResult:
    """`progress`: told how the run goes every `progress_every` frames."""
    with world(folder) as w:
        w.start()
        try:
            return asyncio.run(_fuzz(w, seed, frames, batch, progress, progress_every))
        finally:
            w.stop()
