"""The customer's bounded wait for Stripe ([payments] customer_wait_s): a payment that waits too long
in `creating` (or in `processing` without offline) fails with STRIPE_UNAVAILABLE and frees the
reader; whatever its create or confirm made at Stripe is learned, then canceled, under the
operation's own key (never a second PaymentIntent, never an authorisation left held).

Stripe's silence is the emulator's: `down` (connections reset) and `delay_during` (a request held,
its key in flight). Waits are on the core's events, with timeouts; the wait itself is short here.
"""

from __future__ import annotations

import time
from pathlib import Path

from conftest import EmulatorHandle, make_client
from support.payments_core import Core, run, running_core

from readerhost.daemon.payments.model import OpStatus, Reason, RequestRefused, State

WAIT_S = 0.6


def cancel_done(core: Core, payment_id: str) -> bool:
    return any(op.kind == "cancel" and op.status == OpStatus.DONE for op in core.store.operations_of(payment_id))


def confirms_served(core: Core) -> int:
    """The confirm requests that reached the emulator, answered or reset."""
    return sum(n for request, n in core.emulator.emulator.requests_served.items() if request.endswith("/confirm"))


def intents_of(core: Core, payment_id: str) -> list[str]:
    """The PaymentIntents Stripe made for this payment (its create's journal entries)."""
    return [e.object for e in core.journal("payment_intent.create") if e.metadata.get("payment_id") == payment_id]


