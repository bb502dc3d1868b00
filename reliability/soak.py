"""The fault soak: many payments by several concurrent POS clients while Stripe misbehaves at random.

One seed draws the orders (amounts, cards, declines, cancels, partial captures, hang-ups) and the
fault schedule; the interleaving of the clients is left to the machine. When every order is done
the faults stop, the daemon gets a bounded time to settle everything, and then the invariants,
and the secrets scan, are checked over the whole run.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from reliability.cashier import Cashier, draw_order, sell_safely
from reliability.faults import FaultInjector
from reliability.invariants import Violation
from reliability.secrets_scan import Finding, process_files, scan, store_files
from reliability.world import World, world

SETTLE_BOUND_S = 120.0  # after faults stop: the worker's 60 s backoff cap, a 15 s probe, and room


@dataclass
class SoakResult:
    seed: int
    payments: int
    cashiers: int
    seconds: float
    settle_s: float
    final_states: Counter[str]
    faults: Counter[str]
    violations: list[Violation] = field(default_factory=list)
    secrets: list[Finding] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    refunds: Counter[str] = field(default_factory=Counter)  # the refunds' final states
    reader_events: Counter[str] = field(default_factory=Counter)  # a protocol 2 reader's: stored, forwarded, ...

    @property
    def clean(self) -> bool:
        return not (self.violations or self.secrets or self.stuck)


async def _soak(
    w: World, seed: int, payments: int, cashiers: int, read_timeout_s: float, fault_gap_s: float
) -> SoakResult:
    started = time.monotonic()
    orders = random.Random(seed)
    plan = iter([draw_order(orders, n) for n in range(1, payments + 1)])
    injector = FaultInjector(w.emulator, random.Random(seed + 1), read_timeout_s, mean_gap_s=fault_gap_s)
    faulting = asyncio.create_task(injector.run())
    sellers = [Cashier(w, random.Random(seed + 2 + n)) for n in range(cashiers)]

    async def work(cashier: Cashier) -> None:
        for order in plan:  # one shared plan: each order is sold by whichever cashier is free
            if w.device_failure() is not None:
                return  # no reader any more: each order left would only wait out the POS's patience
            await sell_safely(cashier, order)

    await asyncio.gather(*(work(c) for c in sellers))
    injector.stop()
    await faulting
    device_failure = w.device_failure()
    try:
        settle_s = await w.until_settled(SETTLE_BOUND_S)
        stuck: list[str] = []
    except TimeoutError as error:
        settle_s, stuck = SETTLE_BOUND_S, [str(error)]
    daemon = w.daemon
    assert daemon is not None
    # The daemon's state as it shows it, for the secrets scan (the answers land in the wire record).
    client = await w.client(topics=())
    await client.call("status.get")
    await client.call("payment.list", {"limit": 500})
    await client.close()
    process = process_files(daemon.daemon_pid())
    for cashier in sellers:
        await cashier.hang_up()
    w.stop()
    view = w.store()
    violations = w.violations(settled=not stuck)
    stuck += [s for c in sellers for s in c.stuck] + ([device_failure] if device_failure else [])
    if violations or stuck:  # a finding: what it is judged on outlives the run's folder
        w.keep_evidence(Path.cwd() / "reliability-evidence" / f"soak{'-sdk' if w.device else ''}-seed{seed}")
    sources = [("daemon log", "\n".join(w.logs).encode()), ("socket traffic", bytes(w.record.wire))]
    return SoakResult(
        seed=seed,
        payments=payments,
        cashiers=cashiers,
        seconds=time.monotonic() - started,
        settle_s=settle_s,
        final_states=Counter(p.state for p in view.payments.values()),
        faults=injector.fired(),
        violations=violations,
        secrets=scan([*sources, *store_files(w.store_path), *process], w.key),
        stuck=stuck,
        refunds=Counter(r.state for r in view.refunds.values()),
        reader_events=Counter(str(e["event"]) for e in w.device.events) if w.device is not None else Counter(),
    )


def run_soak(
    folder: Path,
    *,
    seed: int,
    payments: int,
    cashiers: int = 4,
    read_timeout_s: float = 1.0,
    fault_gap_s: float = 1.5,
    sdk_reader: bool = False,
) -> SoakResult:
    """`fault_gap_s`: the mean time between two faults armed (exponentially distributed). `sdk_reader`:
    a protocol 2 serial reader (a Terminal SDK bridge in its own process) instead of the simulated one."""
    from reliability.world import stripe_settings

    with world(folder) as w:
        reader = w.add_sdk_reader() if sdk_reader else None
        w.start(stripe_settings(w.url, read_timeout_s=read_timeout_s, reader=reader))
        return asyncio.run(_soak(w, seed, payments, cashiers, read_timeout_s, fault_gap_s))
