"""Declines by Stripe's test amounts and test cards: a 402 with the PaymentIntent, then a second card."""

from __future__ import annotations

import pytest
import stripe
from support.emulator_fidelity import INTERAC_PAYMENT, VISA, body_of, create_intent, journal_for

from readerhost.sim.stripe_emulator import StripeEmulator

AMOUNT_DECLINES = [
    ("01", "call_issuer"),
    ("02", "offline_pin_required"),
    ("03", "online_or_offline_pin_required"),
    ("05", "generic_decline"),
    ("55", "incorrect_pin"),
    ("60", "online_or_offline_pin_required"),
    ("65", "withdrawal_count_limit_exceeded"),
    ("75", "pin_try_exceeded"),
]
CARD_DECLINES = [
    ("charge_declined", "card_declined", "generic_decline"),
    ("charge_declined_insufficient_funds", "card_declined", "insufficient_funds"),
    ("charge_declined_lost_card", "card_declined", "lost_card"),
    ("charge_declined_stolen_card", "card_declined", "stolen_card"),
    ("charge_declined_expired_card", "expired_card", "expired_card"),
    ("charge_declined_processing_error", "processing_error", "processing_error"),
]


def assert_declined(
    client: stripe.StripeClient,
    emulator: StripeEmulator,
    intent: stripe.PaymentIntent,
    payment_method: str,
    code: str,
    decline_code: str,
) -> str:
    """Confirm `intent` with `payment_method`, check Stripe's decline answer; the failed charge's id."""
    intents = client.v1.payment_intents
    with pytest.raises(stripe.CardError) as raised:
        intents.confirm(intent.id, params={"payment_method": payment_method})

    error = raised.value
    assert error.http_status == 402
    assert error.code == code
    assert error.error is not None
    assert (error.error.type, error.error.code, error.error.decline_code) == ("card_error", code, decline_code)
    charge_id = error.error.charge
    assert isinstance(charge_id, str)
    assert charge_id.startswith("ch_")
    embedded = error.error.payment_intent
    assert isinstance(embedded, stripe.PaymentIntent)
    assert (embedded.id, embedded.status) == (intent.id, "requires_payment_method")
    assert embedded.latest_charge == charge_id
    last_error = embedded.last_payment_error
    assert last_error is not None
    assert (last_error.type, last_error.code, last_error.decline_code, last_error.charge) == (
        "card_error",
        code,
        decline_code,
        charge_id,
    )
    assert last_error.payment_method is not None
    assert last_error.payment_method.id == payment_method

    retrieved = intents.retrieve(intent.id, params={"expand": ["latest_charge"]})
    assert retrieved.status == "requires_payment_method"
    assert retrieved.amount_capturable == 0
    assert retrieved.payment_method is None
    charge = retrieved.latest_charge
    assert isinstance(charge, stripe.Charge)
    assert (charge.id, charge.status, charge.paid, charge.captured) == (charge_id, "failed", False, False)
    assert charge.failure_code == code
    assert charge.outcome is not None
    assert charge.outcome.type == "issuer_declined"
    [confirm] = journal_for(emulator, "payment_intent.confirm")
    assert (confirm.object, confirm.status) == (intent.id, "requires_payment_method")
    return charge_id


def assert_collects_again(client: stripe.StripeClient, intent_id: str, declined_charge: str) -> None:
    """The same PaymentIntent takes another card after a decline, and authorises."""
    intents = client.v1.payment_intents
    approved = intents.confirm(intent_id, params={"payment_method": VISA, "expand": ["latest_charge"]})

    assert approved.id == intent_id
    assert approved.status == "requires_capture"
    assert approved.last_payment_error is None
    assert approved.payment_method == VISA
    charge = approved.latest_charge
    assert isinstance(charge, stripe.Charge)
    assert charge.id != declined_charge
    assert (charge.status, charge.paid) == ("succeeded", True)
    assert intents.capture(intent_id).status == "succeeded"


@pytest.mark.parametrize(("ending", "decline_code"), AMOUNT_DECLINES)
def test_test_amount_declines(
    client: stripe.StripeClient, emulator: StripeEmulator, ending: str, decline_code: str
) -> None:
    intent = create_intent(client, int(f"25{ending}"))

    declined_charge = assert_declined(client, emulator, intent, VISA, "card_declined", decline_code)

    # Another card on the same PaymentIntent: the amount still ends in a declining test value,
    # so the kiosk's price changes to an approving one (ending 00) before collecting again.
    client.v1.payment_intents.update(intent.id, params={"amount": 2500})
    assert_collects_again(client, intent.id, declined_charge)


