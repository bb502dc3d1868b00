"""Stripe's test values for card-present payments: test payment methods and test amounts.

A reader in test mode turns a presented test card into a payment method; here each of Stripe's
simulated-reader test cards has a fixed reference named after it (never its number):
`pm_card_present_<name>`, optionally followed by `__<read_method>` to say how it was read,
e.g. `pm_card_present_visa__contact_emv`.
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "pm_card_present_"
READ_METHODS = (
    "contact_emv",
    "contactless_emv",
    "contactless_magstripe_mode",
    "magnetic_stripe_fallback",
    "magnetic_stripe_track2",
)
HOUR = 3600


@dataclass(frozen=True)
class Decline:
    code: str
    decline_code: str
    message: str


GENERIC = "Your card was declined."


@dataclass(frozen=True)
class TestCard:
    name: str
    brand: str
    last4: str
    funding: str
    default_read_method: str
    decline: Decline | None = None
    cvm: str | None = None  # cardholder verification method, when the card asks for a PIN
    interac: bool = False

    @property
    def reference(self) -> str:
        return PREFIX + self.name


TEST_CARDS = {
    card.name: card
    for card in (
        TestCard("visa", "visa", "4242", "credit", "contactless_emv"),
        TestCard("visa_debit", "visa", "5556", "debit", "contactless_emv"),
        TestCard("mastercard", "mastercard", "4444", "credit", "contactless_emv"),
        TestCard("amex", "amex", "0005", "credit", "contactless_emv"),
        TestCard("discover", "discover", "1117", "credit", "contactless_emv"),
        TestCard("interac", "interac", "1933", "debit", "contact_emv", interac=True),
        TestCard("offline_pin_cvm", "visa", "0002", "credit", "contact_emv", cvm="offline_pin"),
        TestCard("online_pin_cvm", "visa", "0005", "credit", "contact_emv", cvm="online_pin"),
        TestCard(
            "charge_declined",
            "visa",
            "0002",
            "credit",
            "contactless_emv",
            Decline("card_declined", "generic_decline", GENERIC),
        ),
        TestCard(
            "charge_declined_insufficient_funds",
            "visa",
            "9995",
            "credit",
            "contactless_emv",
            Decline("card_declined", "insufficient_funds", "Your card has insufficient funds."),
        ),
        TestCard(
            "charge_declined_lost_card",
            "visa",
            "9987",
            "credit",
            "contactless_emv",
            Decline("card_declined", "lost_card", GENERIC),
        ),
        TestCard(
            "charge_declined_stolen_card",
            "visa",
            "9979",
            "credit",
            "contactless_emv",
            Decline("card_declined", "stolen_card", GENERIC),
        ),
        TestCard(
            "charge_declined_expired_card",
            "visa",
            "0069",
            "credit",
            "contactless_emv",
            Decline("expired_card", "expired_card", "Your card has expired."),
        ),
        TestCard(
            "charge_declined_processing_error",
            "visa",
            "0119",
            "credit",
            "contactless_emv",
            Decline(
                "processing_error",
                "processing_error",
                "An error occurred while processing your card. Try again in a little bit.",
            ),
        ),
    )
}

# Stripe's physical test card declines by the amount's last two digits (minor units).
AMOUNT_DECLINES = {
    1: "call_issuer",
    2: "offline_pin_required",
    3: "online_or_offline_pin_required",
    5: "generic_decline",
    55: "incorrect_pin",
    60: "online_or_offline_pin_required",
    65: "withdrawal_count_limit_exceeded",
    75: "pin_try_exceeded",
}

# How long a card-present authorisation can be captured: Visa 4 days 18 hours, others 2 days.
AUTHORISATION_WINDOW_S = {"visa": 4 * 24 * HOUR + 18 * HOUR}
DEFAULT_AUTHORISATION_WINDOW_S = 2 * 24 * HOUR


@dataclass(frozen=True)
class PresentedCard:
    card: TestCard
    read_method: str
    reference: str


def resolve_payment_method(reference: str) -> PresentedCard | None:
    """The test card a reference stands for, or None if it names none."""
    if not reference.startswith(PREFIX):
        return None
    name, _, read_method = reference[len(PREFIX) :].partition("__")
    card = TEST_CARDS.get(name)
    if card is None or (read_method and read_method not in READ_METHODS):
        return None
    return PresentedCard(card, read_method or card.default_read_method, reference)


def decline_for(presented: PresentedCard, amount: int) -> Decline | None:
    if presented.card.decline is not None:
        return presented.card.decline
    return amount_decline(amount)


def amount_decline(amount: int) -> Decline | None:
    """The decline Stripe's test amounts ask for by their last two digits, if any."""
    code = AMOUNT_DECLINES.get(amount % 100)
    return Decline("card_declined", code, GENERIC) if code else None


def authorisation_window_s(brand: str) -> int:
    return AUTHORISATION_WINDOW_S.get(brand, DEFAULT_AUTHORISATION_WINDOW_S)


# Flexible authorisations, for the emulated account, whose merchant category is none of the restricted
# ones (no lodging, vehicle rental or passenger transport): docs/stripe-emulator.md gives the sources.
# Incremental authorisation: Visa and Mastercard in every category; Discover only in restricted ones; and
# never single-message Interac. American Express is listed by some of Stripe's pages and not others: the
# conservative reading leaves it out.
INCREMENTAL_BRANDS = frozenset({"visa", "mastercard"})
# Extended authorisation in an unrestricted category: Mastercard holds for 30 days; Visa, American
# Express and Discover extend only in restricted categories (their standard window applies).
EXTENDED_AUTHORISATION_WINDOW_S = {"mastercard": 30 * 24 * HOUR}
# The decline codes an increment may be scripted to meet (POST /_emulator/increment_declines).
INCREMENT_DECLINES = {
    "generic_decline": Decline("card_declined", "generic_decline", GENERIC),
    "insufficient_funds": Decline("card_declined", "insufficient_funds", "Your card has insufficient funds."),
    "do_not_honor": Decline("card_declined", "do_not_honor", GENERIC),
}


def supports_incremental_authorisation(card: TestCard) -> bool:
    return not card.interac and card.brand in INCREMENTAL_BRANDS


def extended_authorisation_window_s(brand: str) -> int | None:
    """The capture window of an extended authorisation of this brand, or None when it is not extended."""
    return EXTENDED_AUTHORISATION_WINDOW_S.get(brand)


def increment_decline(decline_code: str) -> Decline:
    return INCREMENT_DECLINES[decline_code]
