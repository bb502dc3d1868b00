"""The control interface under /_emulator/ over HTTP, and what the emulator's clock does to Stripe's objects."""

from __future__ import annotations

from typing import Any

import pytest
import stripe
from support.emulator_fidelity import authorise, control, create_intent, journal_for, journal_ops, replayed

from readerhost.sim.stripe_emulator import StripeEmulator

HOUR = 3600
DAY = 24 * HOUR


def ok(url: str, method: str, route: str, body: Any = None) -> Any:
    """A control request that must succeed; its JSON answer."""
    answer = control(url, method, route, body)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == "application/json"
    return answer.json()


def refused(url: str, method: str, route: str, body: Any = None, status: int = 400) -> str:
    """A control request that must be refused; its error message."""
    answer = control(url, method, route, body)
    assert answer.status_code == status, answer.text
    message = answer.json()["error"]["message"]
    assert isinstance(message, str)
    assert message
    return message


# -- faults -------------------------------------------------------------------------------------


def test_faults_add_list_and_delete(url: str, emulator: StripeEmulator) -> None:
    first = ok(url, "POST", "faults", {"method": "post", "path": "/capture$", "action": "reset_after"})["id"]
    second = ok(url, "POST", "faults", {"action": "error", "status": 503, "should_retry": True, "times": 3})["id"]
    third = ok(url, "POST", "faults", {"method": "GET", "action": "delay_before", "seconds": 0.5, "times": -1})["id"]

    rules = ok(url, "GET", "faults")

    assert rules == [
        {"id": first, "method": "POST", "path": "/capture$", "action": "reset_after", "times": 1, "fired": 0},
        {
            "id": second,
            "method": None,
            "path": ".*",
            "action": "error",
            "times": 3,
            "fired": 0,
            "status": 503,
            "should_retry": True,
        },
        {"id": third, "method": "GET", "path": ".*", "action": "delay_before", "times": -1, "fired": 0, "seconds": 0.5},
    ]
    assert [rule.id for rule in emulator.faults.armed()] == [first, second, third]
    assert ok(url, "DELETE", f"faults/{second}") == {"removed": 1}
    assert [rule["id"] for rule in ok(url, "GET", "faults")] == [first, third]
    assert "flt_nothing" in refused(url, "DELETE", "faults/flt_nothing", status=404)
    assert ok(url, "DELETE", "faults") == {"removed": 2}
    assert ok(url, "GET", "faults") == []
    assert ok(url, "DELETE", "faults") == {"removed": 0}


def test_in_process_faults_show_over_http(url: str, emulator: StripeEmulator) -> None:
    rule = emulator.add_fault({"path": "^/v1/payment_intents$", "action": "rate_limit", "times": 2})

    assert [listed["id"] for listed in ok(url, "GET", "faults")] == [rule.id]


# -- clock --------------------------------------------------------------------------------------


def test_clock_advance_moves_created_and_the_journal(
    url: str, client: stripe.StripeClient, emulator: StripeEmulator
) -> None:
    start = ok(url, "GET", "clock")["now"]

    now = ok(url, "POST", "clock", {"advance_s": 3 * HOUR})["now"]
    intent = create_intent(client)

    assert start + 3 * HOUR <= now <= start + 3 * HOUR + 2
    assert now <= intent.created <= now + 2
    assert emulator.journal_entries()[0].at == intent.created


def test_clock_set_forward(url: str, client: stripe.StripeClient) -> None:
    target = ok(url, "GET", "clock")["now"] + 30 * DAY

    assert ok(url, "POST", "clock", {"set": target})["now"] == target
    assert target <= create_intent(client).created <= target + 2


@pytest.mark.parametrize(
    "body", [{"advance_s": -1}, {"advance_s": "60"}, {"advance_s": True}, {"when": 1}, {}, {"advance_s": 1, "set": 2}]
)
def test_clock_refuses_bad_moves(url: str, body: dict[str, Any]) -> None:
    before = ok(url, "GET", "clock")["now"]

    refused(url, "POST", "clock", body)

    assert ok(url, "GET", "clock")["now"] <= before + 2


def test_clock_never_moves_back(url: str) -> None:
    now = ok(url, "POST", "clock", {"advance_s": DAY})["now"]

    message = refused(url, "POST", "clock", {"set": now - HOUR})

    assert "back" in message
    assert ok(url, "GET", "clock")["now"] >= now


# -- journal ------------------------------------------------------------------------------------


