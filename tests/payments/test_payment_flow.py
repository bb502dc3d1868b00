"""The payment flow end to end: service -> store -> worker -> stripe-python -> HTTP -> emulator."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import stripe
from conftest import EmulatorHandle, make_client
from support.payments_core import run, running_core

from readerhost.daemon.payments.model import RequestRefused, State
from readerhost.daemon.payments.validation import InvalidRequest
from readerhost.drivers.reader.base import Capability


def test_happy_path_creates_authorises_and_captures_once(stripe_emulator: EmulatorHandle, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            payment = await core.service.start({"order_id": "A-1001", "amount": 1250, "currency": "usd"})
            assert payment.state is State.CREATING
            await core.until_state(payment.payment_id, State.COLLECTING)
            await core.until_collecting()
            core.reader.present("pm_card_present_visa", "visa", "4242", "contactless_emv")
            authorised = await core.until_state(payment.payment_id, State.AUTHORIZED)
            assert authorised.card is not None
            assert (authorised.card.brand, authorised.card.last4) == ("visa", "4242")
            assert authorised.capture_before is not None
            capturing = await core.service.capture(payment.payment_id, 1000)
            assert capturing.state is State.CAPTURING
            captured = await core.until_state(payment.payment_id, State.CAPTURED)
            assert captured.captured_amount == 1000
            assert core.states_told(payment.payment_id) == [
                "creating", "collecting", "processing", "authorized", "capturing", "captured",
            ]  # fmt: skip
            created = core.journal("payment_intent.create")
            assert len(created) == 1
            assert created[0].metadata == {
                "order_id": "A-1001",
                "terminal_id": "kiosk-1",
                "payment_id": payment.payment_id,
            }
            assert created[0].object == captured.payment_intent
            assert [e.amount for e in core.journal("payment_intent.capture")] == [1000]
            history = core.store.history(payment.payment_id)
            assert [h.to_state for h in history] == core.states_told(payment.payment_id)

    run(scenario())


@pytest.mark.parametrize(
    ("payment_method", "amount", "decline_code"),
    [
        ("pm_card_present_charge_declined_insufficient_funds", 2000, "insufficient_funds"),
        ("pm_card_present_visa", 2005, "generic_decline"),
        ("pm_card_present_visa", 2075, "pin_try_exceeded"),
    ],
)
def test_a_decline_keeps_the_payment_intent_for_another_card(
    stripe_emulator: EmulatorHandle, tmp_path: Path, payment_method: str, amount: int, decline_code: str
) -> None:
    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            payment = await core.service.start({"order_id": "B-1", "amount": amount, "currency": "usd"})
            await core.until_collecting()
            core.reader.present(payment_method)
            declined = await core.until_state(payment.payment_id, State.DECLINED)
            assert declined.decline is not None
            assert declined.decline.decline_code == decline_code
            with pytest.raises(RequestRefused) as refused:
                await core.service.capture(payment.payment_id)
            assert refused.value.reason == "INVALID_STATE"
            await core.service.collect_again(payment.payment_id)
            await core.until_collecting()
            core.reader.present("pm_card_present_mastercard", "mastercard", "4444")
            # An amount that declines by its ending declines every card: the second card is refused
            # too, on the same PaymentIntent; a declining test card's amount approves with another.
            final = await core.until_state(payment.payment_id, State.AUTHORIZED, State.DECLINED)
            confirms = core.journal("payment_intent.confirm")
            assert len(confirms) == 2
            assert {c.object for c in confirms} == {final.payment_intent}
            assert len(core.journal("payment_intent.create")) == 1
            assert final.attempts == 2
            expected = State.DECLINED if amount % 100 else State.AUTHORIZED
            assert final.state is expected

    run(scenario())


def test_the_same_order_returns_the_same_payment_and_other_parameters_conflict(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            first = await core.service.start({"order_id": "C-1", "amount": 1000, "currency": "usd"})
            again = await core.service.start({"order_id": "C-1", "amount": 1000, "currency": "usd"})
            assert again.payment_id == first.payment_id
            with pytest.raises(RequestRefused) as conflict:
                await core.service.start({"order_id": "C-1", "amount": 1500, "currency": "usd"})
            assert conflict.value.reason == "IDEMPOTENCY_CONFLICT"
            with pytest.raises(RequestRefused) as busy:
                await core.service.start({"order_id": "C-2", "amount": 1000, "currency": "usd"})
            assert busy.value.reason == "BUSY"
            await core.until_state(first.payment_id, State.COLLECTING)
            await core.until_queue_empty()
            assert len(core.journal("payment_intent.create")) == 1

    run(scenario())


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"order_id": "D-1", "amount": 0, "currency": "usd"}, "amount"),
        ({"order_id": "D-1", "amount": -5, "currency": "usd"}, "amount"),
        ({"order_id": "D-1", "amount": 10.5, "currency": "usd"}, "amount"),
        ({"order_id": "D-1", "amount": True, "currency": "usd"}, "amount"),
        ({"order_id": "D-1", "amount": 49, "currency": "usd"}, "amount"),
        ({"order_id": "D-1", "amount": 1000, "currency": "xyz"}, "currency"),
        ({"order_id": "D-1", "amount": 1000, "currency": "USD"}, "currency"),
        ({"order_id": "x" * 201, "amount": 1000, "currency": "usd"}, "order_id"),
        ({"order_id": "bad id", "amount": 1000, "currency": "usd"}, "order_id"),
        ({"order_id": "D-1", "amount": 1000, "currency": "usd", "metadata": {"k": 1}}, "metadata.k"),
        ({"order_id": "D-1", "amount": 1000, "currency": "usd", "metadata": {"k" * 41: "v"}}, "metadata." + "k" * 41),
        ({"order_id": "D-1", "amount": 1000, "currency": "usd", "metadata": {"k": "v" * 501}}, "metadata.k"),
        (
            {"order_id": "D-1", "amount": 1000, "currency": "usd", "metadata": {f"k{i}": "v" for i in range(48)}},
            "metadata",
        ),
        ({"order_id": "D-1", "amount": 1000, "currency": "usd", "metadata": {"order_id": "x"}}, "metadata.order_id"),
        ({"order_id": "D-1", "amount": 1000, "currency": "usd", "capture": "later"}, "capture"),
        ({"order_id": "D-1", "amount": 1000, "currency": "usd", "offline": "force_offline"}, "offline"),
    ],
)  # an unknown parameter (a tip) is the API's method table's to refuse: tests/daemon/test_protocol.py
def test_invalid_requests_are_refused_before_anything_is_stored_or_sent(
    stripe_emulator: EmulatorHandle, tmp_path: Path, params: dict[str, object], field: str
) -> None:
    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            with pytest.raises(InvalidRequest) as invalid:
                await core.service.start(params)
            assert invalid.value.field == field
            assert core.store.payments() == []
            assert core.journal() == []

    run(scenario())


def test_a_reader_that_is_gone_refuses_new_payments_before_anything_is_stored_or_sent(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            core.reader.gone = "the reader is not connected (unplugged)"
            with pytest.raises(RequestRefused) as refused:
                await core.service.start({"order_id": "U-1", "amount": 1000, "currency": "usd"})
            assert (refused.value.reason, refused.value.retryable) == ("READER_UNAVAILABLE", True)
            assert "unplugged" in refused.value.message
            assert core.store.payments() == []
            assert core.journal() == []
            core.reader.gone = None
            payment = await core.service.start({"order_id": "U-1", "amount": 1000, "currency": "usd"})
            await core.until_collecting()
            core.reader.fail("READER_UNAVAILABLE", "the link was lost")
            await core.until(lambda: core.service.get(payment_id=payment.payment_id).error is not None)
            core.reader.gone = "the reader is not connected (unplugged)"
            with pytest.raises(RequestRefused) as again:
                await core.service.collect_again(payment.payment_id)
            assert again.value.reason == "READER_UNAVAILABLE"
            assert core.service.get(payment_id=payment.payment_id).error is not None  # unchanged

    run(scenario())


def test_cancel_while_collecting_stops_the_reader_and_cancels_the_payment_intent(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            payment = await core.service.start({"order_id": "E-1", "amount": 1000, "currency": "usd"})
            await core.until_collecting()
            canceled = await core.service.cancel(payment.payment_id)
            assert canceled.state is State.CANCELED
            await core.until_queue_empty()
            assert not core.reader.collecting.is_set()
            cancels = core.journal("payment_intent.cancel")
            assert [(c.object, c.status) for c in cancels] == [(canceled.payment_intent, "canceled")]
            # The reader is free again, and a second cancel changes nothing.
            assert (await core.service.cancel(payment.payment_id)).state is State.CANCELED
            await core.service.start({"order_id": "E-2", "amount": 1000, "currency": "usd"})

    run(scenario())


def test_an_authorised_payment_canceled_is_never_captured(stripe_emulator: EmulatorHandle, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            payment = await core.authorise("F-1")
            await core.service.cancel(payment.payment_id, "abandoned")
            await core.until_queue_empty()
            with pytest.raises(RequestRefused) as refused:
                await core.service.capture(payment.payment_id)
            assert refused.value.reason == "INVALID_STATE"
            assert core.journal("payment_intent.capture") == []
            assert [c.status for c in core.journal("payment_intent.cancel")] == ["canceled"]

    run(scenario())


def test_automatic_capture_and_the_confirmation_step(stripe_emulator: EmulatorHandle, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            payment = await core.service.start(
                {"order_id": "G-1", "amount": 1500, "currency": "usd", "capture": "automatic", "confirm": True}
            )
            await core.until_collecting()
            core.reader.present("pm_card_present_amex", "amex", "0005")
            await core.until_state(payment.payment_id, State.AWAITING_CONFIRMATION)
            assert core.journal("payment_intent.confirm") == []  # nothing is authorised before the customer says so
            await core.service.confirm(payment.payment_id)
            captured = await core.until_state(payment.payment_id, State.CAPTURED)
            assert captured.captured_amount == 1500
            assert [e.amount for e in core.journal("payment_intent.capture")] == [1500]

    run(scenario())


def test_capture_asked_twice_is_one_capture(stripe_emulator: EmulatorHandle, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            payment = await core.authorise("H-1")
            await core.service.capture(payment.payment_id, 800)
            again = await core.service.capture(payment.payment_id, 800)
            assert again.state in (State.CAPTURING, State.CAPTURED)
            with pytest.raises(RequestRefused):
                await core.service.capture(payment.payment_id, 900)
            with pytest.raises(InvalidRequest):
                await core.service.capture(payment.payment_id, 1001)
            await core.until_state(payment.payment_id, State.CAPTURED)
            assert len(core.journal("payment_intent.capture")) == 1

    run(scenario())


def test_a_create_canceled_while_it_waits_for_its_turn_is_never_sent(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    from dataclasses import replace

    from support.payments_core import FAST_WORKER

    slow = replace(FAST_WORKER, requests_per_second=1.0)  # every request waits a second for its turn

    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db", worker_settings=slow) as core:
            first = await core.service.start({"order_id": "W-1", "amount": 1000, "currency": "usd"})
            await core.until_state(first.payment_id, State.COLLECTING)
            await core.service.cancel(first.payment_id)  # its cancel takes the next turn
            second = await core.service.start({"order_id": "W-2", "amount": 1000, "currency": "usd"})
            await core.until(lambda: second.payment_id in core.worker.in_flight, what="the create to wait its turn")
            await core.service.cancel(second.payment_id)
            await core.until_queue_empty()
            await core.until(lambda: not core.worker.in_flight, what="the worker to be idle")
            assert [c.metadata["order_id"] for c in core.journal("payment_intent.create")] == ["W-1"]
            assert [op.status for op in core.store.operations_of(second.payment_id)] == ["dropped"]

    run(scenario())


def test_a_card_a_smart_reader_presented_itself_is_read_back_never_confirmed_again(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    # Stripe's smart readers confirm the PaymentIntent themselves; the test plays that reader with
    # stripe-python against the emulator, then hands the daemon what it read.
    reader_side = make_client(stripe_emulator.url)

    async def scenario() -> None:
        smart = frozenset({Capability.CONFIRMS_ITSELF})
        async with running_core(stripe_emulator, tmp_path / "store.db", reader_capabilities=smart) as core:
            # A decline first: the PaymentIntent comes back with the reader's decline on it.
            payment = await core.service.start({"order_id": "SR-1", "amount": 2000, "currency": "usd"})
            await core.until_collecting()
            intent_id = core.service.get(payment_id=payment.payment_id).payment_intent
            assert intent_id is not None
            assert core.reader.payment_intents == [intent_id]
            with pytest.raises(stripe.CardError):
                reader_side.v1.payment_intents.confirm(
                    intent_id, {"payment_method": "pm_card_present_charge_declined_insufficient_funds"}
                )
            core.reader.present("pm_card_present_charge_declined_insufficient_funds")
            declined = await core.until_state(payment.payment_id, State.DECLINED)
            assert declined.decline is not None
            assert declined.decline.decline_code == "insufficient_funds"

            # Another card on the same PaymentIntent, approved at the reader.
            await core.service.collect_again(payment.payment_id)
            await core.until_collecting()
            reader_side.v1.payment_intents.confirm(intent_id, {"payment_method": "pm_card_present_mastercard"})
            core.reader.present("pm_card_present_mastercard", "mastercard", "4444")
            authorised = await core.until_state(payment.payment_id, State.AUTHORIZED)
            assert authorised.card is not None
            assert authorised.card.brand == "mastercard"
            await core.service.capture(payment.payment_id)
            await core.until_state(payment.payment_id, State.CAPTURED)
            # The daemon confirmed nothing itself: the two confirms are the reader's.
            confirms = core.journal("payment_intent.confirm")
            assert len(confirms) == 2
            assert not any(c.idempotency_key and c.idempotency_key.startswith(payment.payment_id) for c in confirms)
            assert [e.amount for e in core.journal("payment_intent.capture")] == [2000]
            # Each card the reader read was handed back to it to confirm (here: already confirmed).
            assert core.reader.processed == [intent_id, intent_id]

    run(scenario())


def test_a_reader_that_never_confirms_is_asked_twice_then_its_payment_intent_is_canceled(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    # The test plays a two-step smart reader whose confirm never happens: it collects the card on a
    # simulated reader (the PaymentIntent requires_confirmation), and its process() confirms nothing.
    reader_side = make_client(stripe_emulator.url)
    reader_id = reader_side.v1.terminal.readers.create({"registration_code": "simulated-wpe"}).id
    stripe_emulator.emulator.configure_reader(reader_id, {"processing_s": 0})

    async def scenario() -> None:
        smart = frozenset({Capability.CONFIRMS_ITSELF})
        async with running_core(stripe_emulator, tmp_path / "store.db", reader_capabilities=smart) as core:
            payment = await core.service.start({"order_id": "NC-1", "amount": 1500, "currency": "usd"})
            await core.until_collecting()
            intent_id = core.payment(payment.payment_id).payment_intent
            assert intent_id is not None
            reader_side.v1.terminal.readers.collect_payment_method(reader_id, {"payment_intent": intent_id})
            reader_side.v1.test_helpers.terminal.readers.present_payment_method(reader_id)
            assert stripe_emulator.emulator.wait_reader_action(reader_id, 5)
            core.reader.present("", "visa", "4242", "contactless_emv")  # what the collect read

            failed = await core.until_state(payment.payment_id, State.FAILED)
            assert failed.error is not None
            assert "asked twice" in failed.error.message
            assert core.reader.processed == [intent_id, intent_id]  # the truth read between the two asks
            await core.until_queue_empty()
            assert reader_side.v1.payment_intents.retrieve(intent_id).status == "canceled"
            assert core.journal("payment_intent.confirm") == []

    run(scenario())


def test_a_readers_confirm_is_read_only_once_the_reader_has_ended_it(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    reader_side = make_client(stripe_emulator.url)

    async def scenario() -> None:
        smart = frozenset({Capability.CONFIRMS_ITSELF})
        async with running_core(stripe_emulator, tmp_path / "store.db", reader_capabilities=smart) as core:
            core.reader.confirm_gate = asyncio.Event()
            payment = await core.service.start({"order_id": "GATE-1", "amount": 1500, "currency": "usd"})
            await core.until_collecting()
            intent_id = core.payment(payment.payment_id).payment_intent
            assert intent_id is not None
            core.reader.present("", "visa", "4242", "contactless_emv")
            await core.until(lambda: core.reader.processed == [intent_id], what="the reader to be asked to confirm")
            # The reader is confirming: its confirm operation is committed, and not sent meanwhile.
            [confirm] = [op for op in core.store.operations_of(payment.payment_id) if op.kind == "confirm"]
            assert (confirm.status, confirm.params.get("by_reader")) == ("pending", True)
            assert core.store.operation(confirm.op_id).attempts == 0  # type: ignore[union-attr]
            assert core.payment(payment.payment_id).state is State.PROCESSING
            reader_side.v1.payment_intents.confirm(intent_id, {"payment_method": "pm_card_present_visa"})
            core.reader.confirm_gate.set()  # the reader's confirm has ended: now the outcome is read
            await core.until_state(payment.payment_id, State.AUTHORIZED)
            # Read once, after the reader's confirm: read before it, the PaymentIntent would have been
            # found unconfirmed and the payment failed.
            assert core.store.operation(confirm.op_id).attempts == 1  # type: ignore[union-attr]

    run(scenario())
