"""Fault rules: what the client sees, what the emulator applied, and what stripe-python's retries make of it."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
import stripe
from conftest import make_client
from support.emulator_fidelity import (
    VISA,
    authorise,
    control,
    count_requests,
    create_intent,
    journal_for,
    journal_ops,
    replayed,
    wait_until,
)

from readerhost.sim.stripe_emulator import StripeEmulator
from readerhost.sim.stripe_emulator.faults import FaultSpecError

CREATE_PATH = "^/v1/payment_intents$"


def add_fault(url: str, spec: dict[str, Any]) -> str:
    """Arm a rule through the control interface; its id."""
    answer = control(url, "POST", "faults", spec)
    assert answer.status_code == 200, answer.text
    fault_id = answer.json()["id"]
    assert isinstance(fault_id, str)
    assert fault_id.startswith("flt_")
    return fault_id


def armed(url: str) -> list[dict[str, Any]]:
    answer = control(url, "GET", "faults")
    assert answer.status_code == 200
    rules = answer.json()
    assert isinstance(rules, list)
    return rules


# -- connection resets --------------------------------------------------------------------------


def test_reset_before_without_retries(url: str, client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    add_fault(url, {"method": "POST", "path": CREATE_PATH, "action": "reset_before"})

    with pytest.raises(stripe.APIConnectionError) as raised:
        create_intent(client, 1000, key="order-1")

    assert raised.value.should_retry is True
    assert emulator.journal_entries() == []
    assert armed(url) == []  # fired once, then disarmed
    created = create_intent(client, 1000, key="order-1")
    assert not replayed(created)  # nothing was saved under the key
    assert journal_ops(emulator) == ["payment_intent.create"]


def test_reset_before_is_retried_once_and_succeeds(
    retrying_client: stripe.StripeClient, emulator: StripeEmulator
) -> None:
    rule = emulator.add_fault({"method": "POST", "path": CREATE_PATH, "action": "reset_before"})
    counter = count_requests(emulator, "POST", CREATE_PATH)

    created = create_intent(retrying_client, 1000)

    assert (rule.fired, counter.fired) == (1, 1)
    assert not replayed(created)  # the retry was the first request to execute
    [entry] = emulator.journal_entries()
    assert (entry.op, entry.object) == ("payment_intent.create", created.id)


def _prepare(client: stripe.StripeClient, operation: str) -> tuple[str, Callable[[stripe.StripeClient], Any]]:
    """A PaymentIntent ready for `operation`: the path to fault, and the operation for a given client."""
    if operation == "create":
        return CREATE_PATH, lambda acting: create_intent(acting, 1000)
    if operation == "confirm":
        intent_id = create_intent(client).id
        return f"^/v1/payment_intents/{intent_id}/confirm$", lambda acting: acting.v1.payment_intents.confirm(
            intent_id, params={"payment_method": VISA}
        )
    intent_id = authorise(client).id
    if operation == "capture":
        return f"^/v1/payment_intents/{intent_id}/capture$", lambda acting: acting.v1.payment_intents.capture(intent_id)
    assert operation == "cancel"
    return f"^/v1/payment_intents/{intent_id}/cancel$", lambda acting: acting.v1.payment_intents.cancel(intent_id)


AFTER = {
    "create": "requires_payment_method",
    "confirm": "requires_capture",
    "capture": "succeeded",
    "cancel": "canceled",
}


@pytest.mark.parametrize("operation", ["create", "confirm", "capture", "cancel"])
def test_reset_after_is_retried_and_the_first_answer_replayed(
    client: stripe.StripeClient, retrying_client: stripe.StripeClient, emulator: StripeEmulator, operation: str
) -> None:
    path, perform = _prepare(client, operation)
    rule = emulator.add_fault({"method": "POST", "path": path, "action": "reset_after"})
    counter = count_requests(emulator, "POST", path)

    result = perform(retrying_client)

    assert result.status == AFTER[operation]
    assert (rule.fired, counter.fired) == (1, 1)
    assert replayed(result)  # the library's retry, under the same key, got the saved answer
    op = f"payment_intent.{operation}"
    [entry] = journal_for(emulator, op)
    assert entry.object == result.id
    assert client.v1.payment_intents.retrieve(result.id).status == AFTER[operation]


@pytest.mark.parametrize("operation", ["create", "confirm", "capture"])
def test_reset_after_without_retries_loses_the_answer_not_the_change(
    client: stripe.StripeClient, emulator: StripeEmulator, operation: str
) -> None:
    path, perform = _prepare(client, operation)
    emulator.add_fault({"method": "POST", "path": path, "action": "reset_after"})
    before = len(emulator.journal_entries())

    with pytest.raises(stripe.APIConnectionError):
        perform(client)

    entries = emulator.journal_entries()[before:]
    assert [entry.op for entry in entries] == [f"payment_intent.{operation}"]
    assert client.v1.payment_intents.retrieve(entries[0].object).status == AFTER[operation]


def test_after_a_lost_capture_answer_the_same_key_replays_it(
    client: stripe.StripeClient, emulator: StripeEmulator
) -> None:
    intent = authorise(client, 1000)
    emulator.add_fault({"method": "POST", "path": "/capture$", "action": "reset_after"})
    with pytest.raises(stripe.APIConnectionError):
        client.v1.payment_intents.capture(intent.id, options={"idempotency_key": "capture-1"})

    again = client.v1.payment_intents.capture(intent.id, options={"idempotency_key": "capture-1"})

    assert again.status == "succeeded"
    assert replayed(again)
    assert len(journal_for(emulator, "payment_intent.capture")) == 1


# -- error answers ------------------------------------------------------------------------------


def test_a_500_is_saved_under_its_key_and_every_retry_replays_it(
    client: stripe.StripeClient, retrying_client: stripe.StripeClient, emulator: StripeEmulator
) -> None:
    rule = emulator.add_fault({"method": "POST", "path": CREATE_PATH, "action": "error", "status": 500})
    counter = count_requests(emulator, "POST", CREATE_PATH)

    with pytest.raises(stripe.APIError) as raised:
        create_intent(retrying_client, 1000, key="order-500")

    error = raised.value
    assert error.http_status == 500
    assert error.error is not None
    assert error.error.type == "api_error"
    assert (rule.fired, counter.fired) == (1, 2)  # the first request met the fault; two retries followed
    assert replayed(error)  # ... and were answered from the key
    assert emulator.journal_entries() == []

    with pytest.raises(stripe.APIError) as again:
        create_intent(client, 1000, key="order-500")

    assert again.value.http_status == 500
    assert replayed(again.value)
    assert emulator.journal_entries() == []
    # The truth, learnt by listing: nothing was created; a new key then creates it.
    assert client.v1.payment_intents.list().data == []
    assert create_intent(client, 1000, key="order-500-b").status == "requires_payment_method"


@pytest.mark.parametrize(("status", "should_retry"), [(503, True), (502, None), (503, None), (500, True)])
def test_an_error_that_never_executed_is_not_saved_and_the_retry_succeeds(
    retrying_client: stripe.StripeClient, emulator: StripeEmulator, status: int, should_retry: bool | None
) -> None:
    spec: dict[str, Any] = {"method": "POST", "path": CREATE_PATH, "action": "error", "status": status}
    if should_retry is not None:
        spec["should_retry"] = should_retry
    rule = emulator.add_fault(spec)
    counter = count_requests(emulator, "POST", CREATE_PATH)

    created = create_intent(retrying_client, 1000, key="order-503")

    assert (rule.fired, counter.fired) == (1, 1)
    assert not replayed(created)
    assert [entry.object for entry in journal_for(emulator, "payment_intent.create")] == [created.id]


@pytest.mark.parametrize(("should_retry", "requests_made"), [(False, 1), (None, 3)])
def test_stripe_should_retry_false_stops_the_library_retrying(
    retrying_client: stripe.StripeClient, emulator: StripeEmulator, should_retry: bool | None, requests_made: int
) -> None:
    spec: dict[str, Any] = {"method": "POST", "path": CREATE_PATH, "action": "error", "status": 503, "times": -1}
    if should_retry is not None:
        spec["should_retry"] = should_retry
    rule = emulator.add_fault(spec)

    with pytest.raises(stripe.APIError) as raised:
        create_intent(retrying_client, 1000)

    assert raised.value.http_status == 503
    headers = raised.value.headers or {}
    assert headers.get("Stripe-Should-Retry") == (None if should_retry is None else "false")
    assert rule.fired == requests_made
    assert emulator.journal_entries() == []


def test_stripe_should_retry_false_on_a_get(
    client: stripe.StripeClient, retrying_client: stripe.StripeClient, emulator: StripeEmulator
) -> None:
    intent = create_intent(client)
    rule = emulator.add_fault(
        {"method": "GET", "path": "^/v1/payment_intents/", "action": "error", "should_retry": False, "times": -1}
    )

    with pytest.raises(stripe.APIError) as raised:
        retrying_client.v1.payment_intents.retrieve(intent.id)

    assert raised.value.http_status == 500
    assert rule.fired == 1


def test_rate_limit_fault_is_a_429_not_retried(
    client: stripe.StripeClient, retrying_client: stripe.StripeClient, emulator: StripeEmulator
) -> None:
    rule = emulator.add_fault({"method": "POST", "path": CREATE_PATH, "action": "rate_limit", "times": -1})

    with pytest.raises(stripe.RateLimitError) as raised:
        create_intent(retrying_client, 1000, key="order-429")

    error = raised.value
    assert error.http_status == 429
    assert error.error is not None
    assert (error.error.type, error.error.code) == ("invalid_request_error", "rate_limit")
    assert rule.fired == 1
    assert emulator.journal_entries() == []
    emulator.faults.clear()
    created = create_intent(client, 1000, key="order-429")
    assert not replayed(created)  # the 429 was not saved under the key


# -- delays -------------------------------------------------------------------------------------


def test_delay_after_beyond_the_read_timeout(url: str, client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    impatient = make_client(url, read_timeout=0.5)
    intent = authorise(client, 1000)
    emulator.add_fault({"method": "POST", "path": "/capture$", "action": "delay_after", "seconds": 1.5})

    with pytest.raises(stripe.APIConnectionError) as raised:
        impatient.v1.payment_intents.capture(intent.id, options={"idempotency_key": "capture-slow"})

    assert "Timeout" in str(raised.value)
    assert client.v1.payment_intents.retrieve(intent.id).status == "succeeded"
    assert len(journal_for(emulator, "payment_intent.capture")) == 1
    # Retrying the capture under its key learns the outcome without capturing twice.
    again = client.v1.payment_intents.capture(intent.id, options={"idempotency_key": "capture-slow"})
    assert (again.status, replayed(again)) == ("succeeded", True)
    assert len(journal_for(emulator, "payment_intent.capture")) == 1


@pytest.mark.parametrize("action", ["delay_before", "delay_during"])
def test_delay_before_applying(client: stripe.StripeClient, emulator: StripeEmulator, action: str) -> None:
    rule = emulator.add_fault({"method": "POST", "path": CREATE_PATH, "action": action, "seconds": 1})
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(create_intent, client, 1000)
        wait_until(lambda: rule.fired == 1, what="the request to reach the emulator")

        assert emulator.journal_entries() == []  # waiting, not yet applied
        assert not pending.done()
        created = pending.result(timeout=10)

    assert time.monotonic() - started >= 1
    assert [entry.object for entry in emulator.journal_entries()] == [created.id]


def test_delay_after_applies_at_once(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    emulator.add_fault({"method": "POST", "path": CREATE_PATH, "action": "delay_after", "seconds": 1})
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(create_intent, client, 1000)
        wait_until(lambda: bool(emulator.journal_entries()), what="the create to be applied")

        assert not pending.done()  # applied, but the answer is still held back
        created = pending.result(timeout=10)

    assert time.monotonic() - started >= 1
    assert [entry.object for entry in emulator.journal_entries()] == [created.id]


# -- how rules fire -----------------------------------------------------------------------------


def test_down_resets_every_request_until_removed(
    url: str, client: stripe.StripeClient, retrying_client: stripe.StripeClient, emulator: StripeEmulator
) -> None:
    add_fault(url, {"path": "^/v1/", "action": "down", "times": 1})

    with pytest.raises(stripe.APIConnectionError):
        create_intent(retrying_client, 1000)
    with pytest.raises(stripe.APIConnectionError):
        client.v1.payment_intents.list()

    [rule] = armed(url)
    assert (rule["action"], rule["fired"]) == ("down", 4)  # three tries of the create, one list
    assert control(url, "DELETE", "faults").json() == {"removed": 1}
    assert emulator.journal_entries() == []
    create_intent(client, 1000)
    assert journal_ops(emulator) == ["payment_intent.create"]


def test_times_two_fires_twice_then_disarms(url: str, client: stripe.StripeClient) -> None:
    intent = create_intent(client)
    add_fault(url, {"method": "GET", "path": "^/v1/payment_intents/", "action": "error", "times": 2})

    with pytest.raises(stripe.APIError):
        client.v1.payment_intents.retrieve(intent.id)
    assert [(rule["fired"], rule["times"]) for rule in armed(url)] == [(1, 2)]
    with pytest.raises(stripe.APIError):
        client.v1.payment_intents.retrieve(intent.id)

    assert armed(url) == []
    assert client.v1.payment_intents.retrieve(intent.id).id == intent.id


def test_times_minus_one_fires_until_removed(url: str, client: stripe.StripeClient) -> None:
    intent = create_intent(client)
    fault_id = add_fault(url, {"method": "GET", "path": "^/v1/payment_intents/", "action": "rate_limit", "times": -1})

    for _ in range(4):
        with pytest.raises(stripe.RateLimitError):
            client.v1.payment_intents.retrieve(intent.id)

    assert [(rule["id"], rule["fired"]) for rule in armed(url)] == [(fault_id, 4)]
    assert control(url, "DELETE", f"faults/{fault_id}").status_code == 200
    assert client.v1.payment_intents.retrieve(intent.id).id == intent.id


def test_rules_fire_in_the_order_they_were_added(
    url: str, client: stripe.StripeClient, emulator: StripeEmulator
) -> None:
    add_fault(url, {"method": "POST", "path": ".*", "action": "error", "status": 503})
    add_fault(url, {"method": "POST", "path": ".*", "action": "rate_limit"})
    get_only = add_fault(url, {"method": "GET", "path": ".*", "action": "reset_before"})
    capture_only = add_fault(url, {"path": "/capture$", "action": "reset_before"})

    with pytest.raises(stripe.APIError) as first:
        create_intent(client, 1000)
    with pytest.raises(stripe.RateLimitError):
        create_intent(client, 1000)
    created = create_intent(client, 1000)

    assert first.value.http_status == 503
    assert created.status == "requires_payment_method"
    assert [(rule["id"], rule["fired"]) for rule in armed(url)] == [(get_only, 0), (capture_only, 0)]
    assert journal_ops(emulator) == ["payment_intent.create"]


def test_faults_do_not_touch_the_control_interface(url: str, emulator: StripeEmulator) -> None:
    add_fault(url, {"path": ".*", "action": "down"})

    assert control(url, "GET", "journal").status_code == 200
    assert [rule["fired"] for rule in armed(url)] == [0]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"action": "explode"}, "action must be one of"),
        ({"path": ".*"}, "action must be one of"),
        ({"action": "reset_before", "times": 0}, "times"),
        ({"action": "reset_before", "times": -2}, "times"),
        ({"action": "reset_before", "times": "2"}, "times"),
        ({"action": "error", "status": 404}, "status"),
        ({"action": "reset_after", "status": 500}, "status"),
        ({"action": "delay_before"}, "seconds"),
        ({"action": "delay_after", "seconds": -1}, "seconds"),
        ({"action": "delay_during", "seconds": "1"}, "seconds"),
        ({"action": "reset_before", "seconds": 1}, "seconds"),
        ({"action": "reset_after", "should_retry": True}, "should_retry"),
        ({"action": "error", "should_retry": "yes"}, "should_retry"),
        ({"action": "down", "path": "("}, "regular expression"),
        ({"action": "down", "method": "PUT"}, "method"),
        ({"action": "down", "colour": "red"}, "unknown field 'colour'"),
        (["reset_before"], "JSON object"),
    ],
)
def test_invalid_fault_specs_are_refused_with_a_message(
    url: str, emulator: StripeEmulator, spec: Any, message: str
) -> None:
    answer = control(url, "POST", "faults", spec)

    assert answer.status_code == 400
    assert message in answer.json()["error"]["message"]
    assert armed(url) == []
    if isinstance(spec, dict):
        with pytest.raises(FaultSpecError, match=message.split(maxsplit=1)[0]):
            emulator.add_fault(spec)


def test_a_body_that_is_not_json_is_refused(url: str) -> None:
    answer = requests.post(f"{url}/_emulator/faults", data=b"{action: down", timeout=10)

    assert answer.status_code == 400
    assert "JSON" in answer.json()["error"]["message"]
    assert armed(url) == []
