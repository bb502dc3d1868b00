"""Simulated smart readers (server-driven Terminal) through the real stripe library over real HTTP.

A test waits for a reader's action to finish with the emulator's in-process hook
`wait_reader_action` (a condition, not a sleep), then retrieves the reader over HTTP.
"""

from __future__ import annotations

from typing import Any

import pytest
import stripe
from support.emulator_fidelity import (
    VISA,
    authorise,
    body_of,
    control,
    create_intent,
    error_body,
    journal_for,
    journal_ops,
    replayed,
    settled,
    simulated_reader,
)

from readerhost.sim.stripe_emulator import StripeEmulator

INSUFFICIENT_FUNDS = "4000000000009995"
EXPIRED = "4000000000000069"
MASTERCARD = "5555555555554444"
CART: Any = {
    "currency": "usd",
    "line_items": [{"amount": 450, "description": "Flat white", "quantity": 2}],
    "tax": 72,
    "total": 972,
}


def process(
    client: stripe.StripeClient, reader_id: str, intent_id: str, *, key: str | None = None, **params: Any
) -> stripe.terminal.Reader:
    options: Any = {"idempotency_key": key} if key is not None else {}
    body: Any = {"payment_intent": intent_id, **params}
    return client.v1.terminal.readers.process_payment_intent(reader_id, params=body, options=options)


def present(client: stripe.StripeClient, reader_id: str, number: str | None = None) -> stripe.terminal.Reader:
    params: Any = {"type": "card_present"}
    if number is not None:
        params["card_present"] = {"number": number}
    return client.v1.test_helpers.terminal.readers.present_payment_method(reader_id, params=params)


def action_status(reader: stripe.terminal.Reader) -> str:
    assert reader.action is not None, "the reader has no action"
    return reader.action.status


def refused(call: Any, code: str) -> stripe.InvalidRequestError:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        call()
    assert raised.value.http_status == 400
    assert raised.value.error is not None
    assert raised.value.error.code == code, raised.value
    return raised.value


# -- the reader object ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "device_type"), [("simulated-wpe", "simulated_wisepos_e"), ("simulated-s700", "simulated_stripe_s700")]
)
def test_register_retrieve_list_update_delete(client: stripe.StripeClient, code: str, device_type: str) -> None:
    readers = client.v1.terminal.readers
    front = client.v1.terminal.locations.create(
        params={"display_name": "Front", "address": {"country": "US", "line1": "1 Main St"}}
    ).id
    created = readers.create(params={"registration_code": code, "label": "Till 1", "location": front})

    assert created.id.startswith("tmr_")
    assert (created.object, created.device_type, created.label, created.status) == (
        "terminal.reader",
        device_type,
        "Till 1",
        "online",
    )
    assert (created.location, created.action, created.livemode) == (front, None, False)
    assert created.serial_number
    assert readers.retrieve(created.id).serial_number == created.serial_number
    other = readers.create(params={"registration_code": code})
    assert other.label == code  # Stripe labels an unlabelled reader with its registration code
    assert [r.id for r in readers.list().data] == [other.id, created.id]
    assert [r.id for r in readers.list(params={"location": front}).data] == [created.id]
    assert [r.id for r in readers.list(params={"limit": 1, "starting_after": other.id}).data] == [created.id]
    updated = readers.update(created.id, params={"label": "Till 2", "metadata": {"lane": "2"}})
    assert (updated.label, updated.metadata.to_dict()) == ("Till 2", {"lane": "2"})
    deleted = readers.delete(created.id)
    assert (deleted.id, deleted.deleted) == (created.id, True)
    with pytest.raises(stripe.InvalidRequestError) as missing:
        readers.retrieve(created.id)
    assert missing.value.http_status == 404
    assert missing.value.code == "resource_missing"


