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
import random
import time
from collections import Counter
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


async def _fuzz(w: World, seed: int, frames: int, batch: int) -> FuzzResult:
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
    result.frames = sent
    stop.set()
    await asyncio.wait_for(good, 120.0)
    await w.until_settled(60.0)
    result.violations = w.violations(settled=True)
    result.seconds = time.monotonic() - started
    return result


def run_fuzz(folder: Path, *, seed: int, frames: int, batch: int = 2000) -> FuzzResult:
    with world(folder) as w:
        w.start()
        try:
            return asyncio.run(_fuzz(w, seed, frames, batch))
        finally:
            w.stop()
