"""The payment as the POS sees it, and the one table of state transitions every change obeys.

States and their meaning are the POS protocol's (docs/pos-protocol.md); the table adds the few
edges the protocol leaves implicit (a payment that cannot be created fails; a cancel while the
PaymentIntent is still being created), each marked below.
"""

from __future__ import annotations

import datetime
import enum
import re
from dataclasses import dataclass, field, fields, replace
from typing import Any


class State(enum.StrEnum):
    CREATING = "creating"
    COLLECTING = "collecting"
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    PROCESSING = "processing"
    QUEUED_OFFLINE = "queued_offline"
    DECLINED = "declined"
    AUTHORIZED = "authorized"
    CAPTURING = "capturing"
    CAPTURED = "captured"
    CANCELED = "canceled"
    FAILED = "failed"

    @classmethod
    def of(cls, value: object) -> State | None:
        """The state named by `value` (e.g. an event's data), or None for anything else."""
        return cls(value) if isinstance(value, str) and value in cls._value2member_map_ else None


# The groups of states the daemon, the UI and the CLI ask about; defined here only.
# The customer is (or is about to be) at the reader: one such payment at a time.
HOLDS_READER = frozenset({State.CREATING, State.COLLECTING, State.AWAITING_CONFIRMATION})
# Nothing will happen to the payment any more.
TERMINAL = frozenset({State.CAPTURED, State.CANCELED, State.FAILED})
# The customer's part is over and its outcome can be shown (the kiosk's result screens, where
# `readerhostctl pay` stops): neither at the reader nor waiting for the authorisation.
SETTLED = frozenset(State) - HOLDS_READER - {State.PROCESSING}
# An order's attempt in one of these states is over without taking money: the order may be paid
# again (payment.start makes a new attempt). An attempt in any other state is the order's live one.
ATTEMPT_OVER = frozenset({State.CANCELED, State.FAILED})
# The card paid (or is authorised to pay) the order: at most one attempt per order ever gets here.
SUCCESSFUL = frozenset({State.AUTHORIZED, State.CAPTURING, State.CAPTURED})
# An authorisation holds money on the card, not yet captured.
HOLDING = frozenset({State.AUTHORIZED, State.CAPTURING})

# Every allowed change of state. Anything not listed is refused (IllegalTransition).
TRANSITIONS: dict[State, frozenset[State]] = {
    State.CREATING: frozenset(
        {
            State.COLLECTING,
            State.CANCELED,  # added: canceled by the POS, or by a restart, before the card was read
            State.FAILED,  # added: Stripe refused the PaymentIntent for good (e.g. a bad API key)
        }
    ),
    State.COLLECTING: frozenset(
        {
            State.AWAITING_CONFIRMATION,
            State.PROCESSING,
            State.QUEUED_OFFLINE,
            State.CANCELED,
        }
    ),
    State.AWAITING_CONFIRMATION: frozenset({State.PROCESSING, State.CANCELED}),
    State.PROCESSING: frozenset(
        {
            State.AUTHORIZED,
            State.DECLINED,
            State.CAPTURED,
            State.QUEUED_OFFLINE,  # added: Stripe became unreachable while authorising, offline allowed
            State.FAILED,  # added: Stripe refused for good, or the PaymentIntent was canceled elsewhere
        }
    ),
    State.QUEUED_OFFLINE: frozenset({State.AUTHORIZED, State.CAPTURED, State.FAILED}),
    State.DECLINED: frozenset({State.COLLECTING, State.CANCELED}),
    State.AUTHORIZED: frozenset(
        {
            State.CAPTURING,
            State.CANCELED,
            State.FAILED,  # added: the authorisation expired (Stripe canceled it) before a capture was asked
        }
    ),
    State.CAPTURING: frozenset(
        {
            State.CAPTURED,
            State.FAILED,  # added: the authorisation expired before the capture reached Stripe
        }
    ),
    State.CAPTURED: frozenset(),
    State.CANCELED: frozenset(),
    State.FAILED: frozenset(),
}