def test_an_unknown_registration_code_is_refused(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.terminal.readers.create(params={"registration_code": "purple-rabbit"})

    assert raised.value.param == "registration_code"
    assert journal_ops(emulator) == []


# -- approve, decline -----------------------------------------------------------------------------


def test_approve_then_capture(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    reader = simulated_reader(client, emulator)
    intent = create_intent(client, 2500, metadata={"order_id": "R1"})

    processing = process(client, reader.id, intent.id)
    assert processing.action is not None
    assert (processing.action.type, processing.action.status) == ("process_payment_intent", "in_progress")
    assert processing.action.process_payment_intent is not None
    assert processing.action.process_payment_intent.payment_intent == intent.id
    presented = present(client, reader.id)
    assert presented.action is not None
    assert presented.action.status == "in_progress"  # the reader answers at once and processes after

    done = settled(client, emulator, reader.id)

    assert done.action is not None
    assert (done.action.status, done.action.failure_code, done.action.failure_message) == ("succeeded", None, None)
    authorised = client.v1.payment_intents.retrieve(intent.id, params={"expand": ["latest_charge"]})
    assert (authorised.status, authorised.payment_method, authorised.amount_capturable) == (
        "requires_capture",
        VISA,
        2500,
    )
    # The same payment method and charge details as a confirm with the equivalent test payment method.
    charge = authorised.latest_charge
    assert isinstance(charge, stripe.Charge)
    reference = client.v1.payment_intents.retrieve(authorise(client, 2500).id, params={"expand": ["latest_charge"]})
    assert isinstance(reference.latest_charge, stripe.Charge)
    details = body_of(authorised)["latest_charge"]["payment_method_details"]["card_present"]
    expected = body_of(reference)["latest_charge"]["payment_method_details"]["card_present"]
    for name in ("brand", "last4", "read_method", "funding", "network", "fingerprint"):
        assert details[name] == expected[name], name
    per_transaction = ("application_cryptogram", "authorization_code")  # differ from one charge to the next
    for name in set(details["receipt"]) - set(per_transaction):
        assert details["receipt"][name] == expected["receipt"][name], name
    assert all(details["receipt"][name] for name in per_transaction)
    assert (details["reader"], expected["reader"]) == (reader.id, None)  # the reader that read the card
    assert (details["brand"], details["last4"], details["read_method"]) == ("visa", "4242", "contactless_emv")
    assert "4242424242424242" not in str(body_of(done)) + str(body_of(authorised))
    [confirm] = [e for e in journal_for(emulator, "payment_intent.confirm") if e.object == intent.id]
    assert (confirm.status, confirm.idempotency_key, confirm.metadata) == ("requires_capture", None, {"order_id": "R1"})
    assert [op for op in journal_ops(emulator) if op.startswith("reader.process")] == ["reader.process_payment_intent"]

    captured = client.v1.payment_intents.capture(intent.id)
    assert (captured.status, captured.amount_received) == ("succeeded", 2500)


@pytest.mark.parametrize(
    ("ending", "decline_code"), [("01", "call_issuer"), ("05", "generic_decline"), ("55", "incorrect_pin")]
)
def test_decline_by_test_amount(
    client: stripe.StripeClient, emulator: StripeEmulator, ending: str, decline_code: str
) -> None:
    reader = simulated_reader(client, emulator)
    intent = create_intent(client, int(f"10{ending}"))
    process(client, reader.id, intent.id)
    present(client, reader.id)

    done = settled(client, emulator, reader.id)

    assert done.action is not None
    assert (done.action.status, done.action.failure_code, done.action.failure_message) == (
        "failed",
        "card_declined",
        "Your card was declined.",
    )
    declined = client.v1.payment_intents.retrieve(intent.id)
    assert declined.status == "requires_payment_method"
    assert declined.last_payment_error is not None
    assert (declined.last_payment_error.code, declined.last_payment_error.decline_code) == (
        "card_declined",
        decline_code,
    )
    # The same PaymentIntent, at an approving amount, on the reader again with another card.
    client.v1.payment_intents.update(intent.id, params={"amount": 1000})
    process(client, reader.id, intent.id)
    present(client, reader.id, MASTERCARD)
    again = settled(client, emulator, reader.id)
    assert again.action is not None
    assert again.action.status == "succeeded"
    approved = client.v1.payment_intents.retrieve(intent.id)
    assert (approved.status, approved.payment_method) == ("requires_capture", "pm_card_present_mastercard")
    assert [e.status for e in journal_for(emulator, "payment_intent.confirm")] == [
        "requires_payment_method",
        "requires_capture",
    ]


@pytest.mark.parametrize(
    ("number", "code", "decline_code", "message"),
    [
        (INSUFFICIENT_FUNDS, "card_declined", "insufficient_funds", "Your card has insufficient funds."),
        (EXPIRED, "expired_card", "expired_card", "Your card has expired."),
    ],
)
def test_decline_by_test_card(
    client: stripe.StripeClient, emulator: StripeEmulator, number: str, code: str, decline_code: str, message: str
) -> None:
    reader = simulated_reader(client, emulator)
    intent = create_intent(client, 2500)
    process(client, reader.id, intent.id)
    present(client, reader.id, number)

    done = settled(client, emulator, reader.id)

    assert done.action is not None
    assert (done.action.status, done.action.failure_code, done.action.failure_message) == ("failed", code, message)
    declined = client.v1.payment_intents.retrieve(intent.id)
    assert declined.status == "requires_payment_method"
    assert declined.last_payment_error is not None
    assert declined.last_payment_error.decline_code == decline_code
    assert number not in str(body_of(declined)) + str(body_of(done))


def test_an_unknown_card_number_is_refused(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    reader = simulated_reader(client, emulator)
    process(client, reader.id, create_intent(client).id)

    with pytest.raises(stripe.InvalidRequestError) as raised:
        present(client, reader.id, "1234")

    assert raised.value.param == "card_present[number]"
    assert "1234" not in str(raised.value.json_body)
    assert client.v1.terminal.readers.retrieve(reader.id).action is not None


# -- cancellation ---------------------------------------------------------------------------------


def test_customer_cancels_on_the_reader(url: str, client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    reader = simulated_reader(client, emulator)
    intent = create_intent(client)
    waiting = process(client, reader.id, intent.id, process_config={"enable_customer_cancellation": True})
    assert waiting.action is not None
    assert waiting.action.process_payment_intent is not None
    assert waiting.action.process_payment_intent.process_config is not None
    assert waiting.action.process_payment_intent.process_config.enable_customer_cancellation is True

    answer = control(url, "POST", f"terminal/readers/{reader.id}", {"customer_cancels": True})

    assert answer.status_code == 200, answer.text
    done = client.v1.terminal.readers.retrieve(reader.id)
    assert done.action is not None
    assert (done.action.status, done.action.failure_code) == ("failed", "customer_canceled")
    assert client.v1.payment_intents.retrieve(intent.id).status == "requires_payment_method"
    assert journal_for(emulator, "payment_intent.confirm") == []


def test_no_cancel_button_without_enable_customer_cancellation(
    url: str, client: stripe.StripeClient, emulator: StripeEmulator
) -> None:
    reader = simulated_reader(client, emulator)
    process(client, reader.id, create_intent(client).id)

    answer = control(url, "POST", f"terminal/readers/{reader.id}", {"customer_cancels": True})

    assert answer.status_code == 409
    assert "enable_customer_cancellation" in answer.json()["error"]["message"]
    action = client.v1.terminal.readers.retrieve(reader.id).action
    assert action is not None
    assert action.status == "in_progress"


def test_cancel_action_from_the_pos(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    reader = simulated_reader(client, emulator)
    intent = create_intent(client)
    process(client, reader.id, intent.id)

    canceled = client.v1.terminal.readers.cancel_action(reader.id)

    assert canceled.action is None
    assert client.v1.payment_intents.retrieve(intent.id).status == "requires_payment_method"
    with pytest.raises(stripe.InvalidRequestError):
        present(client, reader.id)  # no action waits for a card any more
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.terminal.readers.cancel_action(reader.id)  # nothing left to cancel
    [entry] = journal_for(emulator, "reader.cancel_action")
    assert (entry.object, entry.status, entry.amount) == (reader.id, "canceled", intent.amount)
    # The PaymentIntent goes on the reader again.
    process(client, reader.id, intent.id)
    present(client, reader.id)
    assert action_status(settled(client, emulator, reader.id)) == "succeeded"


# -- busy, offline, timeout -----------------------------------------------------------------------


def test_reader_busy_while_processing_a_card(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    reader = simulated_reader(client, emulator, processing_s=60)
    first = create_intent(client)
    process(client, reader.id, first.id)
    present(client, reader.id)

    second = create_intent(client)
    refused(lambda: process(client, reader.id, second.id), "terminal_reader_busy")
    refused(lambda: client.v1.terminal.readers.cancel_action(reader.id), "terminal_reader_busy")
    refused(
        lambda: client.v1.terminal.readers.set_reader_display(reader.id, params={"type": "cart", "cart": CART}),
        "terminal_reader_busy",
    )
    emulator.configure_reader(reader.id, {"processing_s": 0})  # the processing ends now

    done = settled(client, emulator, reader.id)
    assert done.action is not None
    assert done.action.process_payment_intent is not None
    assert (done.action.status, done.action.process_payment_intent.payment_intent) == ("succeeded", first.id)
    assert client.v1.payment_intents.retrieve(second.id).status == "requires_payment_method"
    assert journal_ops(emulator, "reader.process_payment_intent") == ["reader.process_payment_intent"]


def test_a_payment_waiting_for_a_card_is_replaced(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    reader = simulated_reader(client, emulator)
    first, second = create_intent(client), create_intent(client)
    process(client, reader.id, first.id)

    replaced = process(client, reader.id, second.id)
    present(client, reader.id)

    assert replaced.action is not None
    assert replaced.action.process_payment_intent is not None
    assert replaced.action.process_payment_intent.payment_intent == second.id
    assert action_status(settled(client, emulator, reader.id)) == "succeeded"
    assert client.v1.payment_intents.retrieve(first.id).status == "requires_payment_method"
    assert client.v1.payment_intents.retrieve(second.id).status == "requires_capture"


def test_reader_offline(url: str, client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    reader = simulated_reader(client, emulator)
    intent = create_intent(client)
    assert control(url, "POST", f"terminal/readers/{reader.id}", {"online": False}).json()["online"] is False

    refused(lambda: process(client, reader.id, intent.id), "terminal_reader_offline")

    assert client.v1.terminal.readers.retrieve(reader.id).status == "offline"
    assert journal_ops(emulator, "reader.process_payment_intent") == []
    emulator.configure_reader(reader.id, {"online": True})
    assert action_status(process(client, reader.id, intent.id)) == "in_progress"


def test_reader_timeout_that_actually_succeeded(
    url: str, client: stripe.StripeClient, emulator: StripeEmulator
) -> None:
    reader = simulated_reader(client, emulator)
    intent = create_intent(client, 2500)
    control(url, "POST", f"terminal/readers/{reader.id}", {"timeout": "after_apply"})

    error = refused(lambda: process(client, reader.id, intent.id), "terminal_reader_timeout")

    assert error.error is not None
    assert error.error.type == "invalid_request_error"
    # The false negative: the reader got the command. Retrieving shows the truth; processing again
    # is not needed, and the card presented once authorises once.
    truth = client.v1.terminal.readers.retrieve(reader.id)
    assert truth.action is not None
    assert truth.action.process_payment_intent is not None
    assert (truth.action.status, truth.action.process_payment_intent.payment_intent) == ("in_progress", intent.id)
    present(client, reader.id)
    assert action_status(settled(client, emulator, reader.id)) == "succeeded"
    assert journal_ops(emulator, "reader.process_payment_intent") == ["reader.process_payment_intent"]
    assert [e.object for e in journal_for(emulator, "payment_intent.confirm")] == [intent.id]
    assert client.v1.payment_intents.retrieve(intent.id).status == "requires_capture"


def test_reader_timeout_before_the_command_applied(
    url: str, client: stripe.StripeClient, emulator: StripeEmulator
) -> None:
    reader = simulated_reader(client, emulator)
    intent = create_intent(client)
    emulator.configure_reader(reader.id, {"timeout": "before_apply"})

    refused(lambda: process(client, reader.id, intent.id), "terminal_reader_timeout")

    assert client.v1.terminal.readers.retrieve(reader.id).action is None
    assert journal_ops(emulator, "reader.process_payment_intent") == []
    assert action_status(process(client, reader.id, intent.id)) == "in_progress"  # one shot


def test_only_a_payment_intent_requiring_a_payment_method_is_processed(
    client: stripe.StripeClient, emulator: StripeEmulator
) -> None:
    reader = simulated_reader(client, emulator)
    authorised = authorise(client)

    error = refused(lambda: process(client, reader.id, authorised.id), "intent_invalid_state")

    assert "requires_payment_method" in str(error.user_message)
    with pytest.raises(stripe.InvalidRequestError) as missing:
        process(client, reader.id, "pi_nothing")
    assert (missing.value.code, missing.value.param) == ("resource_missing", "payment_intent")


# -- the cart display -----------------------------------------------------------------------------


def test_set_reader_display(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    reader = simulated_reader(client, emulator)

    shown = client.v1.terminal.readers.set_reader_display(reader.id, params={"type": "cart", "cart": CART})

    assert shown.action is not None
    assert (shown.action.type, shown.action.status) == ("set_reader_display", "succeeded")
    assert body_of(shown)["action"]["set_reader_display"] == {"type": "cart", "cart": CART}
    [entry] = journal_for(emulator, "reader.set_reader_display")
    assert (entry.object, entry.amount) == (reader.id, 972)
    assert client.v1.terminal.readers.cancel_action(reader.id).action is None  # clears the display
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.terminal.readers.set_reader_display(reader.id, params={"type": "cart"})
    assert raised.value.param == "cart"


# -- idempotency and faults -----------------------------------------------------------------------


def test_process_payment_intent_is_idempotent(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    reader = simulated_reader(client, emulator)
    intent = create_intent(client)

    first = process(client, reader.id, intent.id, key="order-r7")
    again = process(client, reader.id, intent.id, key="order-r7")

    assert not replayed(first)
    assert replayed(again)
    assert body_of(again) == body_of(first)
    [entry] = journal_for(emulator, "reader.process_payment_intent")
    assert (entry.object, entry.idempotency_key, entry.status) == (reader.id, "order-r7", "in_progress")
    with pytest.raises(stripe.IdempotencyError):
        process(client, reader.id, create_intent(client).id, key="order-r7")


def test_a_saved_reader_error_is_replayed(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    reader = simulated_reader(client, emulator)
    intent = create_intent(client)
    emulator.configure_reader(reader.id, {"timeout": "after_apply"})

    first = refused(lambda: process(client, reader.id, intent.id, key="order-r8"), "terminal_reader_timeout")
    again = refused(lambda: process(client, reader.id, intent.id, key="order-r8"), "terminal_reader_timeout")

    assert not replayed(first)
    assert replayed(again)
    assert error_body(again) == error_body(first)
    assert journal_ops(emulator, "reader.process_payment_intent") == ["reader.process_payment_intent"]


@pytest.mark.parametrize("operation", ["process_payment_intent", "present_payment_method", "set_reader_display"])
def test_reset_after_is_retried_and_replayed(
    retrying_client: stripe.StripeClient, emulator: StripeEmulator, operation: str
) -> None:
    reader = simulated_reader(retrying_client, emulator, processing_s=60)
    intent = create_intent(retrying_client)
    if operation == "present_payment_method":
        process(retrying_client, reader.id, intent.id)
    rule = emulator.add_fault({"method": "POST", "path": f"/{operation}$", "action": "reset_after"})

    if operation == "process_payment_intent":
        answer = process(retrying_client, reader.id, intent.id)
    elif operation == "present_payment_method":
        answer = present(retrying_client, reader.id)
    else:
        answer = retrying_client.v1.terminal.readers.set_reader_display(
            reader.id, params={"type": "cart", "cart": CART}
        )

    assert rule.fired == 1
    assert replayed(answer)  # the retry got the response saved before the connection was reset
    assert answer.action is not None
    assert journal_ops(emulator, f"reader.{operation}") == [f"reader.{operation}"]


# -- the control interface ------------------------------------------------------------------------


def test_reader_control_answers_and_refusals(url: str, client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    reader = simulated_reader(client, emulator)
    route = f"terminal/readers/{reader.id}"

    state = control(url, "POST", route, {"processing_s": 2.5, "timeout": "after_apply"}).json()

    assert state == {"id": reader.id, "online": True, "timeout": "after_apply", "processing_s": 2.5, "action": None}
    assert control(url, "POST", "terminal/readers/tmr_nothing", {"online": False}).status_code == 404
    for bad in ({"colour": "red"}, {"online": "no"}, {"timeout": "sometimes"}, {"processing_s": -1}):
        answer = control(url, "POST", route, bad)
        assert answer.status_code == 400, bad
        assert answer.json()["error"]["message"]
    assert control(url, "POST", route, {"customer_cancels": True}).status_code == 409  # nothing waits for a card


def test_reset_forgets_readers_and_their_pending_work(
    url: str, client: stripe.StripeClient, emulator: StripeEmulator
) -> None:
    reader = simulated_reader(client, emulator, processing_s=60)
    process(client, reader.id, create_intent(client).id)
    present(client, reader.id)
    assert emulator.timers.pending() == 1

    assert control(url, "POST", "reset").status_code == 200

    assert emulator.timers.pending() == 0
    assert client.v1.terminal.readers.list().data == []
    assert emulator.wait_reader_action(reader.id, timeout=0)
