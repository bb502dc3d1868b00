"""The payment as the POS sees it, and the one table of state transitions every change obeys.

States and their meaning are the POS protocol's (docs/pos-protocol.md); the table adds the few
edges the protocol leaves implicit (a payment that cannot be created fails; a cancel while the
PaymentIntent is still being created), each marked below.
"""

from __future__ import annotations

import datetime
import enum
from dataclasses import dataclass, field, replace
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


# The groups of states the daemon, the UI and the CLI ask about; defined here only.
# The customer is (or is about to be) at the reader: one such payment at a time.
HOLDS_READER = frozenset({State.CREATING, State.COLLECTING, State.AWAITING_CONFIRMATION})
# Nothing will happen to the payment any more.
TERMINAL = frozenset({State.CAPTURED, State.CANCELED, State.FAILED})

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

    def to_json(self) -> dict[str, str]:
        return {"brand": self.brand, "last4": self.last4, "read_method": self.read_method}


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

    reason: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.message}


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

    @property
    def order_id(self) -> str:
        return self.request.order_id

    def moved_to(self, state: State, at: float, **changes: Any) -> Payment:
        """This payment in a new state; raises IllegalTransition if the table forbids it."""
        if state != self.state and state not in TRANSITIONS[self.state]:
            raise IllegalTransition(self.payment_id, self.state, state)
        return replace(self, state=state, updated_at=at, **changes)

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
            "offline": self.offline,
            "attempts": self.attempts,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
            "error": self.error.to_json() if self.error else None,
        }


def rfc3339(unix: float) -> str:
    return datetime.datetime.fromtimestamp(unix, datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