@pytest.mark.parametrize(("card", "code", "decline_code"), CARD_DECLINES)
def test_test_card_declines(
    client: stripe.StripeClient, emulator: StripeEmulator, card: str, code: str, decline_code: str
) -> None:
    intent = create_intent(client, 2500)

    declined_charge = assert_declined(client, emulator, intent, f"pm_card_present_{card}", code, decline_code)

    assert_collects_again(client, intent.id, declined_charge)


def test_decline_then_decline_again_then_approve(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    intents = client.v1.payment_intents
    intent = create_intent(client, 2500)
    first = assert_declined(
        client, emulator, intent, "pm_card_present_charge_declined_lost_card", *CARD_DECLINES[2][1:]
    )

    with pytest.raises(stripe.CardError) as raised:
        intents.confirm(intent.id, params={"payment_method": "pm_card_present_charge_declined_stolen_card"})

    assert raised.value.error is not None
    assert raised.value.error.decline_code == "stolen_card"
    assert raised.value.error.charge != first
    assert len(journal_for(emulator, "payment_intent.confirm")) == 2
    assert_collects_again(client, intent.id, first)


@pytest.mark.parametrize("amount", [2500, 2599, 2504, 2550, 100, 10_000_00])
def test_other_amount_endings_approve(client: stripe.StripeClient, amount: int) -> None:
    intent = create_intent(client, amount)

    approved = client.v1.payment_intents.confirm(intent.id, params={"payment_method": VISA})

    assert approved.status == "requires_capture"
    assert approved.amount_capturable == amount


@pytest.mark.parametrize("amount", [10105, 99975])
def test_only_the_last_two_digits_decide(client: stripe.StripeClient, amount: int) -> None:
    intent = create_intent(client, amount)

    with pytest.raises(stripe.CardError):
        client.v1.payment_intents.confirm(intent.id, params={"payment_method": VISA})


@pytest.mark.parametrize(
    ("card", "currency"),
    [
        ("visa_debit", "usd"),
        ("mastercard", "usd"),
        ("amex", "usd"),
        ("discover", "usd"),
        ("offline_pin_cvm", "usd"),
        ("online_pin_cvm", "usd"),
        ("interac", "cad"),
    ],
)
def test_approving_test_cards(client: stripe.StripeClient, card: str, currency: str) -> None:
    kinds = INTERAC_PAYMENT if card == "interac" else {"allowed_payment_method_types": ["card_present"]}
    intent = create_intent(client, 2500, currency=currency, **kinds)

    approved = client.v1.payment_intents.confirm(
        intent.id, params={"payment_method": f"pm_card_present_{card}", "expand": ["latest_charge"]}
    )

    charge = approved.latest_charge
    assert isinstance(charge, stripe.Charge)
    details = charge.payment_method_details
    assert details is not None
    if card == "interac":  # single-message: captured as it is authorised
        assert (approved.status, approved.amount_received, approved.amount_capturable) == ("succeeded", 2500, 0)
        assert (charge.captured, charge.amount_captured) == (True, 2500)
        assert details.type == "interac_present"
        assert details.interac_present is not None
        assert details.interac_present.brand == "interac"
        assert "capture_before" not in body_of(approved)["latest_charge"]["payment_method_details"]["interac_present"]
    else:
        assert approved.status == "requires_capture"
        assert details.type == "card_present"
        assert details.card_present is not None
        receipt = details.card_present.receipt
        assert receipt is not None
        expected_cvm = {"offline_pin_cvm": "offline_pin", "online_pin_cvm": "online_pin"}.get(card, "none")
        assert receipt.cardholder_verification_method == expected_cvm


@pytest.mark.parametrize("kinds", [["interac_present"], ["card_present", "interac_present"]])
def test_interac_takes_no_manual_capture(client: stripe.StripeClient, kinds: list[str]) -> None:
    # Stripe's changelog 2025-03-31.basil: "The interac_present payment method type no longer supports
    # the manual capture_method". stripe-python 16 speaks a later version: refused, nothing created.
    with pytest.raises(stripe.InvalidRequestError) as refused:
        create_intent(client, 2500, currency="cad", allowed_payment_method_types=kinds, capture_method="manual")
    assert refused.value.param == "capture_method"
    assert list(client.v1.payment_intents.list()) == []
    created = create_intent(client, 2500, currency="cad", allowed_payment_method_types=["interac_present"],
                            capture_method="automatic")  # fmt: skip
    assert created.capture_method == "automatic"
