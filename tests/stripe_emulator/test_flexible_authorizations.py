"""Incremental and extended authorisations for card_present, through the real stripe library over real HTTP.

Stripe's rules (API reference, increment_authorization; Terminal docs, "Incremental authorizations"
and "Extended authorizations"): support is asked on the create
(payment_method_options[card_present][request_incremental_authorization_support] /
[request_extended_authorization]) and said on the charge (incremental_authorization_supported,
capture_before); only a requires_capture PaymentIntent whose charge supports it is raised, to a new total
above the authorised amount, at most 10 attempts with declines; a decline (402 card_declined) changes
nothing and the old amount stays capturable. What the docs leave unsaid is modelled conservatively
(docs/stripe-emulator.md).
"""

from __future__ import annotations

from typing import Any

import pytest
import stripe
from support.emulator_fidelity import VISA, control, create_intent, error_body, journal_for, replayed

from readerhost.sim.stripe_emulator import StripeEmulator

DAY = 86400
INCREMENTAL: dict[str, Any] = {
    "payment_method_options": {"card_present": {"request_incremental_authorization_support": True}}
}
EXTENDED: dict[str, Any] = {"payment_method_options": {"card_present": {"request_extended_authorization": True}}}


def authorise(
    client: stripe.StripeClient, amount: int, payment_method: str = VISA, **params: Any
) -> stripe.PaymentIntent:
    """A PaymentIntent confirmed with an approving card, its latest charge expanded."""
    intent = create_intent(client, amount, **params)
    confirm: Any = {"payment_method": payment_method, "expand": ["latest_charge"]}
    confirmed = client.v1.payment_intents.confirm(intent.id, params=confirm)
    assert confirmed.status == "requires_capture", confirmed.status
    return confirmed


def card_present(intent: stripe.PaymentIntent) -> Any:
    charge = intent.latest_charge
    assert isinstance(charge, stripe.Charge)
    assert charge.payment_method_details is not None
    return charge.payment_method_details.card_present


def increment(client: stripe.StripeClient, intent_id: str, amount: int, key: str | None = None) -> stripe.PaymentIntent:
    options: Any = {"idempotency_key": key} if key else {}
    return client.v1.payment_intents.increment_authorization(
        intent_id, params={"amount": amount, "expand": ["latest_charge"]}, options=options
    )


def test_an_authorisation_asked_to_support_increments_is_raised_to_each_new_total(
    client: stripe.StripeClient, emulator: StripeEmulator
) -> None:
    held = authorise(client, 5000, **INCREMENTAL)
    assert held.payment_method_options is not None
    assert held.payment_method_options.card_present is not None
    assert held.payment_method_options.card_present.request_incremental_authorization_support is True
    assert card_present(held).incremental_authorization_supported is True
    assert card_present(held).overcapture_supported is False

    raised = increment(client, held.id, 6000, key="inc-1")
    assert (raised.status, raised.amount, raised.amount_capturable) == ("requires_capture", 6000, 6000)
    assert card_present(raised).amount_authorized == 6000
    assert card_present(raised).capture_before == card_present(held).capture_before  # the window is not renewed
    again = increment(client, held.id, 6000, key="inc-1")
    assert replayed(again)
    assert again.amount == 6000
    increment(client, held.id, 7500)
    captured = client.v1.payment_intents.capture(held.id, params={"amount_to_capture": 7340})
    assert (captured.status, captured.amount_received) == ("succeeded", 7340)
    with pytest.raises(stripe.InvalidRequestError) as after_capture:
        increment(client, held.id, 8000)
    assert after_capture.value.code == "payment_intent_unexpected_state"
    assert [e.amount for e in journal_for(emulator, "payment_intent.increment_authorization")] == [6000, 7500]