def test_journal_lists_mutations_in_order_with_since(url: str, client: stripe.StripeClient) -> None:
    intent = create_intent(client, 1500, key="order-j1", metadata={"order_id": "J1"})
    client.v1.payment_intents.confirm(intent.id, params={"payment_method": "pm_card_present_visa"})
    client.v1.payment_intents.capture(intent.id, params={"amount_to_capture": 1200})
    client.v1.payment_intents.retrieve(intent.id)  # reads are not journaled

    entries = ok(url, "GET", "journal")

    assert [(entry["seq"], entry["op"], entry["status"], entry["amount"]) for entry in entries] == [
        (1, "payment_intent.create", "requires_payment_method", 1500),
        (2, "payment_intent.confirm", "requires_capture", 1500),
        (3, "payment_intent.capture", "succeeded", 1200),
    ]
    first = entries[0]
    assert set(first) == {
        "seq",
        "at",
        "op",
        "object",
        "idempotency_key",
        "status",
        "amount",
        "metadata",
        "payment_intent",  # what a refund is of: set on refund entries only
        "charge",
    }
    assert (first["payment_intent"], first["charge"]) == (None, None)
    assert (first["object"], first["idempotency_key"], first["metadata"]) == (intent.id, "order-j1", {"order_id": "J1"})
    assert first["at"] == intent.created
    assert [entry["seq"] for entry in ok(url, "GET", "journal?since=2")] == [3]
    assert ok(url, "GET", "journal?since=3") == []
    assert ok(url, "GET", "journal?since=0") == entries


@pytest.mark.parametrize("since", ["-1", "two"])
def test_journal_refuses_a_bad_since(url: str, since: str) -> None:
    assert "since" in refused(url, "GET", f"journal?since={since}")


def test_journal_never_shows_replays_or_refusals(url: str, client: stripe.StripeClient) -> None:
    create_intent(client, 1000, key="order-j2")
    create_intent(client, 1000, key="order-j2")
    with pytest.raises(stripe.InvalidRequestError):
        create_intent(client, 10)

    assert [entry["op"] for entry in ok(url, "GET", "journal")] == ["payment_intent.create"]


# -- rate limit ---------------------------------------------------------------------------------


