"""Refunds in the payment core: service -> store -> worker -> stripe-python -> HTTP -> emulator, and
the scripted reader for refunds at the reader (whose word is never taken for the money)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import EmulatorHandle, make_client
from support.payments_core import Core, run, running_core

from readerhost.daemon.payments.model import Reason, RefundState, RequestRefused, State
from readerhost.daemon.payments.store import Store
from readerhost.daemon.payments.validation import InvalidRequest
from readerhost.drivers.reader.base import Capability


async def captured(core: Core, order_id: str, amount: int = 1000) -> str:
    payment = await core.authorise(order_id, amount)
    await core.service.capture(payment.payment_id)
    await core.until_state(payment.payment_id, State.CAPTURED)
    return payment.payment_id


async def until_refund(core: Core, refund_id: str, *states: RefundState) -> None:
    def reached() -> bool:
        refund = core.store.refund(refund_id)
        return refund is not None and refund.state in states

    await core.until(reached, what=f"refund {refund_id} to reach {states}")


def refunds_told(core: Core, refund_id: str) -> list[str]:
    return [e.data["state"] for e in core.seen if e.type == "refund.updated" and e.data["refund_id"] == refund_id]


def test_partial_refunds_add_up_to_at_most_what_was_captured(stripe_emulator: EmulatorHandle, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            payment_id = await captured(core, "RF-1", 1000)
            first = await core.service.refund(
                {"payment_id": payment_id, "refund_id": "R-1", "amount": 400, "reason": "requested_by_customer"}
            )
            assert (first.state, first.amount, first.at_reader) == (RefundState.PENDING, 400, False)
            await until_refund(core, "R-1", RefundState.SUCCEEDED)
            rest = await core.service.refund({"payment_id": payment_id, "refund_id": "R-2"})  # all that is left
            assert rest.amount == 600
            await until_refund(core, "R-2", RefundState.SUCCEEDED)
            with pytest.raises(RequestRefused) as refused:
                await core.service.refund({"payment_id": payment_id, "refund_id": "R-3", "amount": 1})
            assert refused.value.reason is Reason.REFUND_EXCEEDS_CAPTURED

            payment = core.payment(payment_id)
            assert payment.refunded_amount == 1000
            body = payment.to_json()
            assert body["refunded_amount"] == 1000
            assert [(r["refund_id"], r["amount"], r["state"]) for r in body["refunds"]] == [
                ("R-1", 400, "succeeded"),
                ("R-2", 600, "succeeded"),
            ]
            assert all(r["stripe_refund"].startswith("re_") for r in body["refunds"])
            made = core.journal("refund.create")
            assert [(e.amount, e.payment_intent, e.idempotency_key) for e in made] == [
                (400, payment.payment_intent, f"{payment_id}:refund:R-1"),
                (600, payment.payment_intent, f"{payment_id}:refund:R-2"),
            ]
            assert made[0].metadata == {
                "refund_id": "R-1",
                "payment_id": payment_id,
                "order_id": "RF-1",
                "terminal_id": "kiosk-1",
            }
            assert refunds_told(core, "R-1") == ["pending", "succeeded"]
            told = next(e for e in core.seen if e.type == "refund.updated" and e.data["state"] == "succeeded")
            assert told.data["payment"]["refunded_amount"] == 400
            assert [h.to_state for h in core.store.refund_history("R-1")] == ["pending", "succeeded"]

    run(scenario())


def test_the_same_refund_id_is_the_same_refund_and_other_parameters_conflict(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            payment_id = await captured(core, "RF-2", 1000)
            asked = {"payment_id": payment_id, "refund_id": "R-1", "amount": 300}
            first = await core.service.refund(asked)
            again = await core.service.refund(dict(asked))
            assert again.refund_id == first.refund_id
            await until_refund(core, "R-1", RefundState.SUCCEEDED)
            assert (await core.service.refund(dict(asked))).state is RefundState.SUCCEEDED
            for other in ({"amount": 301}, {"reason": "duplicate"}, {"at_reader": True}):
                with pytest.raises(RequestRefused) as refused:
                    await core.service.refund({**asked, **other})
                assert refused.value.reason is Reason.IDEMPOTENCY_CONFLICT
            await core.until_queue_empty()
            assert len(core.journal("refund.create")) == 1
            assert core.payment(payment_id).refunded_amount == 300

    run(scenario())


def test_refunds_refused_with_their_reasons_change_nothing(stripe_emulator: EmulatorHandle, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            authorised = await core.authorise("RF-3")
            with pytest.raises(RequestRefused) as refused:
                await core.service.refund({"payment_id": authorised.payment_id, "refund_id": "R-1"})
            assert refused.value.reason is Reason.INVALID_STATE
            assert "cancel it instead" in refused.value.message
            with pytest.raises(RequestRefused) as refused:
                await core.service.refund({"payment_id": "pay_nothing", "refund_id": "R-1"})
            assert refused.value.reason is Reason.NOT_FOUND
            payment_id = await captured(core, "RF-4", 500)
            with pytest.raises(RequestRefused) as refused:
                await core.service.refund({"payment_id": payment_id, "refund_id": "R-1", "amount": 501})
            assert refused.value.reason is Reason.REFUND_EXCEEDS_CAPTURED
            bad: list[tuple[dict[str, object], str]] = [
                ({"refund_id": "no spaces"}, "refund_id"),
                ({"amount": 0}, "amount"),
                ({"amount": True}, "amount"),
                ({"reason": "changed_my_mind"}, "reason"),
                ({"at_reader": "yes"}, "at_reader"),
            ]
            for change, field in bad:
                with pytest.raises(InvalidRequest) as invalid:
                    await core.service.refund({"payment_id": payment_id, "refund_id": "R-1", **change})
                assert invalid.value.field == field
            # A reader that cannot refund at the reader says so.
            with pytest.raises(RequestRefused) as refused:
                await core.service.refund({"payment_id": payment_id, "refund_id": "R-1", "at_reader": True})
            assert refused.value.reason is Reason.UNSUPPORTED
            assert core.payment(payment_id).refunds == ()
            assert core.journal("refund.create") == []

    run(scenario())


def test_stripe_refusing_a_refund_fails_it_and_frees_the_amount(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            payment_id = await captured(core, "RF-5", 1000)
            # Refunded elsewhere (the Dashboard) meanwhile: Stripe refuses what is no longer there.
            intent = core.payment(payment_id).payment_intent
            make_client(stripe_emulator.url).v1.refunds.create({"payment_intent": str(intent), "amount": 900})
            await core.service.refund({"payment_id": payment_id, "refund_id": "R-1", "amount": 500})
            await until_refund(core, "R-1", RefundState.FAILED)
            failed = core.store.refund("R-1")
            assert failed is not None
            assert failed.error is not None
            assert failed.error.reason is Reason.STRIPE_REFUSED
            assert "greater than unrefunded amount" in failed.error.message
            assert core.payment(payment_id).refunded_amount == 0
            # A failed refund holds nothing back: the rest can be asked for with a new id.
            await core.service.refund({"payment_id": payment_id, "refund_id": "R-2", "amount": 100})
            await until_refund(core, "R-2", RefundState.SUCCEEDED)

    run(scenario())


def test_a_lost_answer_and_a_forgotten_key_are_settled_by_listing_never_by_a_second_refund(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    offset = [0.0]

    def clock() -> float:
        return time.time() + offset[0]

    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db", clock=clock) as core:
            payment_id = await captured(core, "RF-6", 1000)
            emulator = stripe_emulator.emulator
            # Made at Stripe, the answer lost; then Stripe unreachable until the key is forgotten.
            lost = emulator.add_fault({"method": "POST", "path": "^/v1/refunds$", "action": "reset_after"})
            down = emulator.add_fault({"method": "POST", "path": "^/v1/refunds$", "action": "down", "times": -1})
            await core.service.refund({"payment_id": payment_id, "refund_id": "R-1", "amount": 700})
            await core.until(lambda: lost.fired >= 1 and down.fired >= 1, what="the refund to be tried again")
            offset[0] += 25 * 3600
            emulator.advance_clock(25 * 3600)
            emulator.faults.clear()
            await until_refund(core, "R-1", RefundState.SUCCEEDED)
            made = core.journal("refund.create")
            assert [e.amount for e in made] == [700]
            refund = core.store.refund("R-1")
            assert refund is not None
            assert refund.stripe_refund == made[0].object

    run(scenario())


def test_a_replayed_500_is_settled_by_listing_then_a_new_key(stripe_emulator: EmulatorHandle, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            payment_id = await captured(core, "RF-7", 1000)
            stripe_emulator.emulator.add_fault(
                {"method": "POST", "path": "^/v1/refunds$", "action": "error", "status": 500}
            )
            await core.service.refund({"payment_id": payment_id, "refund_id": "R-1"})
            await until_refund(core, "R-1", RefundState.SUCCEEDED)
            made = core.journal("refund.create")
            assert [(e.amount, e.idempotency_key) for e in made] == [(1000, f"{payment_id}:refund:R-1:r2")]

    run(scenario())


AT_READER = frozenset({Capability.STORES_OFFLINE, Capability.REFUNDS_AT_READER})


def test_the_readers_word_is_not_taken_for_a_refund(stripe_emulator: EmulatorHandle, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db", reader_capabilities=AT_READER) as core:
            payment_id = await captured(core, "RF-8", 1000)
            refund = await core.service.refund({"payment_id": payment_id, "refund_id": "R-1", "at_reader": True})
            assert (refund.state, refund.at_reader) == (RefundState.PENDING, True)
            await core.until(core.reader.refunding.is_set, what="the reader to wait for the card")
            order = core.reader.refund_orders[0]
            assert (order.amount, order.refund_id) == (1000, "R-1")
            assert order.idempotency_key == f"{payment_id}:reader_refund:R-1"
            # While the card is awaited the reader is held: no payment may start.
            with pytest.raises(RequestRefused) as busy:
                await core.service.start({"order_id": "RF-9", "amount": 100, "currency": "usd"})
            assert busy.value.reason is Reason.BUSY
            # The scripted reader says it refunded, but Stripe holds no such refund: not made.
            core.reader.present("done")
            await until_refund(core, "R-1", RefundState.FAILED)
            failed = core.store.refund("R-1")
            assert failed is not None
            assert failed.error is not None
            assert "Stripe does not hold" in failed.error.message
            assert core.payment(payment_id).refunded_amount == 0

            # A customer who cancels on the reader: canceled, and nothing refunded.
            await core.service.refund({"payment_id": payment_id, "refund_id": "R-2", "at_reader": True})
            await core.until(core.reader.refunding.is_set, what="the reader to wait for the card")
            core.reader.fail("canceled_on_reader", "the customer canceled the refund on the reader")
            await until_refund(core, "R-2", RefundState.CANCELED)
            assert core.journal("refund.create") == []

    run(scenario())


def test_an_older_store_gains_the_refunds_tables(tmp_path: Path) -> None:
    import sqlite3

    from readerhost.daemon.payments.store import MIGRATIONS

    path = tmp_path / "old.db"
    old = sqlite3.connect(path, isolation_level=None)
    old.executescript(MIGRATIONS[0] + "PRAGMA user_version=1;")
    old.close()
    store = Store.open(path)
    try:
        assert store.pragma("user_version") == len(MIGRATIONS)
        assert store.refunds(states=tuple(RefundState)) == []
    finally:
        store.close()
