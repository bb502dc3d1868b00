"""The receipt data the gateway reads from a PaymentIntent's latest charge: the real stripe library,
over real HTTP, against the emulator; the same one request per authorisation as before."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import stripe
from conftest import TEST_KEY, EmulatorHandle
from support.emulator_fidelity import INTERAC_PAYMENT, count_requests, create_intent

from readerhost.daemon.payments.gateway import GatewaySettings, StripeGateway, _intent_view
from readerhost.daemon.payments.model import Receipt
from readerhost.daemon.payments.outcomes import Declined, IntentView, Outcome, Succeeded

SETTINGS = GatewaySettings(TEST_KEY, connect_timeout_s=2.0, read_timeout_s=5.0, max_network_retries=0)


@pytest.fixture
def gateway(stripe_emulator: EmulatorHandle) -> StripeGateway:
    return StripeGateway(replace(SETTINGS, api_base=stripe_emulator.url))


def succeeded(outcome: Outcome) -> Succeeded:
    assert isinstance(outcome, Succeeded), outcome
    return outcome


def confirmed(gateway: StripeGateway, payment_method: str, amount: int = 1000, key: str = "order-1") -> IntentView:
    intent = succeeded(
        gateway.create_intent(amount=amount, currency="usd", metadata={"order_id": key}, idempotency_key=key)
    ).intent
    return succeeded(gateway.confirm_intent(intent.id, payment_method, f"{key}-confirm")).intent


def charge_of(client: stripe.StripeClient, intent_id: str) -> stripe.Charge:
    charge = client.v1.payment_intents.retrieve(intent_id, {"expand": ["latest_charge"]}).latest_charge
    assert isinstance(charge, stripe.Charge)
    return charge


def test_an_authorisation_carries_every_receipt_field_of_its_charge_in_the_one_confirm_request(
    gateway: StripeGateway, client: stripe.StripeClient, stripe_emulator: EmulatorHandle
) -> None:
    confirms = count_requests(stripe_emulator.emulator, "POST", "/confirm$")
    reads = count_requests(stripe_emulator.emulator, "GET", "^/v1/(payment_intents|charges)")

    view = confirmed(gateway, "pm_card_present_online_pin_cvm__contact_emv")

    assert (confirms.fired, reads.fired) == (1, 0)  # the receipt came with the confirm's answer
    charge = charge_of(client, view.id)
    assert charge.payment_method_details is not None
    assert charge.payment_method_details.card_present is not None
    present = charge.payment_method_details.card_present
    emv = present.receipt
    assert emv is not None
    assert view.receipt == Receipt(
        brand=present.brand,
        last4=present.last4,
        read_method="contact_emv",
        wallet=None,
        account_type=emv.account_type,
        application_preferred_name=emv.application_preferred_name,
        dedicated_file_name=emv.dedicated_file_name,
        authorization_code=emv.authorization_code,
        authorization_response_code=emv.authorization_response_code,
        application_cryptogram=emv.application_cryptogram,
        terminal_verification_results=emv.terminal_verification_results,
        transaction_status_information=emv.transaction_status_information,
        cardholder_verification_method=emv.cardholder_verification_method,
        receipt_url=charge.receipt_url,
    )
    # What Stripe gave, not defaults: a chip read with an online PIN, approved (EMV tag 8A "00").
    assert view.receipt.dedicated_file_name == "A0000000031010"
    assert view.receipt.cardholder_verification_method == "online_pin"
    assert view.receipt.authorization_response_code == "3030"
    assert view.receipt.authorization_code
    assert view.receipt.receipt_url


def test_a_swiped_card_has_a_receipt_without_chip_fields(gateway: StripeGateway) -> None:
    view = confirmed(gateway, "pm_card_present_mastercard__magnetic_stripe_track2")

    receipt = view.receipt
    assert receipt is not None
    assert (receipt.brand, receipt.last4, receipt.read_method) == ("mastercard", "4444", "magnetic_stripe_track2")
    assert (receipt.dedicated_file_name, receipt.application_cryptogram, receipt.application_preferred_name) == (
        None,
        None,
        None,
    )
    assert receipt.cardholder_verification_method == "signature"


def test_a_decline_carries_the_declined_charges_receipt(gateway: StripeGateway) -> None:
    intent = succeeded(
        gateway.create_intent(amount=1000, currency="usd", metadata={"order_id": "d"}, idempotency_key="d")
    ).intent
    outcome = gateway.confirm_intent(intent.id, "pm_card_present_charge_declined_insufficient_funds", "d-confirm")
    assert isinstance(outcome, Declined)
    # The declined charge's receipt says why (EMV tag 8A "51": insufficient funds), with no approval code.
    for view in (outcome.intent, succeeded(gateway.retrieve_intent(intent.id)).intent):
        assert view is not None
        assert view.receipt is not None
        assert (view.receipt.last4, view.receipt.authorization_response_code) == ("9995", "3531")
        assert view.receipt.authorization_code is None


def test_an_unexpanded_charge_gives_no_receipt(gateway: StripeGateway, client: stripe.StripeClient) -> None:
    view = confirmed(gateway, "pm_card_present_visa")
    plain = client.v1.payment_intents.retrieve(view.id)
    assert isinstance(plain.latest_charge, str)
    assert _intent_view(plain).receipt is None


def with_charge(card_present: dict[str, Any]) -> stripe.PaymentIntent:
    """A PaymentIntent as Stripe sends it, whose charge has these card_present details."""
    charge = {
        "id": "ch_1", "object": "charge", "status": "succeeded", "receipt_url": "https://pay.stripe.com/receipts/x",
        "payment_method_details": {"type": "card_present", "card_present": card_present},
    }  # fmt: skip
    data = {
        "id": "pi_1", "object": "payment_intent", "status": "requires_capture", "amount": 100, "currency": "usd",
        "amount_capturable": 100, "amount_received": 0, "created": 1, "metadata": {}, "cancellation_reason": None,
        "last_payment_error": None, "latest_charge": charge,
    }  # fmt: skip
    return stripe.PaymentIntent.construct_from(data, "sk_test_x")


def test_a_wallet_payment_names_its_wallet_and_missing_fields_stay_none() -> None:
    view = _intent_view(
        with_charge(
            {
                "brand": "visa",
                "last4": "0005",
                "read_method": "contactless_emv",
                "capture_before": None,
                "wallet": {"type": "apple_pay"},
            }
        )
    )
    assert view.receipt == Receipt(
        brand="visa",
        last4="0005",
        read_method="contactless_emv",
        wallet="apple_pay",
        receipt_url="https://pay.stripe.com/receipts/x",
    )
    no_wallet = _intent_view(
        with_charge({"brand": "visa", "last4": "0005", "capture_before": None, "wallet": None, "receipt": None})
    )
    assert no_wallet.receipt is not None
    assert no_wallet.receipt.wallet is None


def test_an_interac_payment_has_its_receipt_from_interac_present(
    gateway: StripeGateway, client: stripe.StripeClient
) -> None:
    intent = create_intent(client, 2500, currency="cad", **INTERAC_PAYMENT)
    client.v1.payment_intents.confirm(intent.id, params={"payment_method": "pm_card_present_interac"})

    view = succeeded(gateway.retrieve_intent(intent.id)).intent

    assert view.status == "succeeded"
    receipt = view.receipt
    assert receipt is not None
    assert (receipt.brand, receipt.last4) == ("interac", "1933")
    assert (receipt.dedicated_file_name, receipt.application_preferred_name) == ("A0000002771010", "Interac")
    assert receipt.account_type == "checking"
    assert receipt.wallet is None  # interac_present details have no wallet
