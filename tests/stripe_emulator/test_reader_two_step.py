"""The server-driven two-step flow: collect_payment_method, then confirm_payment_intent, on a simulated reader,
through the real stripe library over real HTTP.

As in test_terminal_readers.py, a test waits for the reader's action with the emulator's hook
`wait_reader_action` (a condition, not a sleep), then retrieves the reader over HTTP.
"""

from __future__ import annotations

from typing import Any

import pytest
import stripe
from support.emulator_fidelity import (
    body_of,
    control,
    create_intent,
    journal_for,
    journal_ops,
    replayed,
    settled,
    simulated_reader,
)

from readerhost.sim.stripe_emulator import StripeEmulator

INSUFFICIENT_FUNDS = "4000000000009995"
ONLINE_PIN = "4001000360000005"


def collect(
    client: stripe.StripeClient, reader_id: str, intent_id: str, *, key: str | None = None, **params: Any
) -> stripe.terminal.Reader:
    options: Any = {"idempotency_key": key} if key is not None else {}
    body: Any = {"payment_intent": intent_id, **params}
    return client.v1.terminal.readers.collect_payment_method(reader_id, params=body, options=options)


def confirm(client: stripe.StripeClient, reader_id: str, intent_id: str, **params: Any) -> stripe.terminal.Reader:
    body: Any = {"payment_intent": intent_id, **params}
    return client.v1.terminal.readers.confirm_payment_intent(reader_id, params=body)


def present(client: stripe.StripeClient, reader_id: str, number: str | None = None, **params: Any) -> None:
    body: Any = {"type": "card_present", **params}
    if number is not None:
        body["card_present"] = {"number": number}
    client.v1.test_helpers.terminal.readers.present_payment_method(reader_id, params=body)


def refused(call: Any, code: str) -> stripe.InvalidRequestError:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        call()
    assert raised.value.error is not None
    assert raised.value.error.code == code, raised.value
    return raised.value


def collected(client: stripe.StripeClient, emulator: StripeEmulator, reader_id: str, intent_id: str, **kw: Any) -> None:
    """Collect a card for the PaymentIntent on the reader and wait until the collection succeeded."""
    collect(client, reader_id, intent_id)
    present(client, reader_id, **kw)
    action = settled(client, emulator, reader_id).action
    assert action is not None
    assert action.status == "succeeded", action


# -- collect, then confirm ------------------------------------------------------------------------


