"""payment_method_options[card_present][capture_method]: cards held for a manual capture on a PaymentIntent
that also takes Interac (captured as it is authorised), through the real stripe library over real HTTP.

Stripe's changelog 2025-11-17.clover ("Adds the ability to specify the capture method for card present
payments with Payment Intents"): `manual` holds the funds for an explicit capture; `manual_preferred`
holds them when the card's network allows it and captures automatically where it does not (every
emulated test card allows it). Interac is single-message (2025-03-31.basil): never held.
"""

from __future__ import annotations

from typing import Any

import pytest
import stripe
from support.emulator_fidelity import body_of, create_intent

# What readerhost sends for a payment that may take Interac (daemon/payments/gateway.py).
BOTH: dict[str, Any] = {
    "allowed_payment_method_types": ["card_present", "interac_present"],
    "capture_method": "automatic",
}


def held_cards(method: str = "manual_preferred") -> dict[str, Any]:
    return {**BOTH, "payment_method_options": {"card_present": {"capture_method": method}}}


@pytest.mark.parametrize("method", ["manual", "manual_preferred"])
def test_a_card_is_held_and_interac_is_captured_on_one_kind_of_payment_intent(
    client: stripe.StripeClient, method: str
) -> None:
    card = create_intent(client, 3000, currency="cad", **held_cards(method))
    assert card.capture_method == "automatic"
    assert card.payment_method_types == ["card_present", "interac_present"]
    assert card.payment_method_options is not None
    assert card.payment_method_options.card_present is not None
    assert card.payment_method_options.card_present.capture_method == method
    assert body_of(card)["payment_method_options"]["interac_present"] == {}
    held = client.v1.payment_intents.confirm(card.id, params={"payment_method": "pm_card_present_visa"})
    assert (held.status, held.amount_capturable, held.amount_received) == ("requires_capture", 3000, 0)
    captured = client.v1.payment_intents.capture(card.id)
    assert (captured.status, captured.amount_received) == ("succeeded", 3000)

    interac = create_intent(client, 3000, currency="cad", **held_cards(method))
    done = client.v1.payment_intents.confirm(interac.id, params={"payment_method": "pm_card_present_interac"})
    assert (done.status, done.amount_capturable, done.amount_received) == ("succeeded", 0, 3000)


def test_without_the_option_the_capture_method_is_unset_and_a_usd_payment_leaves_interac_out(
    client: stripe.StripeClient,
) -> None:
    plain = create_intent(client, 1000)  # manual at the top level, as for every card-only payment
    assert plain.payment_method_options is not None
    assert plain.payment_method_options.card_present is not None
    assert plain.payment_method_options.card_present.capture_method is None
    # Interac serves cad only: allowed_payment_method_types filters it out of a usd payment.
    usd = create_intent(client, 1000, **held_cards())
    assert usd.payment_method_types == ["card_present"]
    assert usd.allowed_payment_method_types == ["card_present", "interac_present"]


@pytest.mark.parametrize(
    ("options", "param"),
    [
        ({"card_present": {"capture_method": "automatic"}}, "payment_method_options[card_present][capture_method]"),
        ({"card_present": {"routing": {"requested_priority": "domestic"}}}, "payment_method_options[card_present]"),
        ({"interac_present": {"capture_method": "manual"}}, "payment_method_options[interac_present]"),
    ],
)
def test_what_the_emulator_does_not_model_or_stripe_refuses_is_refused_and_nothing_made(
    client: stripe.StripeClient, options: dict[str, Any], param: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as refused:
        create_intent(client, 1000, currency="cad", **BOTH, payment_method_options=options)
    assert refused.value.param is not None
    assert refused.value.param.startswith(param)
    assert list(client.v1.payment_intents.list()) == []


def test_a_card_present_payment_with_automatic_capture_and_no_option_is_still_refused(
    client: stripe.StripeClient,
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as refused:
        create_intent(client, 1000, currency="cad", **BOTH)
    assert refused.value.param == "capture_method"


def test_before_2025_11_17_the_option_does_not_exist(client: stripe.StripeClient) -> None:
    params: Any = {
        "amount": 1000,
        "currency": "cad",
        "payment_method_types": ["card_present"],
        "capture_method": "automatic",
        "payment_method_options": {"card_present": {"capture_method": "manual"}},
    }
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.payment_intents.create(params=params, options={"stripe_version": "2025-10-29.clover"})
    assert refused.value.param == "payment_method_options[card_present][capture_method]"
    assert list(client.v1.payment_intents.list()) == []
