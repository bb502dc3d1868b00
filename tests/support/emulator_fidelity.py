"""Helpers for the Stripe emulator's fidelity tests (tests/stripe_emulator/).

Everything here goes through real HTTP: stripe-python for the API, `requests` for raw bodies and
for the control interface under /_emulator/.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests
import stripe
from conftest import TEST_KEY
from stripe import StripeResponse

from readerhost.sim.stripe_emulator import StripeEmulator
from readerhost.sim.stripe_emulator.faults import FaultRule
from readerhost.sim.stripe_emulator.journal import JournalEntry

VISA = "pm_card_present_visa"
# What a card-present PaymentIntent is created with on the API version stripe-python 16 pins.
CARD_PRESENT: dict[str, Any] = {"allowed_payment_method_types": ["card_present"], "capture_method": "manual"}
# Interac takes no manual capture (Stripe's changelog 2025-03-31.basil): captured as it is authorised.
INTERAC_PAYMENT: dict[str, Any] = {"allowed_payment_method_types": ["interac_present"], "capture_method": "automatic"}


def create_intent(
    client: stripe.StripeClient, amount: int = 1000, *, key: str | None = None, **params: Any
) -> stripe.PaymentIntent:
    """A card-present, manual-capture PaymentIntent in USD; `params` add to or override the defaults."""
    body: Any = {"amount": amount, "currency": "usd", **CARD_PRESENT, **params}
    options: Any = {"idempotency_key": key} if key is not None else {}
    return client.v1.payment_intents.create(params=body, options=options)


def authorise(
    client: stripe.StripeClient, amount: int = 1000, payment_method: str = VISA, **params: Any
) -> stripe.PaymentIntent:
    """A PaymentIntent confirmed with an approving card: `requires_capture`."""
    intent = create_intent(client, amount, **params)
    confirmed = client.v1.payment_intents.confirm(intent.id, params={"payment_method": payment_method})
    assert confirmed.status == "requires_capture", confirmed.status
    return confirmed


def response_of(obj: stripe.StripeObject) -> StripeResponse:
    """The HTTP response a stripe-python call returned `obj` from."""
    response = obj.last_response
    assert response is not None, "the object did not come from an API response"
    return response


def body_of(obj: stripe.StripeObject) -> dict[str, Any]:
    """The JSON body, as sent by the emulator, that stripe-python turned into `obj`."""
    data = response_of(obj).data
    assert isinstance(data, dict)
    return data


def error_body(error: stripe.StripeError) -> dict[str, Any]:
    """The JSON body of an error response, as sent by the emulator."""
    assert isinstance(error.json_body, dict), f"no JSON body in {error!r}"
    return error.json_body


def replayed(answer: stripe.StripeObject | stripe.StripeError) -> bool:
    """Whether the answer was a replay of a saved response (header `Idempotent-Replayed: true`)."""
    if isinstance(answer, stripe.StripeError):
        headers: Mapping[str, str] = answer.headers or {}
    else:
        headers = response_of(answer).headers
    return headers.get("Idempotent-Replayed") == "true"


def journal_ops(emulator: StripeEmulator, op: str | None = None) -> list[str]:
    """The `op` of every journal entry (only those equal to `op` if given)."""
    return [entry.op for entry in emulator.journal_entries() if op is None or entry.op == op]


def journal_for(emulator: StripeEmulator, op: str) -> list[JournalEntry]:
    return [entry for entry in emulator.journal_entries() if entry.op == op]


def count_requests(emulator: StripeEmulator, method: str, path: str) -> FaultRule:
    """A rule that changes nothing (a delay of 0 s) but counts, in `fired`, the requests reaching it.

    Rules match in order, so added after another rule it counts what that rule lets through.
    """
    return emulator.add_fault({"method": method, "path": path, "action": "delay_before", "seconds": 0, "times": -1})


def wait_until(condition: Callable[[], bool], *, timeout: float = 5.0, what: str = "the condition") -> None:
    """Poll `condition` until it holds; fail the test if it does not within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()  # never set: its wait() is a bounded pause between polls
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        pause.wait(0.005)


def control(url: str, method: str, route: str, body: Any = None) -> requests.Response:
    """A request to the control interface: /_emulator/<route>, JSON in and out, no key."""
    return requests.request(method, f"{url}/_emulator/{route}", json=body, timeout=10)


def api(
    url: str,
    method: str,
    path: str,
    *,
    key: str | None = TEST_KEY,
    data: Any = None,
    params: Any = None,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    """A raw Stripe API request with `requests`, for the exact response body and headers."""
    sent = dict(headers or {})
    if key is not None:
        sent["Authorization"] = f"Bearer {key}"
    return requests.request(method, f"{url}{path}", data=data, params=params, headers=sent, timeout=10)


def simulated_reader(
    client: stripe.StripeClient, emulator: StripeEmulator, *, processing_s: float = 0.02, code: str = "simulated-wpe"
) -> stripe.terminal.Reader:
    """A simulated smart reader that processes a presented card in `processing_s` seconds."""
    reader = client.v1.terminal.readers.create(params={"registration_code": code})
    emulator.configure_reader(reader.id, {"processing_s": processing_s})
    return reader


def settled(client: stripe.StripeClient, emulator: StripeEmulator, reader_id: str) -> stripe.terminal.Reader:
    """The reader, retrieved once its action is no longer in progress (fails the test after 5 s)."""
    assert emulator.wait_reader_action(reader_id, timeout=5.0), "the reader's action is still in progress"
    reader = client.v1.terminal.readers.retrieve(reader_id)
    assert reader.action is not None
    assert reader.action.status != "in_progress"
    return reader