class Unattended(enum.StrEnum):
    """What the daemon does with a payment its POS left `authorized` ([reconcile] unattended;
    docs/payments.md weighs them): take the money, release it, or only say so."""

    CAPTURE = "capture"  # the money is taken, though the goods may never have been given
    CANCEL = "cancel"  # the hold is released, though the POS may still have completed the sale
    REPORT = "report"  # a journal entry and an event; the authorisation lapses at its deadline


# Why a POS cancels a payment: Stripe's cancellation reasons that a POS may give.
CANCELLATION_REASONS = ("requested_by_customer", "abandoned", "duplicate", "fraudulent")


class Reason(enum.StrEnum):
    """Why a request was refused (`error.data.reason` on the socket) or a payment failed (`error.reason`
    in the payment object): the POS protocol's reasons, docs/pos-protocol.md."""

    # A request refused: each has its own error code (daemon/api/protocol.py).
    BUSY = "BUSY"
    READER_UNAVAILABLE = "READER_UNAVAILABLE"
    NOT_FOUND = "NOT_FOUND"
    INVALID_STATE = "INVALID_STATE"
    IDEMPOTENCY_CONFLICT = "IDEMPOTENCY_CONFLICT"
    FORBIDDEN = "FORBIDDEN"
    STRIPE_UNAVAILABLE = "STRIPE_UNAVAILABLE"  # also a payment's: Stripe did not answer within the customer's wait
    OFFLINE_LIMIT = "OFFLINE_LIMIT"
    STORAGE_UNAVAILABLE = "STORAGE_UNAVAILABLE"
    UNSUPPORTED = "UNSUPPORTED"
    REFUND_EXCEEDS_CAPTURED = "REFUND_EXCEEDS_CAPTURED"  # more refunded than was captured
    # A payment failed (only ever in a payment's `error`).
    STRIPE_REFUSED = "STRIPE_REFUSED"
    OFFLINE_DECLINED = "OFFLINE_DECLINED"
    AUTHORIZATION_EXPIRED = "AUTHORIZATION_EXPIRED"
    PAYMENT_INTENT_CANCELED = "PAYMENT_INTENT_CANCELED"


