"""Reconciliation with orders paid again: an authorisation still open at Stripe for an attempt that is
over here (its cancel not through yet) is canceled, never captured, when its order was paid by another
attempt or closed as paid another way (payment.close), even when the POS lists the order completed."""

from __future__ import annotations

from pathlib import Path

from conftest import EmulatorHandle, make_client
from support.payments_core import Core, run, running_core

from readerhost.daemon.payments.gateway import GatewaySettings, StripeGateway
from readerhost.daemon.payments.model import PaidBy, State
from readerhost.daemon.payments.reconcile import Reconciler


def reconciler(core: Core) -> Reconciler:
    gateway = StripeGateway(GatewaySettings(api_key="sk_test_reconcile", api_base=core.emulator.url))
    return Reconciler(core.store, gateway, core.service, "kiosk-1", grace_s=0)


async def canceled_here_still_authorised_at_stripe(core: Core, order_id: str) -> str:
    """An authorised attempt the POS canceled while Stripe's cancel endpoint was gone: canceled here,
    its PaymentIntent still `requires_capture` at Stripe, its cancel waiting in the outbox."""
    core.emulator.emulator.add_fault({"method": "POST", "path": r"/cancel$", "action": "down"})
    payment = await core.authorise(order_id)
    canceled = await core.service.cancel(payment.payment_id)
    assert canceled.state is State.CANCELED
    intent = make_client(core.emulator.url).v1.payment_intents.retrieve(payment.payment_intent or "")
    assert intent.status == "requires_capture"
    return payment.payment_id


def test_an_open_authorisation_of_a_closed_order_is_canceled_not_captured(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            first = await canceled_here_still_authorised_at_stripe(core, "R-1")
            core.service.close_order("R-1", PaidBy.OTHER)  # the customer paid in cash
            report = await reconciler(core).run(completed_order_ids=["R-1"], dry_run=False)
            assert report.to_capture == []
            assert [(f.payment_id, f.reason) for f in report.to_cancel] == [
                (first, "order closed as paid other (payment.close)")
            ]
            stripe_emulator.emulator.faults.clear()
            await core.until_queue_empty()
            intent_id = core.payment(first).payment_intent or ""
            intent = make_client(stripe_emulator.url).v1.payment_intents.retrieve(intent_id)
            assert intent.status == "canceled"
            assert core.journal("payment_intent.capture") == []

    run(scenario())


def test_an_open_authorisation_of_an_earlier_attempt_is_canceled_and_the_paying_attempt_captured(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            first = await canceled_here_still_authorised_at_stripe(core, "R-2")
            second = await core.authorise("R-2")
            assert second.order_attempt == 2
            report = await reconciler(core).run(completed_order_ids=["R-2"], dry_run=False)
            assert [f.payment_id for f in report.to_capture] == [second.payment_id]
            [canceled] = report.to_cancel
            assert canceled.payment_id == first
            # Authorized, or capturing once this run queued its capture (the listing's order decides).
            assert canceled.reason.startswith(f"order paid by its attempt 2 ({second.payment_id}, ")
            stripe_emulator.emulator.faults.clear()
            await core.until_state(second.payment_id, State.CAPTURED)
            await core.until_queue_empty()
            stripe = make_client(stripe_emulator.url)
            assert stripe.v1.payment_intents.retrieve(core.payment(first).payment_intent or "").status == "canceled"
            assert [e.object for e in core.journal("payment_intent.capture")] == [second.payment_intent]

    run(scenario())
