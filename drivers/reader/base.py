"""The interface between the daemon and a card reader.

A reader collects one payment method at a time: given an amount, it prompts the customer,
reports what to show (input options, display messages, card inserted/removed) and hands back
an opaque payment-method reference with what may be shown of the card. It never hands over a
card number. Collection is canceled by canceling the task that awaits `collect`.

A reader says what it can do (`capabilities`); an optional operation it lacks is answered here, by
`ReaderBase`, with `Unsupported` (pcscd's SCARD_E_UNSUPPORTED_FEATURE): the layers above never
test which driver they hold.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from . import ReaderSettings
    from .link.backend import SdkBackend
    from .stripe_terminal import Registrations, TerminalApi

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
    wallet: str | None = None  # the wallet the card was in (apple_pay, google_pay, ...), if any
    network: str | None = None  # the card network that will carry the payment (visa, interac, ...)
    # From a reader that CONFIRMS_ITSELF (Stripe's smart readers) `reference` may be empty (the
    # reader keeps the card for its own confirm), and so may the card's fields when the reader
    # confirmed within its collect (one-step): the card is then read back from the PaymentIntent.


@dataclass(frozen=True)
class RefundOrder:
    """A refund made with the card at the reader (REFUNDS_AT_READER): of `amount` of the PaymentIntent's
    charge, the `metadata` (with the host's refund_id) on the refund, under one idempotency key that
    the host committed before asking."""

    payment_intent: str
    amount: int
    metadata: dict[str, str]
    idempotency_key: str

    @property
    def refund_id(self) -> str:
        return self.metadata["refund_id"]


@dataclass(frozen=True)
class Paired:
    """What `pair` did: bonded with the reader at `address`, or found it `already` bonded."""

    address: str
    already: bool


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


@dataclass(frozen=True)
class Location:
    """A Stripe Terminal location (`tml_...`) a reader can be registered in."""

    id: str
    display_name: str
    address: dict[str, str]  # line1, line2, city, state, postal_code, country: those Stripe has

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "display_name": self.display_name, "address": dict(self.address)}


class ReaderState(StrEnum):
    """Where a reader stands (`status()["state"]`, `reader.state` on the socket)."""

    CONNECTING = "connecting"  # not reached yet since the daemon started
    READY = "ready"
    COLLECTING = "collecting"
    CANCELING = "canceling"  # a collection is being stopped
    DISCONNECTED = "disconnected"  # reached once, lost since


# The reader has not answered (yet, or any more): nothing can be collected.
UNREACHED = frozenset({ReaderState.CONNECTING, ReaderState.DISCONNECTED})


class Capability(StrEnum):
    """What the daemon may ask of a reader, or leave to it."""

    PRESENTS_TEST_CARDS = "presents_test_cards"  # reader.present: a technician presents a test card
    SHOWS_CART = "shows_cart"  # reader.display_cart: the reader has a screen for the items
    # The host may keep the collected payment method and authorise later, when Stripe is unreachable.
    STORES_OFFLINE = "stores_offline"
    # The reader goes to Stripe itself: `process` has it confirm; the host reads the outcome, never confirms.
    CONFIRMS_ITSELF = "confirms_itself"
    # The reader stores a payment itself while Stripe is unreachable (a Terminal SDK's offline mode) and
    # forwards it later: the host keeps it queued_offline and reads the PaymentIntent it forwarded.
    FORWARDS_OFFLINE = "forwards_offline"
    TAKES_TIPS = "takes_tips"  # the reader offers the customer a tip on its screen (payment.start's tipping)
    REFUNDS_AT_READER = "refunds_at_reader"  # the card is presented again for a refund
    # reader.register and reader.locations: the reader is registered at Stripe with a code, in a location.
    REGISTERS = "registers"
    PAIRS = "pairs"  # reader.pair: the host bonds with the reader (Bluetooth LE Secure Connections)


class ReaderError(Exception):
    """A collection that ended without a payment method; `code` is in the daemon's vocabulary."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# What a reader without a capability does instead, for Unsupported's message.
_WITHOUT = {
    Capability.PRESENTS_TEST_CARDS: "takes real cards, not test cards",
    Capability.SHOWS_CART: "has no screen for a cart",
    Capability.CONFIRMS_ITSELF: "does not confirm payments itself: the host confirms what it collects",
    Capability.REFUNDS_AT_READER: "cannot refund at the reader",
    Capability.REGISTERS: "is not registered at Stripe",
    Capability.TAKES_TIPS: "has no screen to offer a tip",
    Capability.PAIRS: "is not paired: it is no Bluetooth reader",
}


class Unsupported(ReaderError):
    """An operation the reader cannot do: it lacks `capability`."""

    def __init__(self, reader: str, capability: Capability) -> None:
        super().__init__("UNSUPPORTED", f"the {reader} reader {_WITHOUT[capability]}")
        self.capability = capability


# The code of a ReaderError for a refund at the reader that Stripe refused (its message says why).
REFUND_REFUSED = "refund_refused"


class RefundOutcomeUnknown(ReaderError):
    """A refund at the reader whose fate cannot be told now (Stripe not answering, the request still
    in flight): it may yet be made, so the host must look again rather than call it failed."""

    def __init__(self, message: str) -> None:
        super().__init__("refund_outcome_unknown", message)


class StoredOffline(ReaderError):
    """FORWARDS_OFFLINE: the collection ended with the payment stored on the reader (Stripe was
    unreachable), to be forwarded by the reader later under `offline_ref`. Not an authorisation:
    what it becomes is read from the PaymentIntent the reader forwards."""

    def __init__(self, offline_ref: str, brand: str, last4: str, read_method: str) -> None:
        super().__init__("stored_offline", f"the reader stored the payment offline as {offline_ref}")
        self.offline_ref = offline_ref
        self.brand = brand
        self.last4 = last4
        self.read_method = read_method


class NotCollecting(ReaderError):
    """A card presented while no payment waits for one."""

    def __init__(self) -> None:
        super().__init__("not_collecting", "the reader is not waiting for a card")


class FixedByConfiguration(ReaderError):
    """What was asked would be undone by the configuration at the next start (a technician changes it there)."""

    def __init__(self, message: str) -> None:
        super().__init__("fixed_by_configuration", message)


class UnknownTestCard(ReaderError):
    def __init__(self, name: str, known: Iterable[str]) -> None:
        super().__init__("unknown_card", f"unknown test card {name!r}; known: {', '.join(known)}")


def require(reader: Reader, capability: Capability) -> None:
    """Unsupported unless `reader` declares `capability`: for a caller that must know before it acts."""
    if capability not in reader.capabilities:
        raise Unsupported(reader.driver, capability)


class ReaderListener(Protocol):
    def input_options(self, options: list[str]) -> None: ...

    def display_message(self, message: str) -> None: ...

    def card_event(self, event: str) -> None: ...


class Reader(Protocol):
    @property
    def driver(self) -> str:
        """The driver's name in the registry (for messages)."""
        ...

    @property
    def capabilities(self) -> frozenset[Capability]:
        """What the daemon may ask of this reader, or leave to it."""
        ...

    async def collect(
        self,
        amount: int,
        currency: str,
        listener: ReaderListener,
        *,
        payment_intent: str | None = None,
        tipping: int | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> CollectedPaymentMethod:
        """Wait for the customer's card; raises ReaderError, or CancelledError when canceled.
        `payment_intent` is the PaymentIntent the card is for (server-driven readers need it);
        `tipping`, for a reader that TAKES_TIPS, is the amount a tip is suggested on (None: no tip);
        `metadata`, for a reader that FORWARDS_OFFLINE, is what its SDK must put on a PaymentIntent it
        makes itself for this payment (the host's order metadata: order_id, terminal_id, payment_id)."""
        ...

    def unavailable(self) -> str | None:
        """Why the reader cannot collect now (e.g. not connected), or None when it can."""
        ...

    async def process(self, payment_intent: str, listener: ReaderListener) -> None:
        """CONFIRMS_ITSELF: have the reader confirm the PaymentIntent whose payment method it has just
        collected (the seed's second step). Returns once the reader's confirm has ended, whatever its
        result: the outcome is read from the PaymentIntent, never believed from the reader. Raises
        ReaderError when the reader could not be asked or its answer was lost; the host then learns the
        truth from the reader and the PaymentIntent before anything is asked again."""
        ...

    async def refund(self, order: RefundOrder, listener: ReaderListener) -> None:
        """REFUNDS_AT_READER: refund with the card presented; returns when the reader says it refunded,
        raises ReaderError when it did not (or CancelledError when canceled). Never believed about the
        money: the host reads the refund from Stripe. Asking again with the same order follows the
        reader's action already under way rather than starting another."""
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

    def present(self, card: str) -> None:
        """PRESENTS_TEST_CARDS: present the emulator's test card `card` to the collection in progress;
        NotCollecting when none is, UnknownTestCard for a name the emulator does not have."""
        ...

    async def show_cart(self, cart: Cart) -> None:
        """SHOWS_CART: show the items on the reader's screen, between payments."""
        ...

    async def register(self, registration_code: str, location: str | None, label: str | None) -> None:
        """REGISTERS: register a reader at Stripe with the code it shows, and use it from now on (and
        after a restart); ReaderError when Stripe refuses or cannot be reached."""
        ...

    async def locations(self) -> list[Location]:
        """REGISTERS: the account's Terminal locations a reader can be registered in."""
        ...

    async def pair(self) -> Paired:
        """PAIRS: bond with the reader (it must be in pairing mode, and not hold the link for a payment);
        ReaderError saying why when it could not."""
        ...


# Each optional operation, and the capability a reader declares when it does it.
OPERATIONS = {
    "present": Capability.PRESENTS_TEST_CARDS,
    "show_cart": Capability.SHOWS_CART,
    "register": Capability.REGISTERS,
    "locations": Capability.REGISTERS,
    "process": Capability.CONFIRMS_ITSELF,
    "refund": Capability.REFUNDS_AT_READER,
    "pair": Capability.PAIRS,
}


class ReaderBase:
    """Every driver's reader: an operation it does not override is Unsupported, from here.

    A subclass sets `driver` (its name in the registry) and `capabilities` (its module's
    CAPABILITIES), and overrides exactly the OPERATIONS of the capabilities it declares
    (tests/reader/test_registry.py holds each driver to that)."""

    driver: str
    capabilities: frozenset[Capability] = frozenset()

    def present(self, card: str) -> None:
        raise Unsupported(self.driver, Capability.PRESENTS_TEST_CARDS)

    async def show_cart(self, cart: Cart) -> None:
        raise Unsupported(self.driver, Capability.SHOWS_CART)

    async def register(self, registration_code: str, location: str | None, label: str | None) -> None:
        raise Unsupported(self.driver, Capability.REGISTERS)

    async def locations(self) -> list[Location]:
        raise Unsupported(self.driver, Capability.REGISTERS)

    async def process(self, payment_intent: str, listener: ReaderListener) -> None:
        raise Unsupported(self.driver, Capability.CONFIRMS_ITSELF)

    async def refund(self, order: RefundOrder, listener: ReaderListener) -> None:
        raise Unsupported(self.driver, Capability.REFUNDS_AT_READER)

    async def pair(self) -> Paired:
        raise Unsupported(self.driver, Capability.PAIRS)


@dataclass(frozen=True)
class ReaderContext:
    """What the host offers a reader driver it opens (drivers never import the daemon)."""

    reader: ReaderSettings  # the [reader] settings every driver shares (card_wait_s, ...)
    notify: Notify
    host: str = "readerhost"  # the host's name and version, told to a link reader's device
    # Makes the Stripe Terminal API client a Stripe smart reader is driven through.
    terminal_api: Callable[[], TerminalApi] | None = None
    # A turn in the host's pacing of its own requests to Stripe (a smart reader's health checks wait for one).
    stripe_turn: Callable[[], Awaitable[None]] | None = None
    # Where the host keeps the reader a registration code made, for the next start (its store).
    registrations: Registrations | None = None
    # bleak's (client, scanner) backends instead of BlueZ (tests); the client backend also answers
    # `await bonded(address)` (BlueZ: Device1's Bonded property).
    ble_backends: tuple[Any, Any] | None = None
    # Makes the Stripe side of a protocol 2 link reader (connection tokens, client secrets).
    sdk_backend: Callable[[str | None], SdkBackend] | None = None
    live: bool = False  # the daemon holds a live-mode key: only readers that take real cards may serve
    # FORWARDS_OFFLINE: how the reader tells the host it forwarded a stored payment (offline_ref, pi_...).
    forwarded: Callable[[str, str], None] | None = None