class RequestRefused(Exception):
    """A POS request that cannot be carried out; `reason` is one of the protocol's error reasons."""

    def __init__(self, reason: Reason, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retryable = retryable


class StripeState(enum.StrEnum):
    """What is known of Stripe (status.get's `stripe.state`, protocol 1.4)."""

    UNKNOWN = "unknown"  # not answered since the daemon started, and not yet failed often enough
    REACHABLE = "reachable"
    UNREACHABLE = "unreachable"  # `unreachable_after` requests in a row went unanswered
    KEY_REFUSED = "key_refused"  # Stripe answers, and refuses the API key


class RefundState(enum.StrEnum):
    """A refund's state: Stripe's Refund statuses (https://docs.stripe.com/api/refunds/object#refund_object-status)."""

    PENDING = "pending"  # asked for, not yet made at Stripe (or Stripe has not finished it)
    REQUIRES_ACTION = "requires_action"  # Stripe waits for something outside readerhost
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @classmethod
    def of(cls, value: object) -> RefundState | None:
        """The state named by Stripe's `status`, or None for a status this readerhost does not know."""
        return cls(value) if isinstance(value, str) and value in cls._value2member_map_ else None


# Refunds that count against what was captured: made, or possibly on their way.
REFUND_HOLDS_AMOUNT = frozenset({RefundState.PENDING, RefundState.REQUIRES_ACTION, RefundState.SUCCEEDED})
# Why a POS refunds: Stripe's refund reasons.
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")


class OpStatus(enum.StrEnum):
    """Where an outbox operation (a Stripe mutation with its idempotency key) stands."""

    PENDING = "pending"  # to be sent (again)
    DONE = "done"  # Stripe's answer was applied to the payment
    FAILED = "failed"  # given up for good; the payment says why
    DROPPED = "dropped"  # never sent, and no longer wanted (e.g. a create canceled before its first try)


# A PaymentIntent's client secret: the PaymentIntent's id, `_secret_`, then the secret proper.
CLIENT_SECRET = re.compile(r"(pi_[A-Za-z0-9]+)_secret_[A-Za-z0-9]+")


def intent_of_client_secret(secret: str) -> str | None:
    """The PaymentIntent id a client secret names, or None when it is not a client secret."""
    match = CLIENT_SECRET.fullmatch(secret)
    return match.group(1) if match else None


class IllegalTransition(Exception):
    def __init__(self, payment_id: str, current: State, wanted: State) -> None:
        super().__init__(f"payment {payment_id} cannot go from {current} to {wanted}")
        self.current = current
        self.wanted = wanted


class CaptureMode(enum.StrEnum):
    MANUAL = "manual"
    AUTOMATIC = "automatic"


class OfflineMode(enum.StrEnum):
    REQUIRE_ONLINE = "require_online"
    PREFER_ONLINE = "prefer_online"


@dataclass(frozen=True)
class Card:
    """What may be kept and shown of a card: never its number."""

    brand: str
    last4: str
    read_method: str
    wallet: str | None = None  # apple_pay, google_pay, ...: the wallet the card was in, if known
    network: str | None = None  # the network that carries the payment (visa, interac, ...), if known

    def to_json(self) -> dict[str, str | None]:
        # Rows stored before wallet and network were kept read back with None for both.
        return {
            "brand": self.brand,
            "last4": self.last4,
            "read_method": self.read_method,
            "wallet": self.wallet,
            "network": self.network,
        }


@dataclass(frozen=True)
class Receipt:
    """What a customer's receipt needs of a card payment, as Stripe returned it on the charge
    (`payment_method_details.card_present.receipt` and its neighbours; Interac's the same). Card
    networks require some of the EMV fields on an in-person receipt (docs/pos-protocol.md shows one).
    Each field is None when Stripe gave none (a swiped card has no chip application, for example)."""

    brand: str | None = None
    last4: str | None = None
    read_method: str | None = None
    wallet: str | None = None  # the wallet's type (apple_pay, google_pay, ...), when the card was in one
    account_type: str | None = None  # checking, credit, prepaid, savings, unknown
    application_preferred_name: str | None = None  # the application name (EMV tag 9F12)
    dedicated_file_name: str | None = None  # the AID (EMV tag 84)
    authorization_code: str | None = None
    authorization_response_code: str | None = None  # the ARC (EMV tag 8A)
    application_cryptogram: str | None = None
    terminal_verification_results: str | None = None  # the TVR
    transaction_status_information: str | None = None  # the TSI
    cardholder_verification_method: str | None = None  # online_pin, offline_pin, signature, none, ...
    receipt_url: str | None = None  # Stripe's own receipt page for the charge

    def to_json(self) -> dict[str, str | None]:
        return {name: getattr(self, name) for name in RECEIPT_FIELDS}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Receipt:
        """A receipt as to_json wrote it (fields it does not know are left out)."""
        return cls(**{name: data.get(name) for name in RECEIPT_FIELDS})


RECEIPT_FIELDS = tuple(field.name for field in fields(Receipt))


@dataclass(frozen=True)
class Decline:
    code: str
    decline_code: str | None
    message: str

    def to_json(self) -> dict[str, str | None]:
        return {"code": self.code, "decline_code": self.decline_code, "message": self.message}


@dataclass(frozen=True)
class PaymentError:
    """Why a payment failed (or a request about it could not be carried out)."""

    reason: Reason
    message: str

    def to_json(self) -> dict[str, str]:
        return {"reason": self.reason.value, "message": self.message}


@dataclass(frozen=True)
class PaymentRequest:
    """What the POS asked for; the same order_id with another request is an idempotency conflict."""

    order_id: str
    amount: int
    currency: str
    description: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    capture: CaptureMode = CaptureMode.MANUAL
    confirm: bool = False
    offline: OfflineMode = OfflineMode.REQUIRE_ONLINE
    payment_intent_client_secret: str | None = None
    tipping: int | None = None  # the amount a tip is suggested on, on a reader that TAKES_TIPS; None: no tip
    incremental: bool = False  # ask Stripe for incremental authorisation support (protocol 1.4)
    extended: bool = False  # ask Stripe for an extended authorisation window (protocol 1.4)


@dataclass(frozen=True)
class RefundRequest:
    """What the POS asked to refund; the same refund_id with another request is an idempotency conflict.
    `amount` as asked (None: all that was captured and not yet refunded)."""

    refund_id: str
    payment_id: str
    amount: int | None
    reason: str | None
    at_reader: bool


@dataclass(frozen=True)
class Refund:
    request: RefundRequest
    amount: int  # what is refunded: the request's amount, or what was left to refund when asked
    state: RefundState
    created_at: float
    updated_at: float
    at_reader: bool  # made with the card at the reader (asked, or an Interac payment)
    stripe_refund: str | None = None  # re_...
    error: PaymentError | None = None

    @property
    def refund_id(self) -> str:
        return self.request.refund_id

    @property
    def payment_id(self) -> str:
        return self.request.payment_id

    def to_json(self) -> dict[str, Any]:
        """A refund in the POS protocol's payment object (`refunds`) and `refund.updated` events."""
        return {
            "refund_id": self.refund_id,
            "payment_id": self.payment_id,
            "amount": self.amount,
            "reason": self.request.reason,
            "at_reader": self.at_reader,
            "state": self.state.value,
            "stripe_refund": self.stripe_refund,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
            "error": self.error.to_json() if self.error else None,
        }


class PaidBy(enum.StrEnum):
    """How an order closed with payment.close was paid: outside readerhost (cash, a voucher, ...)."""

    OTHER = "other"


@dataclass(frozen=True)
class OrderClosure:
    """An order the POS recorded as paid outside readerhost (payment.close): no attempt may follow."""

    order_id: str
    paid_by: PaidBy
    closed_at: float


class IncrementState(enum.StrEnum):
    """Where a raise of an authorisation's hold (`payment.increment`) stands."""

    PENDING = "pending"  # committed, on its way to Stripe
    SUCCEEDED = "succeeded"  # the hold is now the increment's amount
    DECLINED = "declined"  # the issuer declined it: the hold stays what it was
    FAILED = "failed"  # Stripe refused it, or the payment ended first: the hold stays what it was


@dataclass(frozen=True)
class IncrementRequest:
    """What the POS asked: raise the hold of `payment_id` to `amount` (a new total), once per increment_id."""

    increment_id: str
    payment_id: str
    amount: int


@dataclass(frozen=True)
class Increment:
    request: IncrementRequest
    state: IncrementState
    created_at: float
    updated_at: float
    decline: Decline | None = None
    error: PaymentError | None = None

    @property
    def increment_id(self) -> str:
        return self.request.increment_id

    @property
    def payment_id(self) -> str:
        return self.request.payment_id

    @property
    def amount(self) -> int:
        return self.request.amount

    def to_json(self) -> dict[str, Any]:
        """An increment in the payment object (`increments`) and `increment.updated` events."""
        return {
            "increment_id": self.increment_id,
            "payment_id": self.payment_id,
            "amount": self.amount,
            "state": self.state.value,
            "decline": self.decline.to_json() if self.decline else None,
            "error": self.error.to_json() if self.error else None,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        }


@dataclass(frozen=True)
class CardSupport:
    """What the authorised card allows, as Stripe said on the charge
    (`payment_method_details.card_present`), and whether Stripe was asked for a longer window."""

    incremental_authorization_supported: bool = False
    overcapture_supported: bool = False
    extended_authorization_requested: bool = False  # payment_method_options.card_present.request_extended_authorization

    def to_json(self) -> dict[str, bool]:
        return {
            "incremental_authorization_supported": self.incremental_authorization_supported,
            "overcapture_supported": self.overcapture_supported,
            "extended_authorization_requested": self.extended_authorization_requested,
        }


@dataclass(frozen=True)
class Payment:
    payment_id: str
    request: PaymentRequest
    state: State
    created_at: float
    updated_at: float
    payment_intent: str | None = None
    card: Card | None = None
    decline: Decline | None = None
    error: PaymentError | None = None
    captured_amount: int = 0
    capture_amount: int | None = None  # what the POS asked to capture
    capture_before: int | None = None
    offline: bool = False
    attempts: int = 0  # authorisation attempts (one per card presented)
    receipt: Receipt | None = None  # from the charge of the latest authorisation, when Stripe gave one
    tip: int = 0  # what the customer added on the reader: authorised (and captured) on top of the amount
    order_attempt: int = 1  # which attempt of its order this payment is (1, 2, ...: the order paid again)
    closed_by: PaidBy | None = None  # the order was closed as paid this way (payment.close), if it was
    incremented_to: int | None = None  # the hold after the latest successful increment (None: never raised)
    card_support: CardSupport | None = None  # from the authorisation's charge, once authorised

    @property
    def authorised_amount(self) -> int:
        """What an authorisation holds, and what a full capture takes: the amount and the tip, or what
        the latest increment raised the hold to."""
        return self.incremented_to if self.incremented_to is not None else self.request.amount + self.tip

    refunds: tuple[Refund, ...] = ()  # oldest first (kept in their own table)
    increments: tuple[Increment, ...] = ()  # oldest first (kept in their own table)

    @property
    def order_id(self) -> str:
        return self.request.order_id

    def moved_to(self, state: State, at: float, **changes: Any) -> Payment:
        """This payment in a new state; raises IllegalTransition if the table forbids it."""
        if state != self.state and state not in TRANSITIONS[self.state]:
            raise IllegalTransition(self.payment_id, self.state, state)
        return replace(self, state=state, updated_at=at, **changes)

    @property
    def refunded_amount(self) -> int:
        """What Stripe has refunded of this payment."""
        return sum(refund.amount for refund in self.refunds if refund.state is RefundState.SUCCEEDED)

    @property
    def holds_reader(self) -> bool:
        """Whether the customer is (or is about to be) at the reader for this payment."""
        return self.state in HOLDS_READER

    def to_json(self) -> dict[str, Any]:
        """The payment object of the POS protocol."""
        return {
            "payment_id": self.payment_id,
            "order_id": self.order_id,
            "amount": self.request.amount,
            "currency": self.request.currency,
            "state": self.state.value,
            "payment_intent": self.payment_intent,
            "card": self.card.to_json() if self.card else None,
            "decline": self.decline.to_json() if self.decline else None,
            "captured_amount": self.captured_amount,
            "refunded_amount": self.refunded_amount,
            "refunds": [refund.to_json() for refund in self.refunds],
            "offline": self.offline,
            "attempts": self.attempts,
            "order_attempt": self.order_attempt,
            "closed_by": self.closed_by.value if self.closed_by else None,
            "receipt": self.receipt.to_json() if self.receipt else None,
            "tip": self.tip,
            # 1.4: what was asked of the authorisation, what the card allows, what it holds now.
            "incremental": self.request.incremental,
            "extended": self.request.extended,
            "card_support": self.card_support.to_json() if self.card_support else None,
            "authorized_amount": self.authorised_amount if self.state in HOLDING else None,
            "increments": [increment.to_json() for increment in self.increments],
            # When Stripe cancels the authorisation unless it is captured (authorized payments).
            "capture_before": None if self.capture_before is None else rfc3339(self.capture_before),
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
            "error": self.error.to_json() if self.error else None,
        }


def rfc3339(unix: float) -> str:
    return datetime.datetime.fromtimestamp(unix, datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
