"""Orders paid again: a payment is an attempt of its order. An order declined and canceled, then failed
(Stripe gone past the customer's wait), then paid in a third attempt shows three payments and one
success, each attempt with its own PaymentIntent under its own create key; payment.close records an
order paid another way. The real stripe library against the emulator, the core as the daemon runs it."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import EmulatorHandle, make_client
from support.payments_core import Core, run, running_core

from readerhost.daemon.payments.model import SUCCESSFUL, OpStatus, PaidBy, Reason, RequestRefused, State
from readerhost.daemon.payments.store import StorageError

DECLINING = "pm_card_present_charge_declined_insufficient_funds"
WAIT_S = 0.6


def order(order_id: str, amount: int = 1000) -> dict[str, object]:
    return {"order_id": order_id, "amount": amount, "currency": "usd"}


def cancel_done(core: Core, payment_id: str) -> bool:
    return any(op.kind == "cancel" and op.status == OpStatus.DONE for op in core.store.operations_of(payment_id))


async def declined_then_canceled(core: Core, order_id: str) -> str:
    payment = await core.service.start(order(order_id))
    await core.until_collecting()
    core.reader.present(DECLINING)
    await core.until_state(payment.payment_id, State.DECLINED)
    await core.service.cancel(payment.payment_id)
    await core.until(lambda: cancel_done(core, payment.payment_id), what="the declined attempt's cancel")
    return payment.payment_id


async def failed_with_stripe_gone(core: Core, order_id: str) -> str:
    emulator = core.emulator.emulator
    emulator.add_fault({"method": "POST", "path": r"^/v1/payment_intents", "action": "down"})
    payment = await core.service.start(order(order_id))
    failed = await core.until_state(payment.payment_id, State.FAILED, timeout=WAIT_S + 5)
    assert failed.error is not None
    assert failed.error.reason is Reason.STRIPE_UNAVAILABLE
    emulator.faults.clear()  # Stripe is back: what the create made is learned, then canceled
    await core.until(lambda: cancel_done(core, payment.payment_id), what="the failed attempt's cancel")
    await core.until(lambda: core.worker.health.reachable, what="Stripe reachable again")
    return payment.payment_id


def test_an_order_declined_and_canceled_then_failed_then_paid_shows_three_payments_and_one_success(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db", customer_wait_s=WAIT_S) as core:
            first = await declined_then_canceled(core, "A-1")
            second = await failed_with_stripe_gone(core, "A-1")
            paid = await core.authorise("A-1")
            await core.service.capture(paid.payment_id)
            captured = await core.until_state(paid.payment_id, State.CAPTURED)
            await core.until_queue_empty()

            attempts = core.store.order_payments("A-1")
            assert [(p.payment_id, p.order_attempt, p.state) for p in attempts] == [
                (first, 1, State.CANCELED),
                (second, 2, State.FAILED),
                (paid.payment_id, 3, State.CAPTURED),
            ]
            assert [p.payment_id for p in attempts if p.state in SUCCESSFUL] == [paid.payment_id]
            listed = core.service.list(order_id="A-1")
            assert [p.payment_id for p in listed] == [paid.payment_id, second, first]  # newest first
            assert core.service.get(order_id="A-1").payment_id == paid.payment_id  # the order's latest
            assert [p.to_json()["order_attempt"] for p in attempts] == [1, 2, 3]

            # Each attempt had its own PaymentIntent, made under a create key naming the attempt.
            creates = {e.metadata["payment_id"]: e for e in core.journal("payment_intent.create")}
            assert {pid: e.idempotency_key for pid, e in creates.items()} == {
                first: "readerhost:kiosk-1:A-1:1:create",
                second: "readerhost:kiosk-1:A-1:2:create",
                paid.payment_id: "readerhost:kiosk-1:A-1:3:create",
            }
            stripe = make_client(stripe_emulator.url)
            statuses = {pid: stripe.v1.payment_intents.retrieve(e.object).status for pid, e in creates.items()}
            assert statuses == {first: "canceled", second: "canceled", paid.payment_id: "succeeded"}
            assert [e.object for e in core.journal("payment_intent.capture")] == [captured.payment_intent]

            # The order has a successful attempt: asking again returns it, nothing new is made.
            again = await core.service.start(order("A-1"))
            assert again.payment_id == paid.payment_id
            assert len(core.journal("payment_intent.create")) == 3

    run(scenario())


def test_an_order_with_a_live_attempt_gets_that_attempt_and_other_parameters_conflict(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            authorised = await core.authorise("B-1")
            assert (await core.service.start(order("B-1"))).payment_id == authorised.payment_id
            with pytest.raises(RequestRefused) as conflict:
                await core.service.start(order("B-1", amount=2000))
            assert conflict.value.reason is Reason.IDEMPOTENCY_CONFLICT
            assert "attempt 1, authorized" in conflict.value.message
            await core.service.cancel(authorised.payment_id)
            # Over: the next attempt may ask for another amount (the order changed meanwhile).
            second = await core.service.start(order("B-1", amount=2000))
            assert (second.order_attempt, second.request.amount) == (2, 2000)
            assert len(core.store.order_payments("B-1")) == 2

    run(scenario())


def test_an_order_paid_another_way_is_closed_durably_and_takes_no_card_payment(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    db = tmp_path / "store.db"

    async def scenario() -> None:
        async with running_core(stripe_emulator, db) as core:
            first = await declined_then_canceled(core, "C-1")
            closure, payments = core.service.close_order("C-1", PaidBy.OTHER)
            assert (closure.order_id, closure.paid_by, [p.payment_id for p in payments]) == (
                "C-1",
                PaidBy.OTHER,
                [first],
            )
            assert core.payment(first).closed_by is PaidBy.OTHER
            # Asking again is harmless: the same closure.
            assert core.service.close_order("C-1", PaidBy.OTHER)[0] == closure
            with pytest.raises(RequestRefused) as refused:
                await core.service.start(order("C-1"))
            assert refused.value.reason is Reason.INVALID_STATE
            assert "closed as paid other" in refused.value.message
            # An order never started can be closed too (paid in cash before any card).
            assert core.service.close_order("C-2", PaidBy.OTHER)[1] == []
        async with running_core(stripe_emulator, db) as core:  # durable: a restart keeps it
            assert core.store.order_closure("C-1") == closure
            assert [p.to_json()["closed_by"] for p in core.service.list(order_id="C-1")] == ["other"]
            with pytest.raises(RequestRefused):
                await core.service.start(order("C-2"))
        assert len([e for e in stripe_emulator.emulator.journal_entries() if e.op == "payment_intent.create"]) == 1

    run(scenario())


def test_closing_is_refused_while_an_attempt_is_at_the_reader_or_paid_saying_which(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            collecting = await core.service.start(order("D-1"))
            await core.until_state(collecting.payment_id, State.COLLECTING)
            with pytest.raises(RequestRefused) as at_reader:
                core.service.close_order("D-1", PaidBy.OTHER)
            assert at_reader.value.reason is Reason.INVALID_STATE
            assert at_reader.value.message == (
                f"payment {collecting.payment_id} (attempt 1) of order D-1 is in progress at the reader "
                "(collecting): cancel it first"
            )
            await core.service.cancel(collecting.payment_id)

            paid = await core.authorise("D-2")
            with pytest.raises(RequestRefused) as already:
                core.service.close_order("D-2", PaidBy.OTHER)
            assert already.value.reason is Reason.INVALID_STATE
            assert already.value.message.startswith(
                f"order D-2 is already paid by card: payment {paid.payment_id} (attempt 1) is authorized"
            )
            assert core.store.order_closure("D-1") is None
            assert core.store.order_closure("D-2") is None
            # Once D-1's attempt is over it may be closed.
            assert core.service.close_order("D-1", PaidBy.OTHER)[0].order_id == "D-1"

    run(scenario())


def test_the_store_itself_refuses_two_live_attempts_and_an_attempt_of_a_closed_order(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            live = await core.authorise("E-1")
            store = core.store
            twin = live.__class__(
                "pay_twin", live.request, State.AUTHORIZED, live.created_at, live.updated_at, order_attempt=2
            )
            with pytest.raises(StorageError, match="UNIQUE"), store.transaction():
                store.insert_payment(twin, "a second live attempt, bypassing the service")
            await core.service.cancel(live.payment_id)
            core.service.close_order("E-1", PaidBy.OTHER)
            with pytest.raises(StorageError, match="closed as paid another way"), store.transaction():
                store.insert_payment(twin, "an attempt after the order was closed")
            assert [p.payment_id for p in store.order_payments("E-1")] == [live.payment_id]

    run(scenario())


def test_an_order_with_a_payment_stored_offline_has_a_live_attempt_and_is_paid_again_only_once_it_failed(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            stripe_emulator.emulator.add_fault({"path": ".", "action": "down"})
            offline = {**order("F-1"), "offline": "prefer_online"}
            stored = await core.service.start(offline)
            await core.until_collecting()
            core.reader.present("pm_card_present_charge_declined_stolen_card")  # declined once forwarded
            await core.until_state(stored.payment_id, State.QUEUED_OFFLINE)
            assert (await core.service.start(offline)).payment_id == stored.payment_id
            with pytest.raises(RequestRefused) as refused:
                core.service.close_order("F-1", PaidBy.OTHER)
            assert refused.value.message == (
                f"order F-1 is paid by card: payment {stored.payment_id} (attempt 1) is stored offline and goes to "
                "Stripe once it is back"
            )
            stripe_emulator.emulator.faults.clear()
            failed = await core.until_state(stored.payment_id, State.FAILED)
            assert failed.error is not None
            assert failed.error.reason is Reason.OFFLINE_DECLINED
            await core.until(lambda: core.worker.health.reachable, what="Stripe reachable again")
            # Declined when forwarded: the goods were given, the order is still unpaid; it may be paid again.
            again = await core.authorise("F-1", offline="prefer_online")
            assert (again.order_attempt, again.state) == (2, State.AUTHORIZED)
            assert [p.state for p in core.store.order_payments("F-1")] == [State.FAILED, State.AUTHORIZED]

    run(scenario())
