"""StripeGateway: the real stripe library, over real HTTP, against the emulator, one test per mapped answer."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import stripe
from conftest import TEST_KEY, EmulatorHandle
from support.emulator_fidelity import count_requests, wait_until

from readerhost.daemon.payments.gateway import GatewaySettings, StripeGateway, _intent_view, _outcome_of_error
from readerhost.daemon.payments.model import Card, CardSupport, Decline
from readerhost.daemon.payments.outcomes import (
    Declined,
    IntentView,
    KeyConflict,
    NotFound,
    Outcome,
    Refused,
    Succeeded,
    Unknown,
    WrongState,
)
from readerhost.sim.stripe_emulator import StripeEmulator
from readerhost.sim.stripe_emulator.journal import JournalEntry

CREATE_PATH = "^/v1/payment_intents$"
VISA = "pm_card_present_visa"
INSUFFICIENT_FUNDS = "pm_card_present_charge_declined_insufficient_funds"
SETTINGS = GatewaySettings(TEST_KEY, connect_timeout_s=2.0, read_timeout_s=5.0, max_network_retries=0)


def make_gateway(url: str, **changes: Any) -> StripeGateway:
    return StripeGateway(replace(SETTINGS, api_base=url, **changes))


@pytest.fixture
def emulator(stripe_emulator: EmulatorHandle) -> StripeEmulator:
    return stripe_emulator.emulator


@pytest.fixture
def gateway(stripe_emulator: EmulatorHandle) -> StripeGateway:
    """A gateway whose every call is exactly one HTTP request (no retries)."""
    return make_gateway(stripe_emulator.url)


def succeeded(outcome: Outcome) -> Succeeded:
    assert isinstance(outcome, Succeeded), outcome
    return outcome


def create(gateway: StripeGateway, amount: int = 1000, *, key: str = "order-1", **params: Any) -> Outcome:
    return gateway.create_intent(
        amount=amount,
        currency="usd",
        metadata=params.pop("metadata", {"order_id": key}),
        description=params.pop("description", None),
        idempotency_key=key,
        **params,
    )


def authorised(gateway: StripeGateway, amount: int = 1000, *, key: str = "order-1", pm: str = VISA) -> IntentView:
    intent = succeeded(create(gateway, amount, key=key)).intent
    confirmed = succeeded(gateway.confirm_intent(intent.id, pm, f"{key}-confirm")).intent
    assert confirmed.status == "requires_capture"
    return confirmed


def ops(emulator: StripeEmulator, op: str) -> list[JournalEntry]:
    return [entry for entry in emulator.journal_entries() if entry.op == f"payment_intent.{op}"]


# -- 2xx ----------------------------------------------------------------------------------------


def test_create_is_card_present_manual_and_keyed(
    gateway: StripeGateway, client: stripe.StripeClient, emulator: StripeEmulator
) -> None:
    outcome = succeeded(create(gateway, 2500, key="order-A1", metadata={"order_id": "A1"}, description="Locker 4"))

    view = outcome.intent
    assert outcome.replayed is False
    assert (view.status, view.amount, view.currency, view.metadata) == (
        "requires_payment_method",
        2500,
        "usd",
        {"order_id": "A1"},
    )
    assert (view.amount_capturable, view.amount_received, view.card, view.last_decline) == (0, 0, None, None)
    at_stripe = client.v1.payment_intents.retrieve(view.id)
    assert (at_stripe.payment_method_types, at_stripe.capture_method) == (["card_present"], "manual")
    assert at_stripe.description == "Locker 4"
    assert view.created == at_stripe.created
    [entry] = ops(emulator, "create")
    assert (entry.object, entry.idempotency_key) == (view.id, "order-A1")


def test_the_same_key_again_is_a_replayed_success(gateway: StripeGateway, emulator: StripeEmulator) -> None:
    first = succeeded(create(gateway, key="order-2"))
    again = succeeded(create(gateway, key="order-2"))

    assert (again.intent.id, again.replayed, first.replayed) == (first.intent.id, True, False)
    assert len(ops(emulator, "create")) == 1


def test_confirm_reads_the_card_and_the_capture_deadline(gateway: StripeGateway, client: stripe.StripeClient) -> None:
    intent = succeeded(create(gateway, 1000)).intent

    view = succeeded(gateway.confirm_intent(intent.id, "pm_card_present_visa__contact_emv", "confirm-1")).intent

    assert (view.status, view.amount_capturable) == ("requires_capture", 1000)
    assert view.card == Card(brand="visa", last4="4242", read_method="contact_emv", network="visa")
    charge = client.v1.payment_intents.retrieve(intent.id, {"expand": ["latest_charge"]}).latest_charge
    assert isinstance(charge, stripe.Charge)
    assert charge.payment_method_details is not None
    assert charge.payment_method_details.card_present is not None
    deadline = charge.payment_method_details.card_present.capture_before
    assert deadline is not None
    assert view.capture_before == deadline
    assert view.created < deadline  # 4 days 18 hours for Visa


def test_capture_part_of_the_authorisation(gateway: StripeGateway, emulator: StripeEmulator) -> None:
    intent = authorised(gateway, 1000)

    view = succeeded(gateway.capture_intent(intent.id, 600, "capture-1")).intent

    assert (view.status, view.amount_received, view.amount_capturable) == ("succeeded", 600, 0)
    assert view.card is not None
    assert [entry.amount for entry in ops(emulator, "capture")] == [600]


def test_cancel_with_a_reason(gateway: StripeGateway) -> None:
    intent = authorised(gateway, 1000)

    view = succeeded(gateway.cancel_intent(intent.id, "abandoned", "cancel-1")).intent

    assert (view.status, view.cancellation_reason) == ("canceled", "abandoned")


def test_update_metadata_merges(gateway: StripeGateway) -> None:
    intent = succeeded(create(gateway, metadata={"order_id": "A1", "lane": "2"})).intent

    view = succeeded(gateway.update_metadata(intent.id, {"lane": "", "attempt": "2"}, "update-1")).intent

    assert view.metadata == {"order_id": "A1", "attempt": "2"}


def test_an_unexpanded_latest_charge_gives_no_card(gateway: StripeGateway, client: stripe.StripeClient) -> None:
    intent = authorised(gateway, 1000)
    plain = client.v1.payment_intents.retrieve(intent.id)  # latest_charge is the charge's id
    assert isinstance(plain.latest_charge, str)

    view = _intent_view(plain)

    assert (view.id, view.status, view.card, view.capture_before) == (intent.id, "requires_capture", None, None)


# -- client secrets -----------------------------------------------------------------------------


def test_retrieve_by_client_secret(gateway: StripeGateway, client: stripe.StripeClient) -> None:
    intent = authorised(gateway, 1000)
    secret = client.v1.payment_intents.retrieve(intent.id).client_secret
    assert secret is not None

    view = succeeded(gateway.retrieve_by_client_secret(secret)).intent

    assert (view.id, view.status, view.card) == (intent.id, "requires_capture", intent.card)


@pytest.mark.parametrize(
    "secret",
    ["", "pi_123", "_secret_abc", "pi__secret_abc", "pi_123_secret_", "ch_123_secret_abc", "pi_1/../x_secret_abc"],
)
def test_a_malformed_client_secret_is_refused_without_a_request(
    gateway: StripeGateway, emulator: StripeEmulator, secret: str
) -> None:
    counter = count_requests(emulator, "GET", ".*")

    outcome = gateway.retrieve_by_client_secret(secret)

    assert isinstance(outcome, Refused)
    assert outcome.param == "payment_intent_client_secret"
    assert counter.fired == 0


def test_a_client_secret_of_another_payment_intent_is_refused(gateway: StripeGateway) -> None:
    intent = succeeded(create(gateway)).intent

    outcome = gateway.retrieve_by_client_secret(f"{intent.id}_secret_forged0000000000000000")

    assert isinstance(outcome, Refused)
    assert outcome.param == "payment_intent_client_secret"
    assert intent.id in outcome.message


# -- 4xx ----------------------------------------------------------------------------------------


def test_a_decline_is_declined_with_the_payment_intent(gateway: StripeGateway, emulator: StripeEmulator) -> None:
    intent = succeeded(create(gateway, 1000)).intent

    outcome = gateway.confirm_intent(intent.id, INSUFFICIENT_FUNDS, "confirm-1")

    assert isinstance(outcome, Declined)
    assert outcome.decline == Decline("card_declined", "insufficient_funds", "Your card has insufficient funds.")
    assert outcome.intent is not None
    assert (outcome.intent.id, outcome.intent.status, outcome.intent.card) == (
        intent.id,
        "requires_payment_method",
        None,
    )
    assert outcome.intent.last_decline == outcome.decline
    assert [entry.status for entry in ops(emulator, "confirm")] == ["requires_payment_method"]


def test_capturing_twice_is_wrong_state(gateway: StripeGateway, emulator: StripeEmulator) -> None:
    intent = authorised(gateway, 1000)
    succeeded(gateway.capture_intent(intent.id, None, "capture-1"))

    outcome = gateway.capture_intent(intent.id, None, "capture-2")

    assert isinstance(outcome, WrongState)
    assert "succeeded" in outcome.message
    assert outcome.intent is not None
    assert (outcome.intent.id, outcome.intent.status, outcome.intent.amount_received) == (intent.id, "succeeded", 1000)
    assert outcome.intent.card == intent.card  # the embedded PaymentIntent is expanded too
    assert len(ops(emulator, "capture")) == 1


def test_an_unknown_payment_intent_is_not_found(gateway: StripeGateway) -> None:
    assert isinstance(gateway.retrieve_intent("pi_doesnotexist000000000000"), NotFound)
    assert isinstance(gateway.capture_intent("pi_doesnotexist000000000000", None, "capture-1"), NotFound)


def test_an_unknown_payment_method_is_refused_not_not_found(gateway: StripeGateway) -> None:
    """Stripe says resource_missing (400) for a missing object in the body: the PaymentIntent exists."""
    intent = succeeded(create(gateway)).intent

    outcome = gateway.confirm_intent(intent.id, "pm_nosuchmethod", "confirm-1")

    assert isinstance(outcome, Refused)
    assert (outcome.code, outcome.param, outcome.authentication) == ("resource_missing", "payment_method", False)


def test_an_invalid_request_is_refused_with_code_and_param(gateway: StripeGateway, emulator: StripeEmulator) -> None:
    intent = authorised(gateway, 1000)

    outcome = gateway.capture_intent(intent.id, 1500, "capture-1")

    assert isinstance(outcome, Refused)
    assert (outcome.code, outcome.param, outcome.authentication) == ("amount_too_large", "amount_to_capture", False)
    assert ops(emulator, "capture") == []


def test_an_empty_intent_id_is_refused_without_a_request(gateway: StripeGateway, emulator: StripeEmulator) -> None:
    counter = count_requests(emulator, "POST", ".*")

    outcome = gateway.capture_intent("", None, "capture-1")

    assert isinstance(outcome, Refused)
    assert outcome.param == "intent"
    assert counter.fired == 0


def test_the_same_key_with_other_parameters_is_a_key_conflict(gateway: StripeGateway, emulator: StripeEmulator) -> None:
    succeeded(create(gateway, 1000, key="order-3"))

    outcome = create(gateway, 1200, key="order-3")

    assert isinstance(outcome, KeyConflict)
    assert "order-3" in outcome.message
    assert len(ops(emulator, "create")) == 1


def test_a_bad_key_is_refused_as_authentication_without_showing_it(
    stripe_emulator: EmulatorHandle, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bad_key = "sk_live_readerhost_wrongkey_9876"
    gateway = make_gateway(stripe_emulator.url, api_key=bad_key)

    outcome = create(gateway, key="order-401")

    assert isinstance(outcome, Refused)
    assert outcome.authentication is True
    assert "401" in outcome.message
    assert "STRIPE_API_KEY" in outcome.message
    assert "9876" not in outcome.message  # not even the tail Stripe shows
    assert bad_key not in caplog.text
    assert "Refused" in caplog.text
    assert stripe_emulator.emulator.journal_entries() == []


# -- 429, 409, 5xx ------------------------------------------------------------------------------


def test_a_429_is_unknown_rate_limited(gateway: StripeGateway, emulator: StripeEmulator) -> None:
    emulator.add_fault({"method": "POST", "path": CREATE_PATH, "action": "rate_limit"})

    outcome = create(gateway, key="order-429")

    assert isinstance(outcome, Unknown)
    assert (outcome.rate_limited, outcome.unreachable, outcome.replayed_server_error) == (True, False, False)
    assert emulator.journal_entries() == []


def test_a_key_in_flight_is_unknown(gateway: StripeGateway, emulator: StripeEmulator) -> None:
    rule = emulator.add_fault({"method": "POST", "path": CREATE_PATH, "action": "delay_during", "seconds": 1})
    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(create, gateway, key="order-409")
        wait_until(lambda: rule.fired == 1, what="the first create to hold its key")

        outcome = create(gateway, key="order-409")

        created = succeeded(first.result(timeout=10))

    assert isinstance(outcome, Unknown)
    assert "409" in outcome.message
    assert (outcome.rate_limited, outcome.unreachable, outcome.replayed_server_error) == (False, False, False)
    assert [entry.object for entry in ops(emulator, "create")] == [created.intent.id]


def test_a_replayed_500_is_unknown_replayed_server_error(stripe_emulator: EmulatorHandle) -> None:
    emulator = stripe_emulator.emulator
    gateway = make_gateway(stripe_emulator.url, max_network_retries=2)
    rule = emulator.add_fault({"method": "POST", "path": CREATE_PATH, "action": "error", "status": 500})
    retries = count_requests(emulator, "POST", CREATE_PATH)

    outcome = create(gateway, key="order-500")

    assert isinstance(outcome, Unknown)
    assert outcome.replayed_server_error is True
    assert (outcome.unreachable, outcome.rate_limited) == (False, False)
    assert (rule.fired, retries.fired) == (1, 2)  # the library's two retries got the saved 500
    assert emulator.journal_entries() == []


@pytest.mark.parametrize("status", [503, 500])
def test_a_5xx_that_left_the_key_free_is_unknown_not_replayed(stripe_emulator: EmulatorHandle, status: int) -> None:
    emulator = stripe_emulator.emulator
    gateway = make_gateway(stripe_emulator.url, max_network_retries=1)
    rule = emulator.add_fault(
        {"method": "POST", "path": CREATE_PATH, "action": "error", "status": status, "should_retry": True, "times": -1}
    )

    outcome = create(gateway, key="order-503")

    assert isinstance(outcome, Unknown)
    assert str(status) in outcome.message
    assert (outcome.replayed_server_error, outcome.unreachable, outcome.rate_limited) == (False, False, False)
    assert rule.fired == 2
    assert emulator.journal_entries() == []


# -- no answer ----------------------------------------------------------------------------------


def test_a_connection_reset_is_unknown_unreachable(gateway: StripeGateway, emulator: StripeEmulator) -> None:
    intent = authorised(gateway, 1000)
    emulator.add_fault({"method": "POST", "path": "/capture$", "action": "reset_before"})

    outcome = gateway.capture_intent(intent.id, None, "capture-1")

    assert isinstance(outcome, Unknown)
    assert (outcome.unreachable, outcome.replayed_server_error, outcome.rate_limited) == (True, False, False)
    assert ops(emulator, "capture") == []


def test_a_lost_capture_answer_is_retried_into_a_replayed_success(stripe_emulator: EmulatorHandle) -> None:
    emulator = stripe_emulator.emulator
    gateway = make_gateway(stripe_emulator.url, max_network_retries=2)
    intent = authorised(gateway, 1000)
    rule = emulator.add_fault({"method": "POST", "path": "/capture$", "action": "reset_after"})

    outcome = succeeded(gateway.capture_intent(intent.id, None, "capture-1"))

    assert (outcome.replayed, outcome.intent.status, outcome.intent.amount_received) == (True, "succeeded", 1000)
    assert rule.fired == 1
    assert [entry.idempotency_key for entry in ops(emulator, "capture")] == ["capture-1"]


def test_a_read_timeout_is_unknown_unreachable(stripe_emulator: EmulatorHandle) -> None:
    emulator = stripe_emulator.emulator
    gateway = make_gateway(stripe_emulator.url, read_timeout_s=0.5)
    intent = authorised(gateway, 1000)
    emulator.add_fault({"method": "POST", "path": "/capture$", "action": "delay_after", "seconds": 1.5})

    outcome = gateway.capture_intent(intent.id, None, "capture-1")

    assert isinstance(outcome, Unknown)
    assert outcome.unreachable is True
    assert len(ops(emulator, "capture")) == 1  # applied: only the answer was lost
    again = succeeded(gateway.capture_intent(intent.id, None, "capture-1"))
    assert (again.replayed, again.intent.status) == (True, "succeeded")
    assert len(ops(emulator, "capture")) == 1


# -- listing ------------------------------------------------------------------------------------


def test_list_returns_every_payment_intent_in_the_window_once(gateway: StripeGateway, emulator: StripeEmulator) -> None:
    authorised_one = authorised(gateway, 1000, key="order-0")
    inside = [authorised_one.id] + [succeeded(create(gateway, key=f"order-{n}")).intent.id for n in range(1, 5)]
    start = authorised_one.created
    emulator.advance_clock(100)
    later = succeeded(create(gateway, key="order-later")).intent
    pages = count_requests(emulator, "GET", "^/v1/payment_intents$")

    found = gateway.list_intents(created_gte=start, created_lt=start + 50, page_size=2)

    assert isinstance(found, list)
    assert sorted(view.id for view in found) == sorted(inside)
    assert later.id not in {view.id for view in found}
    assert pages.fired == 3
    [listed] = [view for view in found if view.id == authorised_one.id]
    assert listed == authorised_one  # latest_charge expanded in the list too


def test_list_when_stripe_is_unreachable_is_unknown(gateway: StripeGateway, emulator: StripeEmulator) -> None:
    emulator.add_fault({"path": "^/v1/", "action": "down"})

    found = gateway.list_intents(created_gte=0, created_lt=2_000_000_000)

    assert isinstance(found, Unknown)
    assert found.unreachable is True


def test_list_with_a_bad_page_size_is_refused(gateway: StripeGateway) -> None:
    found = gateway.list_intents(created_gte=0, created_lt=2_000_000_000, page_size=101)

    assert isinstance(found, Refused)
    assert found.param == "limit"


# -- answers no emulator gives: a real HTTP server on the far side --------------------------------


class _CannedHandler(BaseHTTPRequestHandler):
    server: _CannedServer

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, content_type, body = self.server.answer
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class _CannedServer(ThreadingHTTPServer):
    daemon_threads = True
    answer: tuple[int, str, bytes] = (200, "application/json", b"{}")


@pytest.fixture
def canned() -> Iterator[_CannedServer]:
    """An HTTP server on 127.0.0.1 that gives every request the same answer (set `.answer`)."""
    server = _CannedServer(("127.0.0.1", 0), _CannedHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _url(server: _CannedServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}"


def test_a_403_is_refused_as_authentication(canned: _CannedServer) -> None:
    body = {
        "error": {
            "type": "invalid_request_error",
            "message": "The provided key 'rk_test_****wxyz' does not have the required permissions for this endpoint.",
        }
    }
    canned.answer = (403, "application/json", json.dumps(body).encode())

    outcome = make_gateway(_url(canned)).retrieve_intent("pi_123")

    assert isinstance(outcome, Refused)
    assert outcome.authentication is True
    assert "403" in outcome.message
    assert "STRIPE_API_KEY" in outcome.message
    assert "wxyz" not in outcome.message


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        ((200, "text/html", b"<html>Sign in to the guest Wi-Fi</html>"), "Invalid response body"),  # the library's
        ((200, "application/json", b'{"object": "list"}'), "could not be read as a PaymentIntent"),  # the gateway's
    ],
)
def test_a_2xx_that_is_not_a_payment_intent_is_unknown(
    canned: _CannedServer, answer: tuple[int, str, bytes], said: str
) -> None:
    canned.answer = answer

    outcome = make_gateway(_url(canned)).capture_intent("pi_123", None, "capture-1")

    assert isinstance(outcome, Unknown)
    assert said in outcome.message
    assert (outcome.unreachable, outcome.replayed_server_error, outcome.rate_limited) == (False, False, False)


def test_any_other_stripe_error_is_refused() -> None:
    """No HTTP answer makes one (each status has its class): the base class stands for the rest."""
    error = stripe.StripeError("Something only a newer library knows about", code="novel_code")

    outcome = _outcome_of_error(error)

    assert outcome == Refused("Something only a newer library knows about", code="novel_code")


# -- the module itself ----------------------------------------------------------------------------


def test_importing_the_gateway_does_not_import_stripe() -> None:
    code = "import sys, readerhost.daemon.payments.gateway; print('stripe' in sys.modules)"

    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False)

    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "False"


def test_settings_repr_hides_the_key() -> None:
    settings = GatewaySettings("sk_test_verysecret_0123456789", api_base="http://127.0.0.1:1")

    assert "verysecret" not in repr(settings)
    assert "http://127.0.0.1:1" in repr(settings)


@pytest.mark.parametrize(
    "changes",
    [{"api_key": ""}, {"connect_timeout_s": 0}, {"read_timeout_s": -1.0}, {"max_network_retries": -1}],
)
def test_settings_refuse_values_that_cannot_work(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"key|timeouts|retries"):
        replace(SETTINGS, **changes)


def test_calls_are_logged_at_debug_without_the_key(gateway: StripeGateway, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    intent = succeeded(create(gateway, key="order-log")).intent
    gateway.confirm_intent(intent.id, INSUFFICIENT_FUNDS, "confirm-log")

    mine = [record for record in caplog.records if record.name == "readerhost.daemon.payments.gateway"]
    assert [record.levelno for record in mine] == [logging.DEBUG, logging.DEBUG]
    assert all(intent.id in record.getMessage() for record in mine)
    assert "create" in mine[0].getMessage()
    assert "order-log" in mine[0].getMessage()
    assert "Succeeded" in mine[0].getMessage()
    assert "confirm-log" in mine[1].getMessage()
    assert "Declined" in mine[1].getMessage()
    assert TEST_KEY not in caplog.text


@pytest.mark.parametrize(
    ("country", "currency", "types", "capture_method", "card_present_capture"),
    [
        ("", "usd", ["card_present"], "manual", None),
        ("", "cad", ["card_present", "interac_present"], "automatic", "manual_preferred"),
        ("CA", "cad", ["card_present", "interac_present"], "automatic", "manual_preferred"),
        # A Canadian account's usd payment: Interac asked for, left out by Stripe (it serves cad only).
        ("CA", "usd", ["card_present"], "automatic", "manual_preferred"),
    ],
)
def test_a_payment_that_may_take_interac_holds_cards_through_their_own_capture_option(
    stripe_emulator: EmulatorHandle,
    client: stripe.StripeClient,
    country: str,
    currency: str,
    types: list[str],
    capture_method: str,
    card_present_capture: str | None,
) -> None:
    gateway = make_gateway(stripe_emulator.url, country=country)
    intent = succeeded(
        gateway.create_intent(amount=2000, currency=currency, metadata={}, idempotency_key="interac-1")
    ).intent
    created = client.v1.payment_intents.retrieve(intent.id)
    assert (created.payment_method_types, created.capture_method) == (types, capture_method)
    assert created.payment_method_options is not None
    assert created.payment_method_options.card_present is not None
    assert created.payment_method_options.card_present.capture_method == card_present_capture
    # Whatever the options, a credit card is held for the POS's capture.
    held = succeeded(gateway.confirm_intent(intent.id, VISA, "interac-1-confirm")).intent
    assert held.status == "requires_capture"


@pytest.mark.parametrize(("country", "currency"), [("", "usd"), ("CA", "cad")])
def test_flexible_authorisation_requests_ride_on_the_create_and_come_back_from_the_charge(
    stripe_emulator: EmulatorHandle, client: stripe.StripeClient, country: str, currency: str
) -> None:
    gateway = make_gateway(stripe_emulator.url, country=country)
    made = gateway.create_intent(
        amount=5000, currency=currency, metadata={}, idempotency_key="flex-1", incremental=True, extended=True
    )
    intent = succeeded(made).intent
    created = client.v1.payment_intents.retrieve(intent.id)
    assert created.payment_method_options is not None
    options = created.payment_method_options.card_present
    assert options is not None
    assert (options.request_incremental_authorization_support, options.request_extended_authorization) == (True, True)
    # A payment that may take Interac still holds cards (the capture option is kept beside the requests).
    assert options.capture_method == ("manual_preferred" if currency == "cad" else None)
    held = succeeded(gateway.confirm_intent(intent.id, "pm_card_present_mastercard", "flex-1-confirm")).intent
    assert held.status == "requires_capture"
    assert held.card_support == CardSupport(
        incremental_authorization_supported=True, overcapture_supported=False, extended_authorization_requested=True
    )
    raised = succeeded(gateway.increment_authorization(intent.id, 6500, "flex-1-increment")).intent
    assert (raised.amount, raised.amount_capturable, raised.status) == (6500, 6500, "requires_capture")
    stripe_emulator.emulator.decline_increments(1)
    declined = gateway.increment_authorization(intent.id, 7000, "flex-1-increment-2")
    assert isinstance(declined, Declined)
    assert declined.decline.decline_code == "insufficient_funds"
