"""Flexible authorisations in the payment core: payment.start's incremental and extended, payment.increment
through the outbox (service -> store -> worker -> stripe-python -> HTTP -> emulator), and capture up to
the raised hold. The emulator's rules for increment_authorization are Stripe's (docs/stripe-emulator.md)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from conftest import EmulatorHandle
from support.payments_core import Core, run, running_core

from readerhost.daemon.payments.model import IncrementState, Reason, RequestRefused, State
from readerhost.daemon.payments.store import MIGRATIONS, Store
from readerhost.daemon.payments.validation import InvalidRequest

DAY = 86400


async def until_increment(core: Core, increment_id: str, *states: IncrementState) -> None:
    def reached() -> bool:
        increment = core.store.increment(increment_id)
        return increment is not None and increment.state in states

    await core.until(reached, what=f"increment {increment_id} to reach {states}")


def told(core: Core, increment_id: str) -> list[str]:
    return [
        e.data["state"] for e in core.seen if e.type == "increment.updated" and e.data["increment_id"] == increment_id
    ]


def test_an_ev_charging_session_raises_the_hold_twice_survives_a_decline_and_captures_what_was_used(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            payment = await core.authorise("EV-1", 5000, incremental=True)
            body = payment.to_json()
            assert (body["incremental"], body["authorized_amount"]) == (True, 5000)
            assert body["card_support"] == {
                "incremental_authorization_supported": True,
                "overcapture_supported": False,
                "extended_authorization_requested": False,
            }
            intent = stripe_emulator.emulator.payment_intents.get(payment.payment_intent or "")
            assert intent.request_incremental_authorization_support is True  # asked on the create

            asked = {"payment_id": payment.payment_id, "increment_id": "EV-1-I1", "amount": 6000}
            pending = await core.service.increment(asked)
            assert [(i.increment_id, i.state) for i in pending.increments] == [("EV-1-I1", IncrementState.PENDING)]
            await until_increment(core, "EV-1-I1", IncrementState.SUCCEEDED)
            assert core.payment(payment.payment_id).authorised_amount == 6000
            again = await core.service.increment(asked)  # the POS asking again: the same increment
            assert [i.increment_id for i in again.increments] == ["EV-1-I1"]

            await core.service.increment({"payment_id": payment.payment_id, "increment_id": "EV-1-I2", "amount": 8000})
            await until_increment(core, "EV-1-I2", IncrementState.SUCCEEDED)

            stripe_emulator.emulator.decline_increments(1, "insufficient_funds")
            await core.service.increment({"payment_id": payment.payment_id, "increment_id": "EV-1-I3", "amount": 9500})
            await until_increment(core, "EV-1-I3", IncrementState.DECLINED)
            after = core.payment(payment.payment_id)
            assert (after.state, after.authorised_amount) == (State.AUTHORIZED, 8000)  # the old hold stays
            declined = after.to_json()["increments"][2]
            assert (declined["state"], declined["decline"]["decline_code"]) == ("declined", "insufficient_funds")
            assert told(core, "EV-1-I3") == ["pending", "declined"]
            told_payment = next(
                e.data["payment"] for e in core.seen if e.type == "increment.updated" and e.data["state"] == "declined"
            )
            assert (told_payment["state"], told_payment["authorized_amount"]) == ("authorized", 8000)

            with pytest.raises(InvalidRequest) as too_much:
                await core.service.capture(payment.payment_id, 8001)
            assert too_much.value.field == "amount"
            await core.service.capture(payment.payment_id, 7340)
            captured = await core.until_state(payment.payment_id, State.CAPTURED)
            assert captured.captured_amount == 7340

            increments = core.journal("payment_intent.increment_authorization")
            assert [(e.amount, e.idempotency_key) for e in increments] == [
                (6000, f"{payment.payment_id}:increment:EV-1-I1"),
                (8000, f"{payment.payment_id}:increment:EV-1-I2"),
            ]
            assert [
                (e.amount, e.idempotency_key) for e in core.journal("payment_intent.increment_authorization.declined")
            ] == [(9500, f"{payment.payment_id}:increment:EV-1-I3")]
            assert [e.amount for e in core.journal("payment_intent.capture")] == [7340]

    run(scenario())


def test_increments_are_refused_clearly_and_change_nothing(stripe_emulator: EmulatorHandle, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            plain = await core.authorise("EV-2", 5000)
            with pytest.raises(RequestRefused) as not_asked:
                await core.service.increment({"payment_id": plain.payment_id, "increment_id": "I-A", "amount": 6000})
            assert not_asked.value.reason is Reason.UNSUPPORTED
            assert "incremental: true" in not_asked.value.message
            await core.service.cancel(plain.payment_id)

            # Discover increments only in restricted merchant categories: Stripe says the card cannot.
            discover = await core.authorise("EV-3", 5000, card="pm_card_present_discover", incremental=True)
            assert discover.card_support is not None
            assert discover.card_support.incremental_authorization_supported is False
            with pytest.raises(RequestRefused) as unsupported:
                await core.service.increment({"payment_id": discover.payment_id, "increment_id": "I-B", "amount": 6000})
            assert unsupported.value.reason is Reason.UNSUPPORTED
            assert "incremental_authorization_supported is false" in unsupported.value.message
            await core.service.cancel(discover.payment_id)

            payment = await core.authorise("EV-4", 5000, incremental=True)
            with pytest.raises(InvalidRequest) as not_above:
                await core.service.increment({"payment_id": payment.payment_id, "increment_id": "I-C", "amount": 5000})
            assert not_above.value.field == "amount"
            with pytest.raises(InvalidRequest) as no_id:
                await core.service.increment({"payment_id": payment.payment_id, "amount": 6000})
            assert no_id.value.field == "increment_id"
            with pytest.raises(RequestRefused) as missing:
                await core.service.increment({"payment_id": "pay_nope", "increment_id": "I-D", "amount": 6000})
            assert missing.value.reason is Reason.NOT_FOUND

            await core.service.increment({"payment_id": payment.payment_id, "increment_id": "I-E", "amount": 6000})
            with pytest.raises(RequestRefused) as other_amount:
                await core.service.increment({"payment_id": payment.payment_id, "increment_id": "I-E", "amount": 7000})
            assert other_amount.value.reason is Reason.IDEMPOTENCY_CONFLICT
            await until_increment(core, "I-E", IncrementState.SUCCEEDED)
            await core.service.capture(payment.payment_id)
            captured = await core.until_state(payment.payment_id, State.CAPTURED)
            assert captured.captured_amount == 6000  # a full capture takes the raised hold
            with pytest.raises(RequestRefused) as captured_already:
                await core.service.increment({"payment_id": payment.payment_id, "increment_id": "I-F", "amount": 7000})
            assert captured_already.value.reason is Reason.INVALID_STATE

            assert core.journal("payment_intent.increment_authorization") == [
                e for e in core.journal() if e.op.startswith("payment_intent.increment") and e.amount == 6000
            ]
            assert [e.idempotency_key for e in core.journal() if e.op.startswith("payment_intent.increment")] == [
                f"{payment.payment_id}:increment:I-E"
            ]

    run(scenario())


def test_a_capture_waits_for_an_increment_on_its_way(stripe_emulator: EmulatorHandle, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            payment = await core.authorise("EV-5", 5000, incremental=True)
            rule = stripe_emulator.emulator.add_fault(
                {"method": "POST", "path": "/increment_authorization$", "action": "delay_during", "seconds": 0.5}
            )
            await core.service.increment({"payment_id": payment.payment_id, "increment_id": "I-G", "amount": 7000})
            with pytest.raises(RequestRefused) as busy:
                await core.service.capture(payment.payment_id, 6500)
            assert (busy.value.reason, busy.value.retryable) == (Reason.BUSY, True)
            assert await asyncio.to_thread(stripe_emulator.emulator.faults.wait_fired, rule, 1, 10.0)
            await until_increment(core, "I-G", IncrementState.SUCCEEDED)
            await core.service.capture(payment.payment_id, 6500)
            assert (await core.until_state(payment.payment_id, State.CAPTURED)).captured_amount == 6500

    run(scenario())


def test_a_cancel_before_the_increment_is_sent_fails_the_increment(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            payment = await core.authorise("EV-6", 5000, incremental=True)
            stripe_emulator.emulator.add_fault(
                {"method": "POST", "path": "/increment_authorization$", "action": "down"}
            )
            await core.service.increment({"payment_id": payment.payment_id, "increment_id": "I-H", "amount": 7000})
            await core.service.cancel(payment.payment_id)
            stripe_emulator.emulator.faults.clear()
            await core.until_state(payment.payment_id, State.CANCELED)
            await until_increment(core, "I-H", IncrementState.FAILED, IncrementState.SUCCEEDED)
            await core.until_queue_empty()
            intent = stripe_emulator.emulator.payment_intents.get(payment.payment_intent or "")
            assert intent.status == "canceled"  # whatever the increment did, the hold is released

    run(scenario())


def test_an_extended_authorisation_holds_as_long_as_stripe_says(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            now = stripe_emulator.emulator.clock.now()
            extended = await core.authorise("EX-1", 5000, card="pm_card_present_mastercard", extended=True)
            assert extended.card_support is not None
            assert extended.card_support.extended_authorization_requested is True
            assert extended.capture_before is not None
            assert extended.capture_before - now >= 30 * DAY - 60
            intent = stripe_emulator.emulator.payment_intents.get(extended.payment_intent or "")
            assert intent.request_extended_authorization is True
            # Visa extends only in restricted merchant categories: Stripe's standard window, said as it is.
            standard = await core.authorise("EX-2", 5000, extended=True)
            assert standard.capture_before is not None
            assert standard.capture_before - now < 5 * DAY

    run(scenario())


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"incremental": "yes"}, "incremental"),
        ({"incremental": True, "capture": "automatic"}, "incremental"),
        ({"extended": True, "offline": "prefer_online"}, "extended"),
        ({"incremental": True, "payment_intent_client_secret": "pi_1_secret_abc"}, "incremental"),
    ],
)
def test_payment_start_refuses_flexible_options_that_cannot_mean_anything(
    stripe_emulator: EmulatorHandle, tmp_path: Path, options: dict[str, object], field: str
) -> None:
    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            with pytest.raises(InvalidRequest) as refused:
                await core.service.start({"order_id": "EX-3", "amount": 1000, "currency": "usd", **options})
            assert refused.value.field == field
            assert core.store.payment_by_order("EX-3") is None

    run(scenario())


def test_a_store_from_before_flexible_authorisations_migrates(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript("".join(MIGRATIONS[:4]) + "\nPRAGMA user_version=4;")
    request = '{"order_id": "OLD-1", "amount": 1200, "currency": "usd", "description": null, "metadata": {},' + (
        ' "capture": "manual", "confirm": false, "offline": "require_online", "payment_intent_client_secret": null}'
    )
    old.execute(
        "INSERT INTO payments (payment_id, order_id, request, state, payment_intent, captured_amount, created_at,"
        " updated_at) VALUES ('pay_old', 'OLD-1', ?, 'authorized', 'pi_old', 0, 1.0, 1.0)",
        (request,),
    )
    old.commit()
    old.close()
    store = Store.open(path)
    try:
        assert store.pragma("user_version") == len(MIGRATIONS)
        payment = store.payment("pay_old")
        assert payment is not None
        assert (payment.request.incremental, payment.request.extended) == (False, False)
        assert (payment.incremented_to, payment.card_support, payment.increments) == (None, None, ())
        assert payment.authorised_amount == 1200
        assert payment.to_json()["authorized_amount"] == 1200
    finally:
        store.close()