def test_collect_then_confirm_then_capture(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    reader = simulated_reader(client, emulator)
    intent = create_intent(client, 2500, metadata={"order_id": "T1"})

    waiting = collect(client, reader.id, intent.id, collect_config={"enable_customer_cancellation": True})
    assert waiting.action is not None
    assert (waiting.action.type, waiting.action.status) == ("collect_payment_method", "in_progress")
    assert body_of(waiting)["action"]["collect_payment_method"] == {
        "payment_intent": intent.id,
        "payment_method": None,
        "collect_config": {"enable_customer_cancellation": True},
    }
    present(client, reader.id)
    done = settled(client, emulator, reader.id)

    assert done.action is not None
    assert done.action.status == "succeeded"
    method = body_of(done)["action"]["collect_payment_method"]["payment_method"]
    assert (method["object"], method["type"]) == ("payment_method", "card_present")
    card = method["card_present"]
    assert (card["brand"], card["last4"], card["read_method"], card["wallet"]) == (
        "visa",
        "4242",
        "contactless_emv",
        None,
    )
    assert card["networks"] == {"available": ["visa"], "preferred": None}
    waiting_confirmation = client.v1.payment_intents.retrieve(intent.id)
    assert (waiting_confirmation.status, waiting_confirmation.payment_method) == ("requires_confirmation", method["id"])
    assert journal_for(emulator, "payment_intent.confirm") == []  # collecting authorises nothing

    confirming = confirm(client, reader.id, intent.id)
    assert confirming.action is not None
    assert (confirming.action.type, confirming.action.status) == ("confirm_payment_intent", "in_progress")
    assert body_of(confirming)["action"]["confirm_payment_intent"] == {"payment_intent": intent.id}
    confirmed = settled(client, emulator, reader.id)

    assert confirmed.action is not None
    assert (confirmed.action.status, confirmed.action.failure_code) == ("succeeded", None)
    authorised = client.v1.payment_intents.retrieve(intent.id, params={"expand": ["latest_charge"]})
    assert (authorised.status, authorised.amount_capturable) == ("requires_capture", 2500)
    details = body_of(authorised)["latest_charge"]["payment_method_details"]["card_present"]
    assert (details["last4"], details["reader"]) == ("4242", reader.id)
    assert [e.op for e in emulator.journal_entries() if e.op.startswith(("reader.", "payment_intent."))] == [
        "reader.create",
        "payment_intent.create",
        "reader.collect_payment_method",
        "reader.present_payment_method",
        "payment_intent.collect",
        "reader.confirm_payment_intent",
        "payment_intent.confirm",
    ]
    assert client.v1.payment_intents.capture(intent.id).status == "succeeded"


def test_a_pin_card_collected_by_insertion_keeps_its_read_method(
    client: stripe.StripeClient, emulator: StripeEmulator
) -> None:
    reader = simulated_reader(client, emulator)
    intent = create_intent(client, 2500)
    collect(client, reader.id, intent.id)
    present(client, reader.id, ONLINE_PIN)
    done = settled(client, emulator, reader.id)
    card = body_of(done)["action"]["collect_payment_method"]["payment_method"]["card_present"]
    assert (card["last4"], card["read_method"]) == ("0005", "contact_emv")

    confirm(client, reader.id, intent.id)
    settled(client, emulator, reader.id)

    charge = body_of(client.v1.payment_intents.retrieve(intent.id, params={"expand": ["latest_charge"]}))
    receipt = charge["latest_charge"]["payment_method_details"]["card_present"]["receipt"]
    assert receipt["cardholder_verification_method"] == "online_pin"
    assert receipt["dedicated_file_name"] == "A0000000031010"


@pytest.mark.parametrize(
    ("number", "amount", "code", "decline_code"),
    [
        (INSUFFICIENT_FUNDS, 2500, "card_declined", "insufficient_funds"),
        (None, 2505, "card_declined", "generic_decline"),
    ],
)
def test_a_declined_confirmation(
    client: stripe.StripeClient,
    emulator: StripeEmulator,
    number: str | None,
    amount: int,
    code: str,
    decline_code: str,
) -> None:
    reader = simulated_reader(client, emulator)
    intent = create_intent(client, amount)
    collected(
        client, emulator, reader.id, intent.id, **({} if number is None else {"card_present": {"number": number}})
    )

    confirm(client, reader.id, intent.id)
    done = settled(client, emulator, reader.id)

    assert done.action is not None
    assert (done.action.status, done.action.failure_code) == ("failed", code)
    api_error = body_of(done)["action"]["api_error"]
    assert (api_error["type"], api_error["code"], api_error["decline_code"]) == ("card_error", code, decline_code)
    declined = client.v1.payment_intents.retrieve(intent.id)
    assert (declined.status, declined.payment_method) == ("requires_payment_method", None)
    assert declined.last_payment_error is not None
    assert declined.last_payment_error.decline_code == decline_code
    [attempt] = journal_for(emulator, "payment_intent.confirm")
    assert attempt.status == "requires_payment_method"
    # Collect another card on the same PaymentIntent (Stripe: "call collectPaymentMethod with the updated
    # PaymentIntent"); at a test amount that declines, lower the amount first.
    client.v1.payment_intents.update(intent.id, params={"amount": 2500})
    collected(client, emulator, reader.id, intent.id)
    confirm(client, reader.id, intent.id)
    assert settled(client, emulator, reader.id).action.status == "succeeded"  # type: ignore[union-attr]
    assert client.v1.payment_intents.retrieve(intent.id).status == "requires_capture"


def test_only_the_right_state_is_collected_or_confirmed(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    reader = simulated_reader(client, emulator)
    fresh = create_intent(client)

    error = refused(lambda: confirm(client, reader.id, fresh.id), "intent_invalid_state")
    assert "requires_confirmation" in str(error.user_message)
    collected(client, emulator, reader.id, fresh.id)
    refused(lambda: collect(client, reader.id, fresh.id), "intent_invalid_state")  # already requires_confirmation
    assert journal_ops(emulator, "reader.confirm_payment_intent") == []
    with pytest.raises(stripe.InvalidRequestError) as missing:
        confirm(client, reader.id, "pi_nothing")
    assert (missing.value.code, missing.value.param) == ("resource_missing", "payment_intent")


# -- cancellation, busy, offline, timeout ---------------------------------------------------------


def test_the_customer_cancels_a_collection(url: str, client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    reader = simulated_reader(client, emulator)
    intent = create_intent(client)
    collect(client, reader.id, intent.id, collect_config={"enable_customer_cancellation": True})

    assert control(url, "POST", f"terminal/readers/{reader.id}", {"customer_cancels": True}).status_code == 200

    done = client.v1.terminal.readers.retrieve(reader.id)
    assert done.action is not None
    assert (done.action.status, done.action.failure_code) == ("failed", "customer_canceled")
    assert body_of(done)["action"]["api_error"] is None  # the failure came from the reader, not the API
    assert client.v1.payment_intents.retrieve(intent.id).status == "requires_payment_method"


def test_no_cancel_button_unless_collect_config_enables_it(
    url: str, client: stripe.StripeClient, emulator: StripeEmulator
) -> None:
    reader = simulated_reader(client, emulator)
    collect(client, reader.id, create_intent(client).id)

    answer = control(url, "POST", f"terminal/readers/{reader.id}", {"customer_cancels": True})

    assert answer.status_code == 409
    assert "collect_config[enable_customer_cancellation]" in answer.json()["error"]["message"]


def test_cancel_action_during_a_collection(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    reader = simulated_reader(client, emulator)
    intent = create_intent(client)
    collect(client, reader.id, intent.id)

    assert client.v1.terminal.readers.cancel_action(reader.id).action is None

    assert client.v1.payment_intents.retrieve(intent.id).status == "requires_payment_method"
    with pytest.raises(stripe.InvalidRequestError):
        present(client, reader.id)
    assert [e.status for e in journal_for(emulator, "reader.cancel_action")] == ["canceled"]


def test_the_reader_is_busy_while_it_confirms(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    reader = simulated_reader(client, emulator)
    intent = create_intent(client)
    collected(client, emulator, reader.id, intent.id)
    emulator.configure_reader(reader.id, {"processing_s": 60})

    confirm(client, reader.id, intent.id)

    refused(lambda: client.v1.terminal.readers.cancel_action(reader.id), "terminal_reader_busy")
    refused(lambda: collect(client, reader.id, create_intent(client).id), "terminal_reader_busy")
    refused(lambda: confirm(client, reader.id, intent.id), "terminal_reader_busy")
    emulator.configure_reader(reader.id, {"processing_s": 0})
    assert settled(client, emulator, reader.id).action.status == "succeeded"  # type: ignore[union-attr]
    assert len(journal_for(emulator, "payment_intent.confirm")) == 1


def test_offline_and_timeouts(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    reader = simulated_reader(client, emulator)
    intent = create_intent(client)
    emulator.configure_reader(reader.id, {"online": False})
    refused(lambda: collect(client, reader.id, intent.id), "terminal_reader_offline")
    emulator.configure_reader(reader.id, {"online": True, "timeout": "before_apply"})
    refused(lambda: collect(client, reader.id, intent.id), "terminal_reader_timeout")
    assert client.v1.terminal.readers.retrieve(reader.id).action is None  # not applied
    collected(client, emulator, reader.id, intent.id)

    emulator.configure_reader(reader.id, {"timeout": "after_apply"})
    refused(lambda: confirm(client, reader.id, intent.id), "terminal_reader_timeout")

    # The false negative: the reader got the confirmation. Retrieve it; do not send it again.
    truth = settled(client, emulator, reader.id)
    assert truth.action is not None
    assert (truth.action.type, truth.action.status) == ("confirm_payment_intent", "succeeded")
    assert client.v1.payment_intents.retrieve(intent.id).status == "requires_capture"
    assert journal_ops(emulator, "reader.confirm_payment_intent") == ["reader.confirm_payment_intent"]


def test_collect_is_idempotent(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    reader = simulated_reader(client, emulator)
    intent = create_intent(client)

    first = collect(client, reader.id, intent.id, key="order-c1")
    again = collect(client, reader.id, intent.id, key="order-c1")

    assert (replayed(first), replayed(again)) == (False, True)
    assert body_of(again) == body_of(first)
    assert journal_ops(emulator, "reader.collect_payment_method") == ["reader.collect_payment_method"]


# -- tips -----------------------------------------------------------------------------------------


def test_a_tip_chosen_on_the_reader_is_added_to_the_amount(
    client: stripe.StripeClient, emulator: StripeEmulator
) -> None:
    reader = simulated_reader(client, emulator)
    intent = create_intent(client, 2000)
    collect(client, reader.id, intent.id, collect_config={"tipping": {"amount_eligible": 2000}})
    present(client, reader.id, amount_tip=300)
    settled(client, emulator, reader.id)

    tipped = client.v1.payment_intents.retrieve(intent.id)
    assert (tipped.status, tipped.amount) == ("requires_confirmation", 2300)
    assert body_of(tipped)["amount_details"]["tip"] == {"amount": 300}
    confirm(client, reader.id, intent.id)
    settled(client, emulator, reader.id)
    assert client.v1.payment_intents.retrieve(intent.id).amount_capturable == 2300


def test_no_tip_when_tipping_is_skipped(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    reader = simulated_reader(client, emulator)
    intent = create_intent(client, 2000)
    collect(client, reader.id, intent.id, collect_config={"skip_tipping": True})

    with pytest.raises(stripe.InvalidRequestError) as raised:
        present(client, reader.id, amount_tip=300)

    assert raised.value.param == "amount_tip"
    action = client.v1.terminal.readers.retrieve(reader.id).action
    assert action is not None
    assert action.status == "in_progress"  # still waiting for a card
    assert client.v1.payment_intents.retrieve(intent.id).amount == 2000
