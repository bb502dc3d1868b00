"""One synced commit per state the POS is told: an operation sent at once has its first attempt
committed with the change that queues it (docs/payments.md, "One sync per step"), and a crash
between that commit and the send errs only on the careful side."""

from __future__ import annotations

from pathlib import Path

from conftest import TEST_KEY, EmulatorHandle
from support.payments_core import run, running_core
from support.scripted_reader import ScriptedReader

from readerhost.daemon.payments.events import EventHub
from readerhost.daemon.payments.gateway import GatewaySettings, StripeGateway
from readerhost.daemon.payments.model import OpStatus, State
from readerhost.daemon.payments.service import PaymentService, ServiceSettings
from readerhost.daemon.payments.store import Store
from readerhost.daemon.payments.worker import Worker


def test_each_request_of_a_payment_is_sent_on_the_attempt_committed_with_its_state(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            payment = await core.authorise("S-1")
            await core.service.capture(payment.payment_id)
            await core.until_state(payment.payment_id, State.CAPTURED)
            ops = core.store.operations_of(payment.payment_id)
            assert [(op.kind, op.status, op.attempts) for op in ops] == [
                ("create", OpStatus.DONE, 1),
                ("confirm", OpStatus.DONE, 1),
                ("capture", OpStatus.DONE, 1),
            ]
            # The first send's time is the commit that queued it: no later commit marked the attempt.
            assert all(op.key_first_sent_at == op.created_at for op in ops)
            history = core.store.history(payment.payment_id)
            assert [entry.to_state for entry in history] == [
                State.CREATING,
                State.COLLECTING,
                State.PROCESSING,
                State.AUTHORIZED,
                State.CAPTURING,
                State.CAPTURED,
            ]
            sent = [e.idempotency_key for e in core.journal() if e.op.startswith("payment_intent.")]
            assert sent == [op.idempotency_key for op in ops]  # each once

    run(scenario())


def test_a_cancel_before_the_send_drops_the_create_whose_attempt_was_committed_ahead(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            # Both in one step of the event loop: the worker has not taken the create yet.
            payment = await core.service.start({"order_id": "S-2", "amount": 1000, "currency": "usd"})
            (create,) = core.store.operations_of(payment.payment_id)
            assert (create.attempts, core.worker.may_have_sent(create)) == (1, False)
            canceled = await core.service.cancel(payment.payment_id)
            assert canceled.state is State.CANCELED
            await core.until_queue_empty()
            ops = core.store.operations_of(payment.payment_id)
            assert [(op.kind, op.status) for op in ops] == [("create", OpStatus.DROPPED)]  # no cancel behind it
            assert core.journal("payment_intent.create") == []

    run(scenario())


def test_killed_after_the_commit_that_queued_the_create_before_sending_it(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    db = tmp_path / "store.db"

    async def killed_before_the_send() -> str:
        # The daemon's own code commits the payment and its create; its worker never runs, as when
        # the process dies right after that commit.
        store = Store.open(db)
        gateway = StripeGateway(GatewaySettings(api_key=TEST_KEY, api_base=stripe_emulator.url))
        events = EventHub()
        worker = Worker(store, gateway, events)
        service = PaymentService(store, worker, ScriptedReader(), events, ServiceSettings("kiosk-1"))
        payment = await service.start({"order_id": "S-3", "amount": 1000, "currency": "usd"})
        await service.close()
        store.close()
        return payment.payment_id

    payment_id = run(killed_before_the_send())

    async def restarted() -> None:
        async with running_core(stripe_emulator, db) as core:
            (create, *_) = core.store.operations_of(payment_id)
            assert core.worker.may_have_sent(create)  # the store cannot tell: the careful reading
            assert core.payment(payment_id).state is State.CANCELED  # the customer interaction is gone
            await core.until_queue_empty()
            created = core.journal("payment_intent.create")
            assert [c.idempotency_key for c in created] == ["readerhost:kiosk-1:S-3:1:create"]
            assert [(c.object, c.status) for c in core.journal("payment_intent.cancel")] == [
                (created[0].object, "canceled")
            ]
            assert core.payment(payment_id).state is State.CANCELED

    run(restarted())