def test_a_declined_increment_changes_nothing_and_the_old_amount_stays_capturable(
    client: stripe.StripeClient, emulator: StripeEmulator, url: str
) -> None:
    held = authorise(client, 5000, **INCREMENTAL)
    waiting = control(url, "POST", "increment_declines", {"times": 1, "decline_code": "insufficient_funds"})
    assert waiting.status_code == 200, waiting.text
    assert waiting.json() == {"waiting": ["insufficient_funds"]}
    with pytest.raises(stripe.CardError) as declined:
        increment(client, held.id, 9000, key="inc-d")
    assert declined.value.http_status == 402
    assert declined.value.code == "card_declined"
    assert error_body(declined.value)["error"]["decline_code"] == "insufficient_funds"
    with pytest.raises(stripe.CardError) as replay:
        increment(client, held.id, 9000, key="inc-d")  # the same key: Stripe's saved answer, not a new attempt
    assert replayed(replay.value)
    same = client.v1.payment_intents.retrieve(held.id)
    assert (same.status, same.amount, same.amount_capturable) == ("requires_capture", 5000, 5000)
    assert [e.idempotency_key for e in journal_for(emulator, "payment_intent.increment_authorization.declined")] == [
        "inc-d"
    ]
    assert increment(client, held.id, 9000).amount == 9000  # the next attempt is the issuer's to decide again
    with pytest.raises(stripe.CardError) as test_amount:
        increment(client, held.id, 9955)  # Stripe's test amounts: ending 55 is incorrect_pin
    assert error_body(test_amount.value)["error"]["decline_code"] == "incorrect_pin"
    assert client.v1.payment_intents.retrieve(held.id).amount == 9000


@pytest.mark.parametrize(
    ("params", "payment_method"),
    [
        ({}, "pm_card_present_visa"),  # not asked for on the create
        (INCREMENTAL, "pm_card_present_discover"),  # Discover: restricted merchant categories only
    ],
)
def test_an_authorisation_whose_charge_does_not_support_increments_is_refused(
    client: stripe.StripeClient, emulator: StripeEmulator, params: dict[str, Any], payment_method: str
) -> None:
    held = authorise(client, 5000, payment_method, **params)
    assert card_present(held).incremental_authorization_supported is False
    with pytest.raises(stripe.InvalidRequestError) as refused:
        increment(client, held.id, 6000)
    assert refused.value.http_status == 400
    assert "incremental_authorization_supported" in str(refused.value.user_message)
    assert client.v1.payment_intents.retrieve(held.id).amount == 5000
    assert journal_for(emulator, "payment_intent.increment_authorization") == []


def test_increments_are_refused_outside_their_rules(client: stripe.StripeClient) -> None:
    unconfirmed = create_intent(client, 5000, **INCREMENTAL)
    with pytest.raises(stripe.InvalidRequestError) as not_held:
        increment(client, unconfirmed.id, 6000)
    assert not_held.value.code == "payment_intent_unexpected_state"
    held = authorise(client, 5000, **INCREMENTAL)
    with pytest.raises(stripe.InvalidRequestError) as not_above:
        increment(client, held.id, 5000)
    assert not_above.value.param == "amount"
    for total in range(5100, 6100, 100):  # ten attempts, then no more
        increment(client, held.id, total)
    with pytest.raises(stripe.InvalidRequestError) as eleventh:
        increment(client, held.id, 7000)
    assert "maximum of 10" in str(eleventh.value.user_message)
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.payment_intents.increment_authorization(held.id, params={"amount": 7000, "application_fee_amount": 1})
    assert unknown.value.code == "parameter_unknown"


def test_an_extended_authorisation_gets_the_brands_longer_window(client: stripe.StripeClient) -> None:
    mastercard = authorise(client, 5000, "pm_card_present_mastercard", **EXTENDED)
    standard = authorise(client, 5000, "pm_card_present_mastercard")
    assert mastercard.payment_method_options is not None
    assert mastercard.payment_method_options.card_present is not None
    assert mastercard.payment_method_options.card_present.request_extended_authorization is True
    assert card_present(mastercard).capture_before - card_present(standard).capture_before >= 28 * DAY
    visa = authorise(client, 5000, **EXTENDED)
    assert card_present(visa).capture_before - visa.created < 5 * DAY  # Visa: restricted categories only


def test_the_flexible_requests_are_booleans(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.payment_intents.create(
            params={"amount": 5000, "currency": "usd", "allowed_payment_method_types": ["card_present"],
                    "capture_method": "manual",
                    "payment_method_options": {"card_present": {"request_extended_authorization": "maybe"}}}  # type: ignore[typeddict-item]
        )  # fmt: skip
    assert refused.value.param == "payment_method_options[card_present][request_extended_authorization]"


@pytest.mark.parametrize(
    "body", [{"times": 0}, {"times": "1"}, {"times": 11}, {"decline_code": "stolen_card"}, {"times": True}]
)
def test_the_increment_declines_control_refuses_what_it_cannot_script(url: str, body: dict[str, Any]) -> None:
    answer = control(url, "POST", "increment_declines", body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["message"]
