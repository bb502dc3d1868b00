"""A PaymentIntent the POS backend created, handed over by its client secret."""

from __future__ import annotations

from pathlib import Path

from conftest import EmulatorHandle, make_client
from support.payments_core import run, running_core

from readerhost.daemon.payments.model import State


def backend_intent(emulator: EmulatorHandle, amount: int) -> tuple[str, str]:
    intent = make_client(emulator.url).v1.payment_intents.create(
        params={
            "amount": amount,
            "currency": "usd",
            "allowed_payment_method_types": ["card_present"],
            "capture_method": "manual",
            "metadata": {"cart": "42"},
        }
    )
    assert intent.client_secret is not None
    return intent.id, intent.client_secret


def test_an_adopted_payment_intent_gets_our_metadata_and_is_used_not_recreated(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    intent_id, secret = backend_intent(stripe_emulator, 2500)

    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            payment = await core.service.start(
                {"order_id": "P-1", "amount": 2500, "currency": "usd", "payment_intent_client_secret": secret}
            )
            await core.until_collecting()
            core.reader.present("pm_card_present_visa")
            authorised = await core.until_state(payment.payment_id, State.AUTHORIZED)
            assert authorised.payment_intent == intent_id
            assert len(core.journal("payment_intent.create")) == 1  # the backend's, none of ours
            updates = core.journal("payment_intent.update")
            assert [u.object for u in updates] == [intent_id]
            assert updates[0].metadata == {
                "cart": "42", "order_id": "P-1", "terminal_id": "kiosk-1", "payment_id": payment.payment_id,
            }  # fmt: skip

    run(scenario())


def test_an_adopted_payment_intent_for_another_amount_fails_before_the_card(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    _, secret = backend_intent(stripe_emulator, 999)

    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            payment = await core.service.start(
                {"order_id": "P-2", "amount": 2500, "currency": "usd", "payment_intent_client_secret": secret}
            )
            failed = await core.until_state(payment.payment_id, State.FAILED)
            assert failed.error is not None
            assert "999" in failed.error.message
            assert core.reader.collections == 0
            assert core.journal("payment_intent.confirm") == []
            assert core.journal("payment_intent.update") == []  # a PaymentIntent we cannot use is left as it was

    run(scenario())


def test_an_unknown_client_secret_fails_the_payment_without_a_card(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            secret = "pi_DoesNotExist0000000000_secret_abcdefghijklmnopqrstuvwxy"
            payment = await core.service.start(
                {"order_id": "P-3", "amount": 2500, "currency": "usd", "payment_intent_client_secret": secret}
            )
            failed = await core.until_state(payment.payment_id, State.FAILED)
            assert failed.error is not None
            assert failed.error.reason == "STRIPE_REFUSED"
            assert core.reader.collections == 0
            assert core.store.queue_stats().pending == 0
            assert core.journal() == []

    run(scenario())
