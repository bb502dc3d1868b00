"""A PaymentIntent the POS backend created, handed over by its client secret."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from conftest import EmulatorHandle, make_client
from support.payments_core import run, running_core

from readerhost.daemon.payments.model import Reason, State


def backend_intent(emulator: EmulatorHandle, amount: int, metadata: dict[str, str] | None = None) -> tuple[str, str]:
    intent = make_client(emulator.url).v1.payment_intents.create(
        params={
            "amount": amount,
            "currency": "usd",
            "allowed_payment_method_types": ["card_present"],
            "capture_method": "manual",
            "metadata": metadata or {"cart": "42"},
        }
    )
    assert intent.client_secret is not None
    return intent.id, intent.client_secret


def as_the_daemon_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Everything readerhost logs at its most verbose, and stripe-python as the daemon caps it
    (daemon/journal.py: its request bodies, at DEBUG, are never logged)."""
    caplog.set_level(logging.DEBUG, logger="readerhost")
    caplog.set_level(logging.INFO, logger="stripe")


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


def test_a_client_secret_not_the_payment_intents_fails_the_payment_and_changes_nothing_at_stripe(
    stripe_emulator: EmulatorHandle, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Only the PaymentIntent's own client secret hands it over: its `pi_` prefix names any
    PaymentIntent of the account, which a POS must not be able to take over by guessing."""
    intent_id, real = backend_intent(stripe_emulator, 2500)
    forged = f"{intent_id}_secret_Forged0000000000000000000"
    assert forged != real
    as_the_daemon_logs(caplog)

    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            payment = await core.service.start(
                {"order_id": "P-4", "amount": 2500, "currency": "usd", "payment_intent_client_secret": forged}
            )
            failed = await core.until_state(payment.payment_id, State.FAILED)
            assert failed.error is not None
            assert failed.error.reason is Reason.INVALID_STATE
            assert f"does not belong to PaymentIntent {intent_id}" in failed.error.message
            assert failed.payment_intent is None  # never taken over
            assert core.reader.collections == 0
            assert core.journal("payment_intent.update") == []
            assert core.journal("payment_intent.cancel") == []  # the backend's PaymentIntent is left alone
            intent = make_client(stripe_emulator.url).v1.payment_intents.retrieve(intent_id)
            assert (intent.status, intent.metadata.to_dict()) == ("requires_payment_method", {"cart": "42"})

    run(scenario())
    assert "_secret_" not in caplog.text  # neither secret is ever logged


def test_adoption_keeps_the_backends_metadata_and_adds_only_what_it_lacks(
    stripe_emulator: EmulatorHandle, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    intent_id, secret = backend_intent(stripe_emulator, 2500, {"cart": "42", "note": "from the backend"})
    as_the_daemon_logs(caplog)

    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            payment = await core.service.start(
                {
                    "order_id": "P-5",
                    "amount": 2500,
                    "currency": "usd",
                    "payment_intent_client_secret": secret,
                    "metadata": {"note": "from the POS", "lane": "3"},
                }
            )
            await core.until_collecting()
            assert core.payment(payment.payment_id).payment_intent == intent_id
            metadata = make_client(stripe_emulator.url).v1.payment_intents.retrieve(intent_id).metadata.to_dict()
            assert metadata == {
                "cart": "42",
                "note": "from the backend",  # never overwritten by the POS's value
                "lane": "3",
                "order_id": "P-5",
                "terminal_id": "kiosk-1",
                "payment_id": payment.payment_id,
            }

    run(scenario())
    assert secret not in caplog.text


@pytest.mark.parametrize(
    ("theirs", "adopted"),
    [({"order_id": "P-6"}, True), ({"order_id": "OTHER-1"}, False), ({"payment_id": "pay_someoneelse"}, False)],
    ids=["same-order", "other-order", "other-payment"],
)
def test_a_payment_intent_the_backend_gave_another_order_or_payment_is_not_taken_over(
    stripe_emulator: EmulatorHandle, tmp_path: Path, theirs: dict[str, str], adopted: bool
) -> None:
    intent_id, secret = backend_intent(stripe_emulator, 2500, theirs)

    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            payment = await core.service.start(
                {"order_id": "P-6", "amount": 2500, "currency": "usd", "payment_intent_client_secret": secret}
            )
            after = await core.until_state(payment.payment_id, State.COLLECTING, State.FAILED)
            assert (after.state is State.COLLECTING) is adopted
            if not adopted:
                assert after.error is not None
                assert after.error.reason is Reason.INVALID_STATE
                assert "belongs to another payment or order" in after.error.message
                assert core.journal("payment_intent.update") == []
                assert make_client(stripe_emulator.url).v1.payment_intents.retrieve(intent_id).metadata.to_dict() == (
                    theirs
                )

    run(scenario())
