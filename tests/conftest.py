"""Fixtures shared by the whole suite: a Stripe emulator per test, stripe-python pointed at it, and
every daemon's socket traffic checked against docs/protocol/ (tests/support/protocol_check.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import stripe
from hypothesis import HealthCheck, settings
from support.protocol_check import ProtocolCheck, Traffic, tap_line_clients, tap_relays, tap_server

from readerhost.sim.stripe_emulator import StripeEmulator, running_emulator

# Property tests judge behaviour, not speed: on a loaded or slow machine (a Pi, a busy CI runner)
# neither an example's time nor the time to generate inputs may fail them.
settings.register_profile("readerhost", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("readerhost")

TEST_KEY = "sk_test_readerhost_emulator"


@dataclass(frozen=True)
class EmulatorHandle:
    url: str
    emulator: StripeEmulator


@pytest.fixture
def stripe_emulator() -> Iterator[EmulatorHandle]:
    """A fresh emulator on 127.0.0.1, with search reading after write (tests that need lag set it)."""
    with running_emulator(search_lag_s=0) as (url, emulator):
        yield EmulatorHandle(url, emulator)


def make_client(url: str, *, retries: int = 0, read_timeout: float = 5.0) -> stripe.StripeClient:
    """stripe-python as the daemon uses it: RequestsClient with explicit timeouts, explicit retries."""
    return stripe.StripeClient(
        TEST_KEY,
        base_addresses={"api": url},
        http_client=stripe.RequestsClient(timeout=(2.0, read_timeout)),
        max_network_retries=retries,
    )


@pytest.fixture
def client(stripe_emulator: EmulatorHandle) -> stripe.StripeClient:
    """A client that does not retry: each call is exactly one HTTP request."""
    return make_client(stripe_emulator.url)


@pytest.fixture
def retrying_client(stripe_emulator: EmulatorHandle) -> stripe.StripeClient:
    """A client that retries network errors, 409s and 5xx twice, reusing one idempotency key."""
    return make_client(stripe_emulator.url, retries=2)


@pytest.fixture(scope="session")
def protocol_check() -> ProtocolCheck:
    """The committed OpenRPC document and JSON Schemas (docs/protocol/), ready to judge messages."""
    return ProtocolCheck.load()


@pytest.fixture(autouse=True)
def protocol_traffic(monkeypatch: pytest.MonkeyPatch, protocol_check: ProtocolCheck) -> Iterator[Traffic]:
    """Every message a test's daemons exchange on their sockets; a test whose traffic does not match
    the protocol's description fails (at its teardown), naming each mismatch."""
    traffic = Traffic()
    tap_server(monkeypatch, traffic)
    tap_line_clients(monkeypatch, traffic)
    tap_relays(monkeypatch, traffic)
    yield traffic
    mismatches = protocol_check.mismatches(traffic.exchanges)
    if mismatches:
        shown = "\n  ".join(mismatches[:20])
        more = f"\n  ... and {len(mismatches) - 20} more" if len(mismatches) > 20 else ""
        pytest.fail(f"{len(mismatches)} protocol message(s) do not match docs/protocol/:\n  {shown}{more}")
