"""The screens with their wording, one function per kind.

The marker is left out: the controller adds it to whatever it shows with
`dataclasses.replace(screen, marker="TEST")`.
"""

from __future__ import annotations

from collections.abc import Sequence

from readerhost.daemon.ui.money import format_amount
from readerhost.daemon.ui.screens import OPTIONS, Screen
from readerhost.drivers.reader.base import DISPLAY_MESSAGES

DEFAULT_GREETING = ("Welcome", "Cards accepted here")  # the headline and a line

# Short reasons for Stripe's common decline codes; anything else shows no reason.
DECLINE_REASONS = {
    "insufficient_funds": "Insufficient funds",
    "expired_card": "Card expired",
    "incorrect_pin": "Wrong PIN",
    "pin_try_exceeded": "Too many PIN tries",
    "card_not_supported": "Card not supported",
    "currency_not_supported": "Card not supported",
    "lost_card": "Card not accepted",
    "stolen_card": "Card not accepted",
    "card_velocity_exceeded": "Card limit reached",
    "withdrawal_count_limit_exceeded": "Card limit reached",
    "offline_pin_required": "Insert card for PIN",
    "online_or_offline_pin_required": "Insert card for PIN",
}


def idle(lines: Sequence[str] = ()) -> Screen:
    """Between payments: the POS's `display.show` lines, or a greeting."""
    if lines:
        return Screen("idle", lines=tuple(lines))
    return Screen("idle", headline=DEFAULT_GREETING[0], lines=DEFAULT_GREETING[1:])


def amount_due(amount: int, currency: str, options: Sequence[str] = OPTIONS, description: str = "") -> Screen:
    """The reader waits for a card: the amount, how to present the card, what is being paid."""
    lines = (description,) if description else ()
    return Screen("amount_due", headline=format_amount(amount, currency), lines=lines, options=tuple(options))


def reader_message(message: str, amount: int | None = None, currency: str = "") -> Screen:
    """A prompt of the reader (`reader.display_message`): its text, under the amount if given."""
    headline = format_amount(amount, currency) if amount is not None else ""
    return Screen("reader_message", headline=headline, lines=(DISPLAY_MESSAGES.get(message, message),))


def processing() -> Screen:
    """The card was read; the authorisation is under way."""
    return Screen("processing", headline="Processing", lines=("Please wait",))


def confirm(amount: int, currency: str, card: str = "") -> Screen:
    """The card was read and the customer confirms the payment (a card like "Visa 4242")."""
    question = f"Pay with {card}?" if card else "Confirm payment?"
    return Screen("confirm", headline=format_amount(amount, currency), lines=(question,), buttons=("OK", "Cancel"))


def approved(amount: int, currency: str) -> Screen:
    return Screen("approved", headline="Approved", lines=(format_amount(amount, currency), "Thank you!"))


def declined(decline_code: str = "") -> Screen:
    """The card was declined; a short reason when Stripe's decline code has one."""
    reason = DECLINE_REASONS.get(decline_code, "")
    return Screen("declined", headline="Declined", lines=(reason,) if reason else ())


def canceled() -> Screen:
    return Screen("canceled", headline="Canceled", lines=("No payment was taken",))


def offline_queued(amount: int, currency: str) -> Screen:
    """Stripe cannot be reached: the payment is stored and will be sent when it can."""
    return Screen("offline_queued", headline="Accepted", lines=(format_amount(amount, currency), "Charged when online"))


def reader_disconnected() -> Screen:
    return Screen("reader_disconnected", headline="Sorry", lines=("Card reader offline", "Please ask for help"))


def stripe_unreachable() -> Screen:
    return Screen("stripe_unreachable", headline="Sorry", lines=("Payments unavailable", "Please try again later"))


def technician(ip: str, reader: str, queue_pending: int, version: str, deadline: str = "") -> Screen:
    """For the technician: the address, the reader, the payments waiting in the queue, the nearest
    capture deadline (e.g. "05 Dec 10:00", when a payment waits for a capture), the version."""
    due = (f"Capture {deadline}",) if deadline else ()
    return Screen(
        "technician",
        headline="Service",
        lines=(f"IP {ip}", f"Reader {reader}", f"Queue {queue_pending} waiting", *due, f"readerhost {version}"),
    )
