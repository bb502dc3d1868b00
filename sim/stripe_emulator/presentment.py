"""What a simulated reader makes of a presented card: Stripe's simulated-reader test numbers
(https://docs.stripe.com/terminal/references/testing) resolved to the emulator's test payment
methods (`pm_card_present_<name>`).

The number is looked up and forgotten: only the test card it names goes on, as a reader hands the
host an opaque payment method (Stripe shows nothing of a number but its last four digits).
"""

from __future__ import annotations

from .errors import invalid_request
from .testcards import PREFIX, PresentedCard, resolve_payment_method

# Stripe's simulated-reader test card numbers, by the name of the test card each stands for.
TEST_NUMBERS = {
    "4242424242424242": "visa",
    "4000056655665556": "visa_debit",
    "5555555555554444": "mastercard",
    "378282246310005": "amex",
    "6011111111111117": "discover",
    "4506445006931933": "interac",
    "4001007020000002": "offline_pin_cvm",
    "4001000360000005": "online_pin_cvm",
    "4000000000000002": "charge_declined",
    "4000000000009995": "charge_declined_insufficient_funds",
    "4000000000009987": "charge_declined_lost_card",
    "4000000000009979": "charge_declined_stolen_card",
    "4000000000000069": "charge_declined_expired_card",
    "4000000000000119": "charge_declined_processing_error",
}
# What a simulated reader reads when the test helper names no number, by payment method type.
DEFAULT_CARDS = {"card_present": "visa", "interac_present": "interac"}


def present(kind: str, number: str | None) -> PresentedCard:
    """The payment method the reader makes of a card of `kind` with `number` (None: the default card)."""
    if kind not in DEFAULT_CARDS:
        raise invalid_request(
            f"Invalid type: a simulated reader is presented one of {', '.join(DEFAULT_CARDS)}; got {kind}.",
            param="type",
        )
    name = DEFAULT_CARDS[kind] if number is None else TEST_NUMBERS.get(number)
    if name is None:
        raise invalid_request(
            "The simulated reader knows Stripe's test card numbers for simulated readers only; see "
            "https://docs.stripe.com/terminal/references/testing#standard-test-cards.",
            param=f"{kind}[number]",
        )
    presented = resolve_payment_method(PREFIX + name)
    assert presented is not None, name  # every name above is a test card
    return presented