def test_stripe_gone_at_the_create_fails_the_payment_within_the_wait_and_cancels_its_intent_once_back(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db", customer_wait_s=WAIT_S) as core:
            down = stripe_emulator.emulator.add_fault(
                {"method": "POST", "path": r"^/v1/payment_intents", "action": "down"}
            )
            began = time.monotonic()
            payment = await core.service.start({"order_id": "W-1", "amount": 1000, "currency": "usd"})
            failed = await core.until_state(payment.payment_id, State.FAILED, timeout=WAIT_S + 5)
            waited = time.monotonic() - began
            assert WAIT_S <= waited < WAIT_S + 2.0
            assert failed.error is not None
            assert failed.error.reason is Reason.STRIPE_UNAVAILABLE
            assert "did not answer within 0.6 s" in failed.error.message
            assert core.service.reader_holder() is None  # the reader is free: no BUSY for the next POS
            refused = None
            try:
                await core.service.start({"order_id": "W-2", "amount": 500, "currency": "usd"})
            except RequestRefused as error:
                refused = error.reason  # Stripe may count as unreachable by now: that is not BUSY
            assert refused is not Reason.BUSY
            assert down.fired >= 1
            assert intents_of(core, payment.payment_id) == []

            stripe_emulator.emulator.faults.clear()  # Stripe is back
            await core.until(lambda: cancel_done(core, payment.payment_id), what="the PaymentIntent's cancel")
            [intent_id] = intents_of(core, payment.payment_id)  # made once, under the create's own key
            [create] = [e for e in core.journal("payment_intent.create") if e.object == intent_id]
            assert not create.idempotency_key or ":r" not in create.idempotency_key
            assert make_client(stripe_emulator.url).v1.payment_intents.retrieve(intent_id).status == "canceled"
            assert core.payment(payment.payment_id).state is State.FAILED  # it stays what the POS was told
            assert core.states_told(payment.payment_id) == ["creating", "failed", "failed"]

    run(scenario())


def test_a_create_held_at_stripe_past_the_wait_makes_one_payment_intent_which_is_canceled(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with running_core(
            stripe_emulator, tmp_path / "store.db", customer_wait_s=WAIT_S, read_timeout_s=0.3
        ) as core:
            # The create is applied, but its answer comes after the wait; its key is in flight meanwhile.
            stripe_emulator.emulator.add_fault(
                {"method": "POST", "path": r"^/v1/payment_intents$", "action": "delay_during", "seconds": 2.0}
            )
            payment = await core.service.start({"order_id": "H-1", "amount": 1000, "currency": "usd"})
            await core.until_state(payment.payment_id, State.FAILED, timeout=WAIT_S + 5)
            await core.until(lambda: cancel_done(core, payment.payment_id), timeout=20, what="the cancel")
            [intent_id] = intents_of(core, payment.payment_id)
            assert len(core.journal("payment_intent.create")) == 1  # never a second PaymentIntent
            assert make_client(stripe_emulator.url).v1.payment_intents.retrieve(intent_id).status == "canceled"
            assert core.payment(payment.payment_id).payment_intent == intent_id

    run(scenario())


def test_a_confirm_held_past_the_wait_fails_the_payment_and_the_authorisation_is_released(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with running_core(
            stripe_emulator, tmp_path / "store.db", customer_wait_s=WAIT_S, read_timeout_s=0.3
        ) as core:
            payment = await core.service.start({"order_id": "P-1", "amount": 1000, "currency": "usd"})
            await core.until_collecting()
            # The confirm reaches Stripe and authorises, but only after the customer's wait.
            stripe_emulator.emulator.add_fault(
                {"method": "POST", "path": "/confirm$", "action": "delay_during", "seconds": 2.0}
            )
            core.reader.present("pm_card_present_visa")
            failed = await core.until_state(payment.payment_id, State.FAILED, timeout=WAIT_S + 5)
            assert failed.error is not None
            assert failed.error.reason is Reason.STRIPE_UNAVAILABLE
            # The cancel is queued, behind the confirm, in the same commit that said "failed".
            kinds = [(op.kind, op.status) for op in core.store.operations_of(payment.payment_id)]
            assert ("cancel", OpStatus.PENDING) in kinds or cancel_done(core, payment.payment_id)
            await core.until(lambda: cancel_done(core, payment.payment_id), timeout=20, what="the cancel")
            confirms = core.journal("payment_intent.confirm")
            assert [c.status for c in confirms] == ["requires_capture"]  # authorised once, never again
            assert [c.idempotency_key for c in confirms] == [f"{payment.payment_id}:confirm:1"]
            assert len(core.journal("payment_intent.cancel")) == 1
            intent = make_client(stripe_emulator.url).v1.payment_intents.retrieve(str(failed.payment_intent))
            assert intent.status == "canceled"  # the hold on the customer's card is released
            assert "authorized" not in core.states_told(payment.payment_id)

    run(scenario())


def test_a_payment_that_may_go_offline_is_stored_offline_rather_than_failed(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db", customer_wait_s=WAIT_S) as core:
            payment = await core.service.start(
                {"order_id": "O-1", "amount": 1000, "currency": "usd", "offline": "prefer_online"}
            )
            await core.until_collecting()
            stripe_emulator.emulator.add_fault({"method": "POST", "path": "/confirm$", "action": "down"})
            core.reader.present("pm_card_present_visa")
            await core.until_state(payment.payment_id, State.QUEUED_OFFLINE, timeout=WAIT_S + 5)
            stripe_emulator.emulator.faults.clear()
            authorised = await core.until_state(payment.payment_id, State.AUTHORIZED, timeout=20)
            assert authorised.error is None
            assert State.FAILED.value not in core.states_told(payment.payment_id)

    run(scenario())


def test_a_restart_after_the_wait_ran_out_still_cancels_what_the_create_made(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    async def scenario() -> None:
        db = tmp_path / "store.db"
        async with running_core(stripe_emulator, db, customer_wait_s=WAIT_S) as core:
            # The first create is applied at Stripe but its answer is lost; then Stripe is gone.
            stripe_emulator.emulator.add_fault(
                {"method": "POST", "path": r"^/v1/payment_intents$", "action": "reset_after", "times": 1}
            )
            stripe_emulator.emulator.add_fault({"method": "POST", "path": r"^/v1/payment_intents", "action": "down"})
            payment = await core.service.start({"order_id": "R-1", "amount": 1000, "currency": "usd"})
            await core.until_state(payment.payment_id, State.FAILED, timeout=WAIT_S + 5)
        # The daemon stops before Stripe answers; it comes back when Stripe does.
        stripe_emulator.emulator.faults.clear()
        async with running_core(stripe_emulator, db, customer_wait_s=WAIT_S) as core:
            await core.until(lambda: cancel_done(core, payment.payment_id), timeout=20, what="the cancel")
            [intent_id] = intents_of(core, payment.payment_id)
            assert len(core.journal("payment_intent.create")) == 1
            assert make_client(stripe_emulator.url).v1.payment_intents.retrieve(intent_id).status == "canceled"
            assert core.payment(payment.payment_id).state is State.FAILED

    run(scenario())


def test_an_interac_card_whose_confirm_may_capture_is_not_failed_but_waits_for_stripe(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    """A cancel cannot undo a capture: with a card captured as it is authorised, "failed" could hide
    money taken, so the payment outlives the customer's wait and ends as Stripe says."""

    async def scenario() -> None:
        async with running_core(
            stripe_emulator, tmp_path / "store.db", customer_wait_s=WAIT_S, read_timeout_s=0.3
        ) as core:
            payment = await core.service.start({"order_id": "I-1", "amount": 2500, "currency": "cad"})
            await core.until_collecting()
            stripe_emulator.emulator.add_fault(
                {"method": "POST", "path": "/confirm$", "action": "delay_during", "seconds": 2.0}
            )
            core.reader.present("pm_card_present_interac", "interac", "1933", "contact_emv")
            captured = await core.until_state(payment.payment_id, State.CAPTURED, State.FAILED, timeout=20)
            assert captured.state is State.CAPTURED
            assert captured.captured_amount == 2500
            assert "failed" not in core.states_told(payment.payment_id)
            assert core.journal("payment_intent.cancel") == []

    run(scenario())


def test_an_abandoned_confirm_whose_key_holds_a_saved_500_ends_at_the_next_look(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    """Found by the simulation (seed 404): the confirm met a 500 Stripe saved under its key, then the
    customer's wait ran out. Carried on under its own key, it only ever gets that 500 replayed: the
    request under the key has ended and can never succeed, so once the truth says nothing was
    authorised that is final, and the cancel behind it runs (it used to wait the key's 23 hours,
    re-sending the confirm at the backoff cap)."""

    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db", customer_wait_s=WAIT_S) as core:
            emulator = stripe_emulator.emulator
            saved = emulator.add_fault(
                {"method": "POST", "path": "/confirm$", "action": "error", "status": 500, "times": 1}
            )
            payment = await core.service.start({"order_id": "W-5", "amount": 1000, "currency": "usd"})
            await core.until_collecting()
            down = emulator.add_fault({"path": "^/v1/", "action": "down"})  # after the 500, silence
            core.reader.present("pm_card_present_visa", "visa", "4242")
            await core.until(lambda: saved.fired >= 1, what="the confirm's saved 500")
            await core.until_state(payment.payment_id, State.FAILED, timeout=WAIT_S + 5)
            before = confirms_served(core)
            emulator.faults.remove(down.id)  # Stripe is back: the confirm's key replays its 500
            await core.until(lambda: cancel_done(core, payment.payment_id), timeout=10.0, what="the cancel")
            [intent_id] = intents_of(core, payment.payment_id)
            assert confirms_served(core) - before <= 2  # its replay, then the look, and at most one more
            assert make_client(stripe_emulator.url).v1.payment_intents.retrieve(intent_id).status == "canceled"
            assert core.journal("payment_intent.confirm") == []  # nothing was ever authorised

    run(scenario())
