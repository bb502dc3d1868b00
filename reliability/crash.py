"""The crash harness: readerhostd as a real process, SIGKILLed again and again, restarted on the
same store each time; the invariants must hold after every restart.

Most kills come at a random instant while two POS clients sell orders. Every fourth (by default) comes
at a chosen one: while the emulator holds a create, confirm, capture, cancel or refund request in flight (its
`delay_during` fault keeps the idempotency key busy), so that the daemon dies not knowing whether
Stripe applied it. After each restart the harness waits (bounded) until nothing is on its way,
the POS cancels what was left declined, and the whole history is checked. In the random lives the
cashiers also sell again orders whose every attempt ended canceled or failed (an order paid again,
docs/payments.md), so that kills fall between an order's attempts too: never two successes.

A daemon that dies unasked (it exits, or a signal the harness did not send ends it) is a finding:
its exit status or signal, the end of its log and the evidence are kept, it is restarted as
systemd would, and the run goes on; one that cannot start again ends the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from readerhost.daemon.payments.model import ATTEMPT_OVER
from reliability.cashier import APPROVING, Cashier, Order, draw_order, sell_safely
from reliability.invariants import Violation
from reliability.pos import Gone
from reliability.world import Death, DiedUnasked, World, world

CHOSEN: dict[str, tuple[str, str]] = {
    # what is in flight -> (the emulator's path pattern, what the order does after authorisation)
    "create": (r"^/v1/payment_intents$", "capture"),
    "confirm": (r"/confirm$", "capture"),
    "capture": (r"/capture$", "capture"),
    "cancel": (r"/cancel$", "cancel"),
    "refund": (r"^/v1/refunds$", "capture"),
}
SETTLE_BOUND_S = 90.0
PAY_AGAIN_SHARE = 0.3  # of the sales of a random life: an earlier order whose attempts all ended, sold again


@dataclass(frozen=True)
class DeathFinding:
    """A death of the daemon the harness did not cause, with what it is judged on."""

    seed: int
    kill: int  # the harness's kills before it
    death: Death
    evidence: Path  # the store, Stripe's journal, every life's log, what the POS was told

    def __str__(self) -> str:
        death = self.death
        last = " | ".join(death.last_lines[-5:]) or "nothing"
        return (
            f"seed {self.seed}: the daemon died unasked while {death.when} (life {death.life}, after kill "
            f"{self.kill}): {death.ended()}; its last lines: {last}; evidence in {self.evidence}"
        )


@dataclass
class CrashResult:
    seed: int
    kills: int = 0
    random_kills: int = 0
    chosen_kills: Counter[str] = field(default_factory=Counter)
    payments: int = 0
    paid_again: int = 0  # sales of an order whose earlier attempts had all ended (canceled, failed)
    orders_with_attempts: int = 0  # orders with more than one payment in the store at the end
    refunds: Counter[str] = field(default_factory=Counter)  # the refunds' final states
    cut_off_requests: int = 0  # requests a kill cut off mid-body, which the emulator dropped
    seconds: float = 0.0
    # Each distinct violation once, with the restart after which it was first found: every check
    # reads the whole history, so a violation that stays is found again at each later check.
    violations: list[tuple[int, Violation]] = field(default_factory=list)
    unsettled: list[str] = field(default_factory=list)
    deaths: list[DeathFinding] = field(default_factory=list)  # the daemon died without being killed

    @property
    def clean(self) -> bool:
        return not (self.violations or self.unsettled or self.deaths)


async def _after_restart(w: World, result: CrashResult, life: int) -> None:
    """Let the restarted daemon finish what was on its way, play the POS for what waits on it, check."""
    try:
        await w.until_settled(SETTLE_BOUND_S)
    except TimeoutError as error:
        result.unsettled.append(f"restart {life}: {error}")
        return
    declined = [p.payment_id for p in w.store().payments.values() if p.state == "declined"]
    if declined:
        client = await w.client(topics=())
        for payment_id in declined:  # a POS back from its own crash cancels what it cannot finish
            reply = await client.call("payment.cancel", {"payment_id": payment_id})
            if reply.ok and reply.result.get("state") == "canceled":
                w.record.cancel_accepted.add(payment_id)
        await client.close()
        with contextlib.suppress(TimeoutError):
            await w.until_settled(SETTLE_BOUND_S)
    found = w.violations(settled=True)
    if found and not result.violations:  # the first time: keep what it was found on
        kept = w.keep_evidence(Path.cwd() / "reliability-evidence" / f"crash-seed{result.seed}-restart{life}")
        print(f"-- crash: a violation after restart {life}; its evidence is kept in {kept}", flush=True)
    note_violations(result, life, found)


def _note_death(w: World, result: CrashResult, death: Death) -> None:
    where = Path.cwd() / "reliability-evidence" / f"crash-seed{result.seed}-death{death.life}"
    finding = DeathFinding(result.seed, result.kills, death, w.keep_evidence(where))
    result.deaths.append(finding)
    print(f"-- crash: {finding}", flush=True)


def note_violations(result: CrashResult, life: int, found: list[Violation]) -> None:
    """Add what is new: a violation found again at a later check is the same one."""
    known = {v for _, v in result.violations}
    result.violations += [(life, v) for v in found if v not in known]


def _orders_to_pay_again(w: World, drawn: dict[str, Order], in_sale: set[str]) -> list[str]:
    """Orders sold before, not being sold now, whose every attempt ended without money."""
    states: dict[str, set[str]] = defaultdict(set)
    for payment in w.store().payments.values():
        states[payment.order_id].add(payment.state)
    over = {state.value for state in ATTEMPT_OVER}
    return sorted(order for order, seen in states.items() if order in drawn and order not in in_sale and seen <= over)


async def _one_life(
    w: World,
    rng: random.Random,
    result: CrashResult,
    life: int,
    orders: list[int],
    chosen_every: int,
    drawn: dict[str, Order],
) -> None:
    """Sell until the kill; the kill comes at a random instant or at a chosen one."""
    chosen = None
    if life % chosen_every == chosen_every - 1:
        chosen = list(CHOSEN)[(life // chosen_every) % len(CHOSEN)]
    cashiers = [Cashier(w, random.Random(rng.random()), patience_s=20.0) for _ in range(1 if chosen else 2)]
    in_sale: set[str] = set()  # two cashiers never sell one order at once

    def next_order() -> Order:
        again = _orders_to_pay_again(w, drawn, in_sale) if chosen is None and rng.random() < PAY_AGAIN_SHARE else []
        if again:
            result.paid_again += 1
            # The same parameters (the order's live attempt, if a restart left one, is returned as it is),
            # an approving card and no refunds: the new attempt is meant to pay.
            earlier = drawn[rng.choice(again)]
            return dataclasses.replace(earlier, card=rng.choice(APPROVING), refunds=0, hang_up="")
        orders[0] += 1
        order = draw_order(rng, orders[0], prefix="C")
        if chosen is not None:
            then = CHOSEN[chosen][1]
            order = dataclasses.replace(
                order, card=rng.choice(APPROVING), capture="manual", offline="require_online", confirm=False,
                then=then, cancel_while_collecting=False, hang_up="", refunds=1 if chosen == "refund" else 0,
            )  # fmt: skip
        drawn[order.order_id] = order
        return order

    async def sell(cashier: Cashier) -> None:
        while True:
            order = next_order()
            in_sale.add(order.order_id)
            try:
                if await sell_safely(cashier, order) is None and cashier.client is None:
                    return  # the daemon is gone
            finally:
                in_sale.discard(order.order_id)

    rule = None
    if chosen is not None:
        path = CHOSEN[chosen][0]
        rule = w.emulator.add_fault({"method": "POST", "path": path, "action": "delay_during", "seconds": 2.5})
    selling = [asyncio.create_task(sell(c)) for c in cashiers]
    try:
        if rule is not None:
            fired = await asyncio.to_thread(w.emulator.faults.wait_fired, rule, 1, 30.0)
            if not fired:
                w.check_alive()  # a daemon that died sends nothing: that is the finding
                raise AssertionError(f"restart {life}: the {chosen} request never reached Stripe")
        else:
            await asyncio.sleep(rng.uniform(0.05, 2.0))  # the random instant of this kill
        w.kill()
        result.kills += 1
        if chosen is not None:
            result.chosen_kills[chosen] += 1
        else:
            result.random_kills += 1
    finally:
        w.emulator.faults.clear()
        for task in selling:
            task.cancel()
        for task in selling:
            with contextlib.suppress(asyncio.CancelledError, Gone):
                await task
        for cashier in cashiers:
            with contextlib.suppress(Exception):
                await cashier.hang_up()


async def _crash(w: World, seed: int, kills: int, chosen_every: int) -> CrashResult:
    started = time.monotonic()
    rng = random.Random(seed)
    result = CrashResult(seed)
    orders = [0]
    drawn: dict[str, Order] = {}
    for life in range(kills + 1):  # each life but the last ends in a kill
        try:
            await asyncio.to_thread(w.start)
            if life:
                await _after_restart(w, result, life)
            if life < kills:
                await _one_life(w, rng, result, life, orders, chosen_every, drawn)
        except (DiedUnasked, Gone) as error:
            # A connection ends when the daemon does; only a daemon still running makes Gone a surprise.
            death = error.death if isinstance(error, DiedUnasked) else await asyncio.to_thread(w.died, 5.0)
            if death is None:
                raise
            _note_death(w, result, death)
            if death.when == "starting":
                break  # it cannot start again: nothing more can be run
    w.stop()
    view = w.store()
    result.payments = len(view.payments)
    per_order = Counter(payment.order_id for payment in view.payments.values())
    result.orders_with_attempts = sum(1 for count in per_order.values() if count > 1)
    result.refunds = Counter(r.state for r in view.refunds.values())
    result.cut_off_requests = w.emulator.incomplete_requests
    result.seconds = time.monotonic() - started
    return result


def run_crashes(folder: Path, *, seed: int, kills: int, chosen_every: int = 4) -> CrashResult:
    """`kills` SIGKILLs; every `chosen_every`-th at a chosen instant (create, confirm, capture, cancel,
    refund in turn)."""
    with world(folder) as w:
        return asyncio.run(_crash(w, seed, kills, chosen_every))
