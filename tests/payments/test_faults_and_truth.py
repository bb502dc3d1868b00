"""Stripe misbehaving: every fault ends with one PaymentIntent per order and one capture per captured payment.

The gateway here makes no retries of its own (network_retries=0), so every fault reaches the
worker: its backoff, its idempotency keys and its "learn the truth first" path are what is tested.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import stripe
from conftest import EmulatorHandle
from support.payments_core import Core, run, running_core

from readerhost.daemon.journal import MessageId
from readerhost.daemon.payments.model import State


async def pay_and_capture(core: Core, order_id: str, amount: int = 1000, card: str = "pm_card_present_visa") -> str:
    payment = await core.authorise(order_id, amount, card)
    await core.service.capture(payment.payment_id)
    await core.until_state(payment.payment_id, State.CAPTURED)
    return payment.payment_id


def assert_one_of_each(core: Core) -> None:
    assert len(core.journal("payment_intent.create")) == 1
    assert len([c for c in core.journal("payment_intent.confirm") if c.status == "requires_capture"]) == 1
    assert len(core.journal("payment_intent.capture")) == 1


@pytest.mark.parametrize("path", [r"/v1/payment_intents$", r"/confirm$", r"/capture$"])
@pytest.mark.parametrize(
    "fault",
    [
        {"action": "reset_after"},
        {"action": "reset_before"},
        {"action": "error", "status": 500},
        {"action": "error", "status": 503, "should_retry": True},
        {"action": "error", "status": 502},
        {"action": "rate_limit", "times": 3},
        {"action": "delay_after", "seconds": 1.0},
    ],
    ids=lambda f: f["action"] + str(f.get("status", "")),
)
def test_a_fault_on_each_mutation_still_ends_with_one_of_each(
    stripe_emulator: EmulatorHandle, tmp_path: Path, path: str, fault: dict[str, Any]
) -> None:
    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db", read_timeout_s=0.5) as core:
            stripe_emulator.emulator.add_fault({"method": "POST", "path": path, **fault})
            payment_id = await pay_and_capture(core, "F-1")
            assert_one_of_each(core)
            assert not stripe_emulator.emulator.faults.armed(), "the fault must have fired"
            assert core.payment(payment_id).captured_amount == 1000

    run(scenario())


def test_a_replayed_500_is_resolved_by_learning_the_truth_then_a_new_key(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            # Saved under the capture's key: every retry with that key replays the 500.
            stripe_emulator.emulator.add_fault(
                {"method": "POST", "path": "/capture$", "action": "error", "status": 500}
            )
            payment_id = await pay_and_capture(core, "R-1")
            captures = core.journal("payment_intent.capture")
            assert len(captures) == 1
            assert captures[0].idempotency_key == f"{payment_id}:capture:r2"
            capture_op = next(op for op in core.store.operations_of(payment_id) if op.kind == "capture")
            assert capture_op.idempotency_key == f"{payment_id}:capture:r2"

    run(scenario())


def test_a_key_in_flight_answers_409_and_the_first_request_wins(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db", read_timeout_s=0.3) as core:
            # The first capture times out on the client while Stripe still holds its key.
            stripe_emulator.emulator.add_fault(
                {"method": "POST", "path": "/capture$", "action": "delay_during", "seconds": 1.0}
            )
            await pay_and_capture(core, "K-1")
            assert_one_of_each(core)

    run(scenario())


def test_an_expired_key_is_never_reused_blindly(
    stripe_emulator: EmulatorHandle, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="readerhost.daemon.payments.worker")
    offset = [0.0]

    def clock() -> float:
        import time

        return time.time() + offset[0]

    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db", clock=clock) as core:
            payment = await core.authorise("X-1")
            rule = stripe_emulator.emulator.add_fault({"method": "POST", "path": "/capture$", "action": "down"})
            await core.service.capture(payment.payment_id)
            await core.until(lambda: rule.fired >= 1, what="the capture to be tried")
            # A day passes (Stripe forgets the key), then Stripe comes back.
            offset[0] += 25 * 3600
            stripe_emulator.emulator.advance_clock(25 * 3600)
            stripe_emulator.emulator.faults.clear()
            await core.until_state(payment.payment_id, State.CAPTURED)
            captures = core.journal("payment_intent.capture")
            assert len(captures) == 1
            # The truth first (requires_capture: not applied), then the capture under its own key:
            # forgotten, it is new to Stripe; were it not, a request still running with it would
            # be answered 409 rather than made twice.
            assert captures[0].idempotency_key == f"{payment.payment_id}:capture"
            assert any("learned the truth for capture" in r.getMessage() for r in caplog.records)

    run(scenario())


def test_an_authorisation_that_expires_before_capture_fails_loudly(
    stripe_emulator: EmulatorHandle, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            payment = await core.service.start({"order_id": "M-1", "amount": 1000, "currency": "usd"})
            await core.until_collecting()
            core.reader.present("pm_card_present_mastercard", "mastercard", "4444")
            await core.until_state(payment.payment_id, State.AUTHORIZED)
            stripe_emulator.emulator.advance_clock(3 * 86400)  # Mastercard: 2 days to capture
            await core.service.capture(payment.payment_id)
            failed = await core.until_state(payment.payment_id, State.FAILED)
            assert failed.error is not None
            assert failed.error.reason == "AUTHORIZATION_EXPIRED"
            assert core.journal("payment_intent.capture") == []

    with caplog.at_level("ERROR"):
        run(scenario())
    assert any("capture of payment" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("under_our_key", [False, True], ids=["captured elsewhere", "our key used for another amount"])
def test_a_capture_stripe_holds_for_another_amount_is_recorded_as_taken_and_said_loudly(
    stripe_emulator: EmulatorHandle,
    client: stripe.StripeClient,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    under_our_key: bool,
) -> None:
    """The crash harness's one violation: a capture applied in full under the daemon's key (the
    emulator served a request whose body a kill had cut off) while the POS asked for part. The
    worker learns the truth (captured) and must neither capture again nor hide the difference."""

    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            payment = await core.authorise("D-1", 3000)
            assert payment.payment_intent is not None
            options: Any = {"idempotency_key": f"{payment.payment_id}:capture"} if under_our_key else {}
            client.v1.payment_intents.capture(payment.payment_intent, options=options)
            await core.service.capture(payment.payment_id, 1800)
            captured = await core.until_state(payment.payment_id, State.CAPTURED)
            assert captured.captured_amount == 3000  # what Stripe took, not what was asked
            assert [c.amount for c in core.journal("payment_intent.capture")] == [3000]

    with caplog.at_level("CRITICAL"):
        run(scenario())
    [record] = [r for r in caplog.records if r.levelname == "CRITICAL"]
    assert "captured 3000 usd where 1800 was asked; refund 1200" in record.getMessage()
    assert record.journal["MESSAGE_ID"] == MessageId.CAPTURE_AMOUNT_MISMATCH  # type: ignore[attr-defined]
