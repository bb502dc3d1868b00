"""Fixtures for the Stripe emulator's fidelity tests: the emulator and its PaymentIntent API."""

from __future__ import annotations

import pytest
import stripe
from conftest import EmulatorHandle

from readerhost.sim.stripe_emulator import StripeEmulator


@pytest.fixture
def emulator(stripe_emulator: EmulatorHandle) -> StripeEmulator:
    """The in-process emulator object behind `stripe_emulator.url`."""
    return stripe_emulator.emulator


@pytest.fixture
def url(stripe_emulator: EmulatorHandle) -> str:
    return stripe_emulator.url


@pytest.fixture
def intents(client: stripe.StripeClient) -> stripe.PaymentIntentService:
    """PaymentIntents through a client that makes exactly one HTTP request per call."""
    return client.v1.payment_intents
