"""A daemon killed with SIGKILL mid-operation: a new process over the same file reaches the same end."""

from __future__ import annotations

from pathlib import Path

from conftest import EmulatorHandle
from support.killed_daemon import kill_when_in_flight
from support.payments_core import run, running_core

from readerhost.daemon.payments.model import State


def test_killed_during_capture_the_next_process_captures_once_with_the_same_key(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    db = tmp_path / "store.db"
    payment_id = kill_when_in_flight(stripe_emulator, db, "K-1", "capture", "/capture$")

    async def restarted() -> None:
        async with running_core(stripe_emulator, db) as core:
            assert core.payment(payment_id).state is State.CAPTURING
            captured = await core.until_state(payment_id, State.CAPTURED)
            assert captured.captured_amount == 1000
            captures = core.journal("payment_intent.capture")
            assert [c.idempotency_key for c in captures] == [f"{payment_id}:capture"]
            assert len(core.journal("payment_intent.create")) == 1

    run(restarted())


def test_killed_during_create_the_next_process_cancels_what_was_made(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    db = tmp_path / "store.db"
    payment_id = kill_when_in_flight(stripe_emulator, db, "K-2", "create", r"/v1/payment_intents$")

    async def restarted() -> None:
        async with running_core(stripe_emulator, db) as core:
            canceled = core.payment(payment_id)
            assert canceled.state is State.CANCELED  # the customer interaction is gone
            await core.until_queue_empty()
            created = core.journal("payment_intent.create")
            assert len(created) == 1
            assert [(c.object, c.status) for c in core.journal("payment_intent.cancel")] == [
                (created[0].object, "canceled")
            ]
            # The order may be paid again: a second attempt, with its own PaymentIntent under its own key.
            again = await core.service.start({"order_id": "K-2", "amount": 1000, "currency": "usd"})
            assert (again.payment_id != payment_id, again.order_attempt) == (True, 2)
            await core.until_state(again.payment_id, State.COLLECTING)
            creates = core.journal("payment_intent.create")
            assert [c.idempotency_key for c in creates] == [
                "readerhost:kiosk-1:K-2:1:create",
                "readerhost:kiosk-1:K-2:2:create",
            ]
            assert core.payment(payment_id).state is State.CANCELED

    run(restarted())
