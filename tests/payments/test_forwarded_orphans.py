"""A payment a reader forwarded that no payment here waits for (the daemon died between the reader
storing it and the host recording it): its authorisation is released at Stripe, once, and said
loudly; a forwarded PaymentIntent that is not the reader's is left alone. Real store, the real
gateway (stripe-python) over HTTP to the emulator."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
import stripe
from conftest import TEST_KEY, EmulatorHandle, make_client
from support.emulator_fidelity import authorise

from readerhost.daemon.payments.gateway import GatewaySettings, StripeGateway
from readerhost.daemon.payments.sdk_offline import ForwardedPayments
from readerhost.daemon.payments.store import Store

# The daemon's terminal_id (the orphans' checks never read it: no payment here waits for them).
TERMINAL = "kiosk-1"


def forwarding(tmp_path: Path, url: str) -> tuple[ForwardedPayments, Store]:
    store = Store.open(tmp_path / "store.db")
    gateway = StripeGateway(GatewaySettings(TEST_KEY, api_base=url, max_network_retries=0))
    return ForwardedPayments(store, gateway.retrieve_intent, gateway.cancel_intent, TERMINAL), store


class Said(logging.Handler):
    """Sets an event at each record the forwarded-payment checks log (they log once each, when done)."""

    def __init__(self, event: asyncio.Event) -> None:
        super().__init__(logging.CRITICAL)
        self.event = event

    def emit(self, record: logging.LogRecord) -> None:
        self.event.set()


async def told(payments: ForwardedPayments, offline_ref: str, payment_intent: str) -> None:
    """FORWARDED heard; returns once its check has said what it did (bounded)."""
    done = asyncio.Event()
    said = Said(done)
    logger = logging.getLogger("readerhost.daemon.payments.sdk_offline")
    logger.addHandler(said)
    try:
        payments.tell(offline_ref, payment_intent)
        async with asyncio.timeout(10):
            await done.wait()
    finally:
        logger.removeHandler(said)
    await payments.close()


def test_an_authorisation_forwarded_for_no_payment_here_is_released_once(
    tmp_path: Path, stripe_emulator: EmulatorHandle, caplog: pytest.LogCaptureFixture
) -> None:
    client: stripe.StripeClient = make_client(stripe_emulator.url)
    held = authorise(client, 1800, metadata={"offline_ref": "off_7"})
    payments, store = forwarding(tmp_path, stripe_emulator.url)
    try:
        with caplog.at_level(logging.CRITICAL, logger="readerhost.daemon.payments.sdk_offline"):
            asyncio.run(told(payments, "off_7", held.id))
            # The reader repeats FORWARDED on its next connect: the same cancel, under the same key.
            asyncio.run(told(payments, "off_7", held.id))
    finally:
        store.close()
    assert client.v1.payment_intents.retrieve(held.id).status == "canceled"
    cancels = [e for e in stripe_emulator.emulator.journal_entries() if e.op == "payment_intent.cancel"]
    assert [(e.object, e.idempotency_key) for e in cancels] == [(held.id, f"readerhost-orphan-{held.id}")]
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2
    assert "no payment here waits for" in messages[0]
    assert "its authorisation is released" in messages[0]


def test_a_forwarded_payment_intent_that_is_not_the_readers_is_left_alone(
    tmp_path: Path, stripe_emulator: EmulatorHandle, caplog: pytest.LogCaptureFixture
) -> None:
    client: stripe.StripeClient = make_client(stripe_emulator.url)
    other = authorise(client, 900, metadata={"offline_ref": "off_other"})
    payments, store = forwarding(tmp_path, stripe_emulator.url)
    try:
        with caplog.at_level(logging.CRITICAL, logger="readerhost.daemon.payments.sdk_offline"):
            asyncio.run(told(payments, "off_8", other.id))
    finally:
        store.close()
    assert client.v1.payment_intents.retrieve(other.id).status == "requires_capture"
    assert "not touched" in caplog.records[0].getMessage()
