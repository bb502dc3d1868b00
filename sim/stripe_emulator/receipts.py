"""The EMV receipt data a reader reports for a card-present charge (`payment_method_details.card_present.receipt`,
and `emv_auth_data`), made up plausibly for each test card and read method.

Card networks require several of these fields on a printed receipt (the reference's §11). The values are
deterministic for a charge: the AID and application name of the card's brand, the cardholder verification
the card and read method imply, and an authorisation response code (EMV tag 8A) that says approved or why not.
"""

from __future__ import annotations

import hashlib
from typing import Any

from .testcards import Decline, PresentedCard

# EMV application identifiers (tag 84, `dedicated_file_name`) by brand: the networks' registered AIDs.
AIDS = {
    "visa": "A0000000031010",
    "mastercard": "A0000000041010",
    "amex": "A00000002501",
    "discover": "A0000001523010",
    "interac": "A0000002771010",
}
APPLICATION_NAMES = {
    "visa": "Visa Credit",
    "mastercard": "Mastercard",
    "amex": "American Express",
    "discover": "Discover",
    "interac": "Interac",
}
# A card's funding, as the receipt's `account_type` (Stripe: checking, credit, prepaid, unknown).
ACCOUNT_TYPES = {"credit": "credit", "debit": "checking", "prepaid": "prepaid"}
# Read methods with no chip application behind them: no cryptogram, AID or terminal results.
MAGNETIC_STRIPE = ("magnetic_stripe_track2", "magnetic_stripe_fallback", "contactless_magstripe_mode")
CONTACTLESS = ("contactless_emv", "contactless_magstripe_mode")
# ISO 8583 response codes (as EMV tag 8A carries them) for the test declines.
RESPONSE_CODES = {
    "call_issuer": "01",
    "generic_decline": "05",
    "lost_card": "41",
    "stolen_card": "43",
    "insufficient_funds": "51",
    "expired_card": "54",
    "incorrect_pin": "55",
    "withdrawal_count_limit_exceeded": "65",
    "offline_pin_required": "65",
    "online_or_offline_pin_required": "65",
    "pin_try_exceeded": "75",
    "processing_error": "96",
}
APPROVED = "00"


def authorization_response_code(decline: Decline | None) -> str:
    """EMV tag 8A as Stripe shows it: the two ASCII characters of the response code, in hex (`3030`: approved)."""
    code = APPROVED if decline is None else RESPONSE_CODES.get(decline.decline_code, "05")
    return code.encode().hex().upper()


def emv_auth_data(decline: Decline | None) -> str:
    """The authorisation response cryptogram data: here tag 8A, length 2, and its value."""
    return "8A02" + authorization_response_code(decline)


def cardholder_verification_method(presented: PresentedCard) -> str:
    """How the cardholder was verified: a PIN card by its PIN, a swipe by signature, anything else not at all.

    Contactless never asks for a PIN below the contactless limits, and the test amounts stay below them.
    """
    if presented.read_method in CONTACTLESS:
        return "none"
    if presented.card.cvm is not None:
        return presented.card.cvm
    if presented.read_method in MAGNETIC_STRIPE:
        return "signature"
    return "none"


def receipt(presented: PresentedCard, charge_id: str, decline: Decline | None) -> dict[str, Any]:
    card = presented.card
    chip = presented.read_method not in MAGNETIC_STRIPE
    digest = hashlib.sha256(charge_id.encode()).hexdigest().upper()
    contactless = presented.read_method in CONTACTLESS
    name = "Visa Debit" if card.brand == "visa" and card.funding == "debit" else APPLICATION_NAMES.get(card.brand)
    return {
        "account_type": ACCOUNT_TYPES.get(card.funding, "unknown"),
        "application_cryptogram": digest[:16] if chip else None,
        "application_preferred_name": name if chip else None,
        "authorization_code": str(int(digest[16:24], 16) % 1_000_000).zfill(6) if decline is None else None,
        "authorization_response_code": authorization_response_code(decline),
        "cardholder_verification_method": cardholder_verification_method(presented),
        "dedicated_file_name": AIDS.get(card.brand) if chip else None,
        "terminal_verification_results": "0000000000" if chip else None,
        "transaction_status_information": ("0000" if contactless else "E800") if chip else None,
    }
