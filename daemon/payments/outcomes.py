"""What came back from Stripe, in the daemon's own words.

The gateway turns every stripe-python result and exception into one of these; nothing else in
the daemon sees a stripe object. `IntentView` is the part of a PaymentIntent the daemon reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .model import Card, CardSupport, Decline, Receipt


@dataclass(frozen=True)
class IntentView:
    id: str
    status: str
    amount: int
    currency: str
    amount_capturable: int
    amount_received: int
    created: int
    metadata: dict[str, str] = field(default_factory=dict)
    cancellation_reason: str | None = None
    card: Card | None = None  # from the latest charge, when it succeeded
    capture_before: int | None = None
    last_decline: Decline | None = None
    receipt: Receipt | None = None  # from the latest charge, approved or declined, when it has one
    card_support: CardSupport | None = None  # from the latest charge, when it succeeded


@dataclass(frozen=True)
class RefundView:
    """The part of a Stripe Refund the daemon reads."""

    id: str
    status: str  # pending, requires_action, succeeded, failed, canceled
    amount: int
    payment_intent: str | None
    metadata: dict[str, str] = field(default_factory=dict)
    failure_reason: str | None = None


@dataclass(frozen=True)
class Refunded:
    """Stripe answered with the refund (made now, replayed, or found by listing)."""

    refund: RefundView
    replayed: bool = False


@dataclass(frozen=True)
class Succeeded:
    intent: IntentView
    replayed: bool = False  # the answer was saved under the key earlier (Idempotent-Replayed)


@dataclass(frozen=True)
class Declined:
    """The card was declined; the PaymentIntent is back in requires_payment_method."""

    decline: Decline
    intent: IntentView | None


@dataclass(frozen=True)
class Unknown:
    """No answer we can trust: the request may or may not have been applied.

    `unreachable` when no HTTP answer arrived at all (connection refused or reset, timeout);
    `replayed_server_error` when Stripe replayed a saved 5xx for the key, so sending the same key
    again can never succeed: learn the truth, then act under a new key; `rate_limited` for 429.
    """

    message: str
    unreachable: bool = False
    replayed_server_error: bool = False
    rate_limited: bool = False


@dataclass(frozen=True)
class WrongState:
    """Stripe refused because the PaymentIntent is not in a state that allows the request."""

    message: str
    intent: IntentView | None


@dataclass(frozen=True)
class NotFound:
    message: str


@dataclass(frozen=True)
class KeyConflict:
    """The idempotency key was used before with other parameters (a daemon bug, or an expired key's reuse)."""

    message: str


@dataclass(frozen=True)
class Refused:
    """A permanent error: retrying the same request cannot succeed (bad key, invalid parameters)."""

    message: str
    code: str | None = None
    param: str | None = None
    authentication: bool = False


Outcome = Succeeded | Refunded | Declined | Unknown | WrongState | NotFound | KeyConflict | Refused
