"""Store and forward: a payment taken while Stripe is unreachable is forwarded exactly once when it returns."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import EmulatorHandle
from support.payments_core import Core, run, running_core

from readerhost.daemon.payments.model import RequestRefused, State
from readerhost.daemon.payments.offline import OfflineLimits
from readerhost.drivers.reader.base import Capability


def stripe_down(emulator: EmulatorHandle) -> None:
    emulator.emulator.add_fault({"path": ".", "action": "down"})


async def read_card_offline(core: Core, order_id: str, amount: int, card: str, **extra: object) -> str:
    payment = await core.service.start(
        {"order_id": order_id, "amount": amount, "currency": "usd", "offline": "prefer_online", **extra}
    )
    await core.until_collecting()
    core.reader.present(card)
    return payment.payment_id


def test_stripe_down_during_a_payment_queues_it_and_forwards_it_once(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            stripe_down(stripe_emulator)
            payment_id = await read_card_offline(core, "O-1", 1200, "pm_card_present_visa", capture="automatic")
            queued = await core.until_state(payment_id, State.QUEUED_OFFLINE)
            assert queued.offline
            assert queued.payment_intent is None
            stats = core.store.queue_stats()
            assert (stats.offline_count, stats.offline_amount_by_currency) == (1, {"usd": 1200})
            assert core.journal() == []
            stripe_emulator.emulator.faults.clear()  # Stripe is back
            captured = await core.until_state(payment_id, State.CAPTURED)
            assert captured.offline
            assert captured.captured_amount == 1200
            assert len(core.journal("payment_intent.create")) == 1
            assert len(core.journal("payment_intent.confirm")) == 1
            assert len(core.journal("payment_intent.capture")) == 1
            assert "queued_offline" in core.states_told(payment_id)

    run(scenario())


def test_a_forwarded_payment_that_is_declined_fails_loudly(
    stripe_emulator: EmulatorHandle, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            stripe_down(stripe_emulator)
            payment_id = await read_card_offline(core, "O-2", 1000, "pm_card_present_charge_declined_stolen_card")
            await core.until_state(payment_id, State.QUEUED_OFFLINE)
            stripe_emulator.emulator.faults.clear()
            failed = await core.until_state(payment_id, State.FAILED)
            assert failed.error is not None
            assert failed.error.reason == "OFFLINE_DECLINED"

    with caplog.at_level("ERROR"):
        run(scenario())
    assert any("declined when forwarded" in r.getMessage() for r in caplog.records)


OVER_LIMIT = {"order_id": "L-2", "amount": 1500, "currency": "usd", "offline": "prefer_online"}


def test_offline_limits_refuse_new_offline_payments(stripe_emulator: EmulatorHandle, tmp_path: Path) -> None:
    limits = OfflineLimits(max_payment_amount=2000, max_total_amount=3000, max_count=5)

    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db", offline=limits) as core:
            stripe_down(stripe_emulator)
            first = await read_card_offline(core, "L-1", 2000, "pm_card_present_visa")
            await core.until_state(first, State.QUEUED_OFFLINE)
            await core.until(lambda: not core.worker.health.reachable, what="Stripe to count as unreachable")
            with pytest.raises(RequestRefused) as too_much:
                await core.service.start(
                    {"order_id": "L-2", "amount": 1500, "currency": "usd", "offline": "prefer_online"}
                )
            assert too_much.value.reason == "OFFLINE_LIMIT"
            with pytest.raises(RequestRefused) as online_only:
                await core.service.start({"order_id": "L-3", "amount": 500, "currency": "usd"})
            assert online_only.value.reason == "STRIPE_UNAVAILABLE"
            assert core.store.payment_by_order("L-2") is None
            assert core.store.payment_by_order("L-3") is None
            stripe_emulator.emulator.faults.clear()
            await core.until_state(first, State.AUTHORIZED)
            await core.until(lambda: core.worker.health.reachable, what="Stripe to count as reachable")
            second = await core.service.start(
                {"order_id": "L-2", "amount": 1500, "currency": "usd", "offline": "prefer_online"}
            )
            assert second.state is State.CREATING

    run(scenario())


def test_require_online_never_goes_offline(stripe_emulator: EmulatorHandle, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            payment = await core.service.start({"order_id": "N-1", "amount": 1000, "currency": "usd"})
            await core.until_collecting()
            stripe_down(stripe_emulator)
            core.reader.present("pm_card_present_visa")
            await core.until(lambda: not core.worker.health.reachable, what="Stripe to count as unreachable")
            assert core.payment(payment.payment_id).state is State.PROCESSING
            stripe_emulator.emulator.faults.clear()
            authorised = await core.until_state(payment.payment_id, State.AUTHORIZED)
            assert not authorised.offline
            assert "queued_offline" not in core.states_told(payment.payment_id)

    run(scenario())


def test_a_reader_that_confirms_itself_never_collects_without_stripe(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    # A smart reader needs the PaymentIntent to take the card: with Stripe gone after the start, the
    # payment waits in `creating` (the POS may cancel it) instead of collecting offline.
    smart = frozenset({Capability.CONFIRMS_ITSELF})

    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db", reader_capabilities=smart) as core:
            stripe_down(stripe_emulator)
            payment = await core.service.start(
                {"order_id": "O-S", "amount": 1200, "currency": "usd", "offline": "prefer_online"}
            )
            tried = lambda: core.store.operations_of(payment.payment_id)[0].attempts >= 2  # noqa: E731
            await core.until(tried, what="the create to meet Stripe down twice")
            assert core.payment(payment.payment_id).state is State.CREATING
            assert core.reader.collections == 0
            stripe_emulator.emulator.faults.clear()  # Stripe is back: now the reader collects
            await core.until_collecting()
            collecting = core.payment(payment.payment_id)
            assert collecting.state is State.COLLECTING
            assert collecting.payment_intent is not None
            assert not collecting.offline
            await core.service.cancel(payment.payment_id)

    run(scenario())
