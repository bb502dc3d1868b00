"""The interface between the daemon and a card reader.

A reader collects one payment method at a time: given an amount, it prompts the customer,
reports what to show (input options, display messages, card inserted/removed) and hands back
an opaque payment-method reference with what may be shown of the card. It never hands over a
card number. Collection is canceled by canceling the task that awaits `collect`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

# What the customer may do, and what to tell them (Stripe Terminal's ReaderInputOptions and
# ReaderDisplayMessage), and the card events.
INPUT_OPTIONS = ("swipe", "insert", "tap")
DISPLAY_MESSAGES = {
    "retry_card": "Retry card",
    "insert_card": "Insert card",
    "insert_or_swipe_card": "Insert or swipe card",
    "swipe_card": "Swipe card",
    "remove_card": "Remove card",
    "multiple_contactless_cards_detected": "More than one card detected: present one card",
    "try_another_read_method": "Try another read method",
    "try_another_card": "Try another card",
    "card_removed_too_early": "Card removed too early",
    # readerhost's own: a Stripe smart reader prompts on its own screen.
    "follow_reader": "Follow the reader's screen",
}
CARD_EVENTS = ("card_inserted", "card_removed")


@dataclass(frozen=True)
class CollectedPaymentMethod:
    reference: str  # the reader's opaque payment-method reference (e.g. pm_...)
    brand: str
    last4: str
    read_method: str
    # A server-driven reader (Stripe's smart readers) presents the card to Stripe itself: the
    # PaymentIntent is already confirmed, or declined, and must be read back, not confirmed again.
    processed: bool = False


@dataclass(frozen=True)
class CartLine:
    description: str
    amount: int  # minor units
    quantity: int


@dataclass(frozen=True)
class Cart:
    """The items being rung up, for a reader with a screen for them (Stripe's smart readers)."""

    currency: str
    line_items: tuple[CartLine, ...]
    tax: int | None
    total: int


class ReaderError(Exception):
    """A collection that ended without a payment method; `code` is in the daemon's vocabulary."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ReaderListener(Protocol):
    def input_options(self, options: list[str]) -> None: ...

    def display_message(self, message: str) -> None: ...

    def card_event(self, event: str) -> None: ...


class Reader(Protocol):
    async def collect(
        self, amount: int, currency: str, listener: ReaderListener, *, payment_intent: str | None = None
    ) -> CollectedPaymentMethod:
        """Wait for the customer's card; raises ReaderError, or CancelledError when canceled.
        `payment_intent` is the PaymentIntent the card is for (server-driven readers need it)."""
        ...

    def unavailable(self) -> str | None:
        """Why the reader cannot collect now (e.g. not connected), or None when it can."""
        ...


# How a reader driver tells the daemon that it was reached or lost: notify(event, data), with event
# "reader.connected" or "reader.disconnected" and data {id, model, reason}.
Notify = Callable[[str, dict[str, Any]], None]


class ReaderDriver(Reader, Protocol):
    """A reader the daemon owns: started and stopped with it, and described in status.get."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def status(self) -> dict[str, Any]:
        """{state, id, model, serial, battery, ...}; state is ready, collecting, connecting, ..."""
        ...
