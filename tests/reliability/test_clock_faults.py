"""Wall-clock jumps: a Raspberry Pi has no real-time clock, so its wall clock jumps by days at boot
and again when NTP syncs. Backoff, pauses and key ages must not stall or go wrong across them.

The money core runs in this process with an injected wall clock that jumps (the monotonic clock
stays the machine's own); Stripe is the emulator over real HTTP, the store a real SQLite file.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from conftest import EmulatorHandle
from support.payments_core import FAST_WORKER, Core, run, running_core

from readerhost.daemon.payments.model import State

DAYS = 86400.0
# Retries and pauses seconds away, so that a jump lands while one is scheduled.
PATIENT = dataclasses.replace(FAST_WORKER, backoff_base_s=4.0, backoff_cap_s=8.0, rate_limit_pause_s=3.0)


def failed_once(core: Core, payment_id: str) -> bool:
    """The capture was tried, failed, and its retry is scheduled (on the clock of that moment)."""
    return any(op.kind == "capture" and op.last_error for op in core.store.operations_of(payment_id))


class JumpingClock:
    """The wall clock as a Pi sees it: real time plus an offset that jumps."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset

    def __call__(self) -> float:
        return time.time() + self.offset


def test_a_wall_clock_jumping_back_days_does_not_hold_a_retry_for_days(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    clock = JumpingClock()

    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db", clock=clock, worker_settings=PATIENT) as core:
            payment = await core.authorise("J-1")
            stripe_emulator.emulator.add_fault({"method": "POST", "path": "/capture$", "action": "reset_before"})
            await core.service.capture(payment.payment_id)
            await core.until(lambda: failed_once(core, payment.payment_id), what="the first capture attempt to fail")
            clock.offset -= 3 * DAYS  # NTP corrects a clock that ran days ahead
            captured = await core.until_state(payment.payment_id, State.CAPTURED, timeout=10.0)
            assert captured.captured_amount == 1000
            assert len(core.journal("payment_intent.capture")) == 1

    run(scenario())


def test_a_rate_limit_pause_ends_on_time_whatever_the_wall_clock_does(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    clock = JumpingClock()

    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db", clock=clock, worker_settings=PATIENT) as core:
            payment = await core.authorise("J-2")
            stripe_emulator.emulator.add_fault({"method": "POST", "path": "/capture$", "action": "rate_limit"})
            await core.service.capture(payment.payment_id)
            await core.until(lambda: failed_once(core, payment.payment_id), what="the 429")
            clock.offset -= 2 * DAYS
            await core.until_state(payment.payment_id, State.CAPTURED, timeout=10.0)

    run(scenario())


def test_a_wall_clock_jumping_forward_days_still_captures_once(stripe_emulator: EmulatorHandle, tmp_path: Path) -> None:
    """The key then looks a few days old: the worker learns the truth first (conservative), and
    Stripe, which already applied the capture, is not asked twice."""
    clock = JumpingClock()

    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db", clock=clock) as core:
            payment = await core.authorise("J-3")
            rule = stripe_emulator.emulator.add_fault({"method": "POST", "path": "/capture$", "action": "reset_after"})
            await core.service.capture(payment.payment_id)
            await core.until(lambda: rule.fired >= 1, what="the capture to be applied and its answer lost")
            clock.offset += 3 * DAYS  # a Pi booted with a clock days behind, then synced
            captured = await core.until_state(payment.payment_id, State.CAPTURED, timeout=10.0)
            assert captured.captured_amount == 1000
            assert len(core.journal("payment_intent.capture")) == 1

    run(scenario())


def test_after_a_restart_with_the_wall_clock_set_back_a_create_key_is_not_trusted_blindly(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    """The create reached Stripe, its answer was lost, then the daemon stopped. A day passes at
    Stripe (it forgets the key) while the Pi's wall clock comes back two days earlier: the key
    must not look young. Sending it again would make a second PaymentIntent for the order."""
    db = tmp_path / "store.db"
    emulator = stripe_emulator.emulator

    async def first_life() -> str:
        async with running_core(stripe_emulator, db) as core:
            return await started_with_its_create_answer_lost(core, "J-4")

    payment_id = run(first_life())
    emulator.faults.clear()
    emulator.advance_clock(25 * 3600)

    async def second_life() -> None:
        async with running_core(
            stripe_emulator, db, clock=JumpingClock(-2 * DAYS), worker_settings=FAST_WORKER
        ) as core:
            await core.until_queue_empty(timeout=15.0)
            created = core.journal("payment_intent.create")
            assert len(created) == 1, [c.object for c in created]
            assert core.payment(payment_id).state is State.CANCELED  # the customer was gone
            assert [c.object for c in core.journal("payment_intent.cancel")] == [created[0].object]

    run(second_life())


def test_a_payment_created_while_the_wall_clock_was_days_behind_keeps_its_one_payment_intent(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    """The Pi booted with its clock three days behind and created a payment; the answer was lost.
    After NTP synced (and Stripe forgot the key), finding that PaymentIntent must not depend on
    the creation time the wrong clock wrote down."""
    db = tmp_path / "store.db"
    emulator = stripe_emulator.emulator

    async def first_life() -> str:
        async with running_core(stripe_emulator, db, clock=JumpingClock(-3 * DAYS)) as core:
            return await started_with_its_create_answer_lost(core, "J-5")

    payment_id = run(first_life())
    emulator.faults.clear()
    emulator.advance_clock(25 * 3600)

    async def second_life() -> None:
        async with running_core(stripe_emulator, db) as core:
            await core.until_queue_empty(timeout=15.0)
            created = core.journal("payment_intent.create")
            assert len(created) == 1, [c.object for c in created]
            assert core.payment(payment_id).state is State.CANCELED
            assert [c.object for c in core.journal("payment_intent.cancel")] == [created[0].object]

    run(second_life())


def test_a_wall_clock_stepping_back_while_a_create_is_still_running_makes_no_second_payment_intent(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    """Found by the model (docs/model.md, Findings): the create's answer times out while Stripe is
    still making it (its retries meet 409), and NTP steps the wall clock back a minute. The key then
    looks older than its first send, so its age is unknown and the worker learns the truth: nothing
    yet. Sent again under a new key, the order would get a second PaymentIntent once the first one
    completes; under its own key Stripe answers 409 until then, and replays it after."""
    clock = JumpingClock()

    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db", clock=clock, read_timeout_s=0.5) as core:
            running = stripe_emulator.emulator.add_fault(
                {"method": "POST", "path": r"^/v1/payment_intents$", "action": "delay_during", "seconds": 3, "times": 1}
            )
            payment = await core.service.start({"order_id": "J-6", "amount": 1000, "currency": "usd"})
            await core.until(lambda: running.fired >= 1, what="the create to reach Stripe and be held there")
            (create,) = core.store.operations_of(payment.payment_id)
            clock.offset -= 60  # NTP corrects a clock that ran a minute ahead
            await core.until_state(payment.payment_id, State.COLLECTING, timeout=15.0)
            await core.until(
                lambda: any(e.idempotency_key == create.idempotency_key for e in core.journal("payment_intent.create")),
                what="the first create to complete at Stripe",
            )
            made = core.journal("payment_intent.create")
            assert [e.idempotency_key for e in made] == [create.idempotency_key]
            assert core.payment(payment.payment_id).payment_intent == made[0].object

    run(scenario())


async def started_with_its_create_answer_lost(core: Core, order_id: str) -> str:
    """A payment whose create Stripe applied but whose answer was lost; after it, nothing gets through."""
    emulator = core.emulator.emulator
    emulator.add_fault({"method": "POST", "path": r"^/v1/payment_intents$", "action": "reset_after"})
    emulator.add_fault({"path": "^/v1/", "action": "down"})
    payment = await core.service.start({"order_id": order_id, "amount": 1000, "currency": "usd"})
    await core.until(
        lambda: any(op.attempts >= 2 for op in core.store.operations_of(payment.payment_id)),
        what="the create to be tried again",
    )
    return payment.payment_id
