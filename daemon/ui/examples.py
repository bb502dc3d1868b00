"""One named example of every screen, for the golden-image tests and docs/screens.md."""

from __future__ import annotations

from dataclasses import dataclass, replace

from readerhost.daemon.ui import catalog
from readerhost.daemon.ui.screens import Screen
from readerhost.drivers.reader.base import DISPLAY_MESSAGES

SMALL = (128, 32)


@dataclass(frozen=True)
class Example:
    name: str
    screen: Screen
    when: str  # when the screen is shown, for the docs
    size: tuple[int, int] = (128, 64)


def examples() -> tuple[Example, ...]:
    amount_due = catalog.amount_due(1250, "usd", description="Order A-1001")
    confirm = catalog.confirm(1250, "usd", card="Visa 4242")
    several_cards = catalog.reader_message("multiple_contactless_cards_detected", 1250, "usd")
    declined = catalog.declined("insufficient_funds")
    found = [
        Example("idle", catalog.idle(), "between payments, when the POS has set no text"),
        Example(
            "idle_pos_lines",
            catalog.idle(["Order 42 is ready", "Thank you for your visit!"]),
            "between payments: the lines of the POS's `display.show`",
        ),
        Example("idle_test", replace(catalog.idle(), marker="TEST"), "idle with a Stripe test key: a TEST badge"),
        Example("idle_emu", replace(catalog.idle(), marker="EMU"), "idle on the built-in Stripe emulator"),
        Example(
            "amount_due",
            amount_due,
            "payment `collecting`: the amount and the reader's `reader.input_options`",
        ),
        Example(
            "amount_due_insert_or_swipe",
            catalog.amount_due(995, "eur", options=("insert", "swipe")),
            "a reader that cannot read contactless cards (or was told not to)",
        ),
        Example("amount_due_gbp", catalog.amount_due(450, "gbp", options=("tap",)), "a contactless-only payment"),
        Example("amount_due_jpy", catalog.amount_due(1250, "jpy"), "a zero-decimal currency"),
        Example("amount_due_chf", catalog.amount_due(1250, "chf"), "a currency without a symbol"),
        Example(
            "amount_due_test",
            replace(amount_due, marker="TEST", buttons=("", "Cancel")),
            "with a TEST badge and a Cancel button",
        ),
        *(
            Example(
                f"reader_message_{message}",
                catalog.reader_message(message, 1250, "usd"),
                f"`reader.display_message` `{message}`",
            )
            for message in DISPLAY_MESSAGES
        ),
        Example("processing", catalog.processing(), "payment `processing`: the authorisation is under way"),
        Example("confirm", confirm, "payment `awaiting_confirmation`: the customer confirms with the buttons"),
        Example("approved", catalog.approved(1250, "usd"), "payment `authorized` or `captured`"),
        Example("declined", declined, "payment `declined`, with a short reason"),
        Example("canceled", catalog.canceled(), "payment `canceled`"),
        Example(
            "offline_queued",
            catalog.offline_queued(1250, "usd"),
            "payment `queued_offline`: Stripe unreachable, the payment waits in the queue",
        ),
        Example(
            "reader_disconnected",
            catalog.reader_disconnected(),
            "`reader.disconnected`: no payment can be taken",
        ),
        Example(
            "stripe_unreachable",
            catalog.stripe_unreachable(),
            "`system.stripe` unreachable and payments must be online",
        ),
        Example(
            "technician",
            catalog.technician("192.168.1.23", "WisePOS E", 3, "0.1.0"),
            "asked for by a technician (address, reader, queue, version)",
        ),
        Example(
            "technician_deadline",
            catalog.technician("192.168.1.23", "WisePOS E", 0, "0.1.0", "05 Dec 10:00"),
            "the technician screen while a payment waits for a capture: its deadline, in local time",
        ),
        Example("idle_128x32", catalog.idle(), "idle on a 128x32 panel", SMALL),
        Example("idle_test_128x32", replace(catalog.idle(), marker="TEST"), "idle with a TEST badge, 128x32", SMALL),
        Example("amount_due_128x32", amount_due, "amount due on a 128x32 panel: the order line gives way", SMALL),
        Example(
            "amount_due_test_128x32",
            replace(amount_due, marker="TEST"),
            "amount due with a TEST badge, 128x32",
            SMALL,
        ),
        Example(
            "reader_message_multiple_contactless_cards_detected_128x32",
            several_cards,
            "a long reader message on a 128x32 panel: the amount gives way",
            SMALL,
        ),
        Example("confirm_128x32", confirm, "confirmation on a 128x32 panel: the question gives way", SMALL),
        Example("declined_128x32", declined, "declined on a 128x32 panel", SMALL),
        Example(
            "technician_128x32",
            catalog.technician("192.168.1.23", "WisePOS E", 3, "0.1.0"),
            "the technician screen on a 128x32 panel: the title and the version give way",
            SMALL,
        ),
    ]
    return tuple(found)


def example_screens() -> dict[str, Screen]:
    """Every example by name; names ending in "_128x32" are meant for a 128x32 panel."""
    return {example.name: example.screen for example in examples()}
