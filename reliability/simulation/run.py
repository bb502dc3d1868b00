"""One seed of the simulation, played and checked; and a range of seeds.

A seed draws everything: the orders and what the customer and the POS do, the network's latencies,
Stripe's faults, the crashes and the wall-clock jumps. After the play the faults stop, the core is
given (virtual) time to settle, the process is killed a last time, and the invariant checker reads
the SQLite file and the emulator's journal. A failing seed replays exactly:
`python -m reliability --only sim --seed N --seeds 1 --no-write`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import multiprocessing
import os
import re
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from readerhost.daemon.payments.model import TERMINAL, State
from reliability.invariants import StoreView, Violation, check, read_store
from reliability.simulation.pos import Cashier, Order, draw_order
from reliability.simulation.scheduler import Stalled
from reliability.simulation.world import TERMINAL_ID, World

PLAY_BOUND_S = 3600.0  # virtual seconds the POS may take over its orders
SETTLE_BOUND_S = 25 * 3600.0  # virtual seconds the core may take to settle once the faults stop (a key lives 24 h)
_AT_REST = TERMINAL | {State.AUTHORIZED}
_ID = re.compile(r"\b[a-z]{2,4}_[A-Za-z0-9]{14,}(?:_secret_[A-Za-z0-9]+)?")
_MEMORY_FOLDER = Path("/dev/shm")
_CHUNK = 50  # seeds a worker process plays before it reports (failures are heard at most this late)


@dataclass
class SeedResult:
    seed: int
    violations: list[Violation]
    problems: list[str]  # what went wrong besides the invariants: a stall, an unexpected exception
    trace_hash: str
    payments: int = 0
    requests: int = 0
    crashes: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    exercised: Counter[str] = field(default_factory=Counter)  # what the seed met besides faults (World.exercised)
    virtual_s: float = 0.0
    trace: list[str] = field(default_factory=list, repr=False)

    @property
    def clean(self) -> bool:
        return not self.violations and not self.problems


def simulate(seed: int, *, before_check: Callable[[World], None] | None = None) -> SeedResult:
    """Play and check one seed; `before_check` may change the world first (a test's deliberate mistake)."""
    with tempfile.TemporaryDirectory(prefix="readerhost-sim-", dir=_store_folder()) as folder, _quiet() as logged:
        world = World(seed, Path(folder))
        problems: list[str] = []

        def unhandled(_loop: object, context: dict[str, Any]) -> None:
            if context.get("future") not in world.dead:
                problems.append(_unhandled(context))

        world.loop.set_exception_handler(unhandled)
        try:
            world.loop.run_until_complete(_play(world))
        except Stalled as stalled:
            problems.append(f"stalled at {world.time.now:.3f} s: {stalled}")
        finally:
            _close(world)
        problems += [f"{r.name}: {r.getMessage()}" for r in logged]
        if before_check is not None:
            before_check(world)
        store = read_store(world.db)
        violations = check(store, world.emulator.journal_entries(), world.record, terminal_id=TERMINAL_ID, settled=True)
    return SeedResult(
        seed=seed,
        violations=violations,
        problems=problems,
        trace_hash=trace_hash(world.trace),
        payments=len(store.payments),
        requests=world.transport.requests,
        crashes=world.lives - 1,
        faults=world.faults.fired,
        exercised=world.exercised() + _figures_of(store),
        virtual_s=world.time.now,
        trace=world.trace,
    )


def _figures_of(store: StoreView) -> Counter[str]:
    """What the store shows the seed went through: orders paid again, increments and how they ended."""
    figures = Counter(
        {"attempts after an order's first": len(store.payments) - len({p.order_id for p in store.payments.values()})}
    )
    figures.update(f"increments {increment.state}" for increment in store.increments.values())
    return +figures  # without the zeros


def _store_folder() -> Path | None:
    """Where each seed's SQLite file lives: memory when the machine has it. A simulated crash drops
    the core's objects, never the page cache, so an fsync proves nothing here; on a disk it was half
    of each seed's time."""
    return _MEMORY_FOLDER if os.access(_MEMORY_FOLDER, os.W_OK) else None


def _unhandled(context: dict[str, Any]) -> str:
    """An exception nobody awaited, as the loop reports it: its message, the exception, and where."""
    error = context.get("exception")
    where = context.get("future") or context.get("handle") or ""
    return f"{context.get('message')}: {error!r} in {where}"


def trace_hash(trace: list[str]) -> str:
    """The trace's digest with every random identifier named by its first appearance: the daemon's
    and the emulator's ids are random, and nothing about the run may depend on their letters."""
    names: dict[str, str] = {}

    def named(match: re.Match[str]) -> str:
        return names.setdefault(match.group(0), f"<id{len(names)}>")

    digest = hashlib.sha256()
    for line in trace:
        digest.update(_ID.sub(named, line).encode())
        digest.update(b"\n")
    return digest.hexdigest()


async def _play(world: World) -> None:
    rng = world.rng["world"]
    orders = [draw_order(world.rng["pos"], number) for number in range(rng.randint(1, 5))]
    lanes = rng.choice((1, 2))  # POS clients selling at once (one reader: the second often hears BUSY)
    plan = sorted(
        [(rng.uniform(0.0, 60.0), "crash", 0.0) for _ in range(rng.choice((0, 0, 1, 1, 2, 3)))]
        + [
            (rng.uniform(0.0, 60.0), "jump", rng.choice((-86_400.0 * 3, -3_600.0, -30.0, 45.0, 7_200.0, 86_400.0 * 2)))
            for _ in range(rng.choice((0, 0, 0, 1, 2)))
        ]
    )
    main = asyncio.current_task()
    assert main is not None
    await world.start()
    cashiers = _open_lanes(world, orders, lanes)
    for at, what, seconds in plan:
        await asyncio.sleep(max(0.0, at - world.time.now))
        if what == "jump":
            world.jump_wall_clock(seconds)
            continue
        world.crash({main})
        await asyncio.sleep(0)  # the killed tasks end
        await asyncio.sleep(rng.uniform(0.0, 10.0))  # systemd's restart
        await world.start()
        cashiers = _open_lanes(world, orders, lanes)
    if cashiers:
        await asyncio.wait(cashiers, timeout=max(0.0, PLAY_BOUND_S - world.time.now))
    world.note("the faults stop")
    world.faults.active = False
    world.emulator.faults.clear()
    await _settle(world)
    world.crash({main})  # the last kill: only the file is checked


def _open_lanes(world: World, orders: list[Order], lanes: int) -> list[asyncio.Task[None]]:
    waiting = [order for order in orders if not order.done]
    return [
        asyncio.create_task(Cashier(world, waiting[lane::lanes]).run()) for lane in range(lanes) if waiting[lane::lanes]
    ]


async def _settle(world: World) -> None:
    deadline = world.time.now + SETTLE_BOUND_S
    life = world.life
    assert life is not None
    while world.time.now < deadline:
        if (
            not world.transport.held  # a request Stripe still executes may change what it holds
            and life.store.queue_stats().pending == 0
            and all(p.state in _AT_REST for p in life.store.payments(limit=10_000))
        ):
            return
        life.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(life.changed.wait(), timeout=60.0)


def _close(world: World) -> None:
    world.transport.release_all()
    loop = world.loop
    for task in asyncio.all_tasks(loop):
        task.cancel()
    loop.run_until_complete(asyncio.sleep(0))
    if world.life is not None:
        world.life.store.close()
    loop.close()


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:  # an exception nobody expected (a bug), not a logged refusal
            self.records.append(record)


class _quiet:
    """The daemon's logs are silenced for the run, except exceptions, which are collected."""

    def __enter__(self) -> list[logging.LogRecord]:
        self._logger = logging.getLogger("readerhost")
        self._saved = (self._logger.level, self._logger.propagate, list(self._logger.handlers))
        self._handler = _Collect()
        self._logger.setLevel(logging.ERROR)
        self._logger.propagate = False
        self._logger.handlers = [self._handler]
        return self._handler.records

    def __exit__(self, *exc: object) -> None:
        self._logger.level, self._logger.propagate, self._logger.handlers = self._saved


@dataclass
class RangeResult:
    first_seed: int
    seeds: int
    failed: list[SeedResult]
    payments: int
    requests: int
    crashes: int
    faults: Counter[str]
    virtual_s: float
    seconds: float
    longest_s: float = 0.0  # the most virtual time one seed took
    exercised: Counter[str] = field(default_factory=Counter)

    @property
    def per_second(self) -> float:
        return self.seeds / self.seconds if self.seconds else 0.0

    def add(self, part: RangeResult) -> None:
        """Count a sub-range's figures in (the seeds themselves are counted by the caller's range)."""
        self.failed += part.failed
        self.payments += part.payments
        self.requests += part.requests
        self.crashes += part.crashes
        self.faults += part.faults
        self.exercised += part.exercised
        self.virtual_s += part.virtual_s
        self.longest_s = max(self.longest_s, part.longest_s)


def run_seeds(
    first_seed: int, seeds: int, *, jobs: int = 1, report: Callable[[SeedResult], None] | None = None
) -> RangeResult:
    """Seeds first_seed .. first_seed + seeds - 1, in `jobs` processes; `report` hears each failing
    seed as its chunk ends. A seed's play depends on nothing but the seed, so how the range is split
    changes no figure but the run time."""
    started = time.monotonic()
    result = RangeResult(first_seed, seeds, [], 0, 0, 0, Counter(), 0.0, 0.0)
    for part in _parts(first_seed, seeds, jobs):
        result.add(part)
        if report is not None:
            for outcome in part.failed:
                report(outcome)
    result.failed.sort(key=lambda outcome: outcome.seed)
    result.seconds = time.monotonic() - started
    return result


def _parts(first_seed: int, seeds: int, jobs: int) -> Iterator[RangeResult]:
    starts = range(first_seed, first_seed + seeds, _CHUNK)
    if jobs <= 1:
        yield from (_play_range(start, min(_CHUNK, first_seed + seeds - start)) for start in starts)
        return
    # spawn: a worker starts from a clean interpreter, not a copy of this one's state
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        chunks = [pool.submit(_play_range, start, min(_CHUNK, first_seed + seeds - start)) for start in starts]
        for done in as_completed(chunks):
            yield done.result()


def _play_range(first_seed: int, seeds: int) -> RangeResult:
    result = RangeResult(first_seed, seeds, [], 0, 0, 0, Counter(), 0.0, 0.0)
    for seed in range(first_seed, first_seed + seeds):
        outcome = simulate(seed)
        result.payments += outcome.payments
        result.requests += outcome.requests
        result.crashes += outcome.crashes
        result.faults += outcome.faults
        result.exercised += outcome.exercised
        result.virtual_s += outcome.virtual_s
        result.longest_s = max(result.longest_s, outcome.virtual_s)
        if not outcome.clean:
            result.failed.append(outcome)
    return result