def test_rate_limit_answers_429_above_the_rate(url: str, client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    intents = client.v1.payment_intents
    assert ok(url, "POST", "rate_limit", {"per_second": 2}) == {"per_second": 2}

    created = [create_intent(client, 1000).id for _ in range(2)]
    with pytest.raises(stripe.RateLimitError) as raised:
        create_intent(client, 1000)
    # Reads have their own bucket: the writes above did not use it up.
    reads = [intents.retrieve(intent_id).id for intent_id in created]
    with pytest.raises(stripe.RateLimitError):
        intents.retrieve(created[0])

    error = raised.value
    assert error.http_status == 429
    assert error.error is not None
    assert (error.error.type, error.error.code) == ("invalid_request_error", "rate_limit")
    assert reads == created
    assert journal_ops(emulator) == ["payment_intent.create"] * 2

    assert ok(url, "POST", "rate_limit", {"per_second": None}) == {"per_second": None}
    assert len([create_intent(client, 1000) for _ in range(10)]) == 10


def test_a_rate_limited_request_saves_nothing_under_its_key(url: str, client: stripe.StripeClient) -> None:
    ok(url, "POST", "rate_limit", {"per_second": 1})
    create_intent(client, 1000)
    with pytest.raises(stripe.RateLimitError):
        create_intent(client, 1000, key="order-r1")
    ok(url, "POST", "rate_limit", {"per_second": None})

    assert not replayed(create_intent(client, 1000, key="order-r1"))


@pytest.mark.parametrize(
    "body", [{"per_second": 0}, {"per_second": -5}, {"per_second": "fast"}, {}, {"per_second": True}]
)
def test_rate_limit_refuses_a_bad_rate(url: str, body: dict[str, Any]) -> None:
    refused(url, "POST", "rate_limit", body)


# -- search lag ---------------------------------------------------------------------------------


def test_search_lag_control(url: str, client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    assert ok(url, "POST", "search_lag", {"seconds": 30}) == {"seconds": 30}
    intent = create_intent(client, 1000, metadata={"order_id": "S1"})
    query: Any = {"query": "metadata['order_id']:'S1'"}

    assert client.v1.payment_intents.search(params=query).data == []
    emulator.advance_clock(31)
    assert [found.id for found in client.v1.payment_intents.search(params=query).data] == [intent.id]
    refused(url, "POST", "search_lag", {"seconds": -1})
    refused(url, "POST", "search_lag", {"seconds": "soon"})


def test_search_available_control(url: str, client: stripe.StripeClient) -> None:
    query: Any = {"query": "metadata['order_id']:'S2'"}
    assert ok(url, "POST", "search_available", {"available": False}) == {"available": False}

    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.payment_intents.search(params=query)
    assert raised.value.http_status == 400
    assert "search feature unavailable for merchant" in str(raised.value.user_message)
    assert client.v1.payment_intents.list().data == []  # the list is still there

    assert ok(url, "POST", "search_available", {"available": True}) == {"available": True}
    assert client.v1.payment_intents.search(params=query).data == []
    refused(url, "POST", "search_available", {"available": "no"})


# -- reset --------------------------------------------------------------------------------------


def test_reset_forgets_everything(url: str, client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    intent = create_intent(client, 1000, key="order-x")
    ok(url, "POST", "faults", {"path": "/nothing$", "action": "down"})
    ok(url, "POST", "clock", {"advance_s": 10 * DAY})
    ok(url, "POST", "rate_limit", {"per_second": 100})

    assert ok(url, "POST", "reset") == {}

    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.payment_intents.retrieve(intent.id)
    assert raised.value.http_status == 404
    assert ok(url, "GET", "journal") == []
    assert ok(url, "GET", "faults") == []
    assert ok(url, "GET", "clock")["now"] < intent.created + DAY
    assert client.v1.payment_intents.list().data == []
    again = create_intent(client, 1000, key="order-x")  # the key is forgotten too
    assert again.id != intent.id
    assert not replayed(again)
    assert emulator.rate_limiter.per_second is None


def test_unknown_control_endpoint(url: str) -> None:
    assert "no control endpoint" in refused(url, "GET", "nothing", status=404)
    assert "PUT" in refused(url, "PUT", "faults", status=404)


# -- the clock and authorisations ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("card", "window_s"),
    [("mastercard", 2 * DAY), ("amex", 2 * DAY), ("visa", 4 * DAY + 18 * HOUR)],
)
def test_an_authorisation_expires_at_capture_before(
    url: str, client: stripe.StripeClient, emulator: StripeEmulator, card: str, window_s: int
) -> None:
    intents = client.v1.payment_intents
    intent = authorise(client, 2000, f"pm_card_present_{card}")
    charge = intents.retrieve(intent.id, params={"expand": ["latest_charge"]}).latest_charge
    assert isinstance(charge, stripe.Charge)
    assert charge.payment_method_details is not None
    assert charge.payment_method_details.card_present is not None
    capture_before = charge.payment_method_details.card_present.capture_before
    assert capture_before == charge.created + window_s

    ok(url, "POST", "clock", {"set": capture_before - 5})
    assert intents.retrieve(intent.id).status == "requires_capture"
    ok(url, "POST", "clock", {"advance_s": 6})

    expired = intents.retrieve(intent.id, params={"expand": ["latest_charge"]})
    assert expired.status == "canceled"
    assert expired.cancellation_reason == "automatic"
    assert expired.canceled_at == capture_before
    assert expired.amount_capturable == 0
    released = expired.latest_charge
    assert isinstance(released, stripe.Charge)
    assert (released.captured, released.amount_refunded) == (False, 2000)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        intents.capture(intent.id)
    assert raised.value.code == "payment_intent_unexpected_state"
    [expiry] = journal_for(emulator, "payment_intent.expire")
    assert (expiry.object, expiry.at, expiry.idempotency_key) == (intent.id, capture_before, None)


def test_expiry_is_seen_by_the_first_request_after_the_deadline(
    client: stripe.StripeClient, emulator: StripeEmulator
) -> None:
    intent = authorise(client, 2000, "pm_card_present_discover")
    emulator.advance_clock(2 * DAY - 60)
    captured_in_time = client.v1.payment_intents.capture(intent.id)
    late = authorise(client, 2000, "pm_card_present_discover")
    emulator.advance_clock(2 * DAY)

    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.capture(late.id)

    assert captured_in_time.status == "succeeded"
    assert client.v1.payment_intents.retrieve(intent.id).status == "succeeded"  # a capture never expires
    assert [entry.object for entry in journal_for(emulator, "payment_intent.expire")] == [late.id]
