"""The outbox's operations: how each is sent to Stripe, and how the truth about it is learned.

Kinds: `create` (a new PaymentIntent), `adopt` (take over one the POS backend created, by
writing our metadata onto it), `confirm` (authorise with the collected payment method; after a
server-driven reader presented the card to Stripe itself, only read back what it left),
`capture` and `cancel`. Every one moves a PaymentIntent at most once whatever is re-sent:
Stripe authorises, captures or cancels a PaymentIntent only from the states before, so once
the truth is known, sending anew under a new key can never take money twice.

`refund` makes a Refund of the PaymentIntent carrying the refund's id in its metadata; its truth
is that refund, found by listing the PaymentIntent's refunds (list reads its own writes): sent anew
only when Stripe holds none with that id. A refund made with the card at the reader (`by_reader`)
is never sent from here: its operation only reads what the reader left at Stripe.

`increment` raises an authorised PaymentIntent's hold to a new total (increment_authorization). It
names the total, not a difference, so it can never raise the hold past what was asked however often
it is sent; its truth is the PaymentIntent's amount (raised, or not), read before any new key.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Protocol

from .model import Payment, intent_of_client_secret
from .outcomes import (
    Declined,
    IntentView,
    NotFound,
    Outcome,
    Refunded,
    RefundView,
    Refused,
    Succeeded,
    Unknown,
    WrongState,
)
from .validation import RESERVED_METADATA

logger = logging.getLogger(__name__)


class Kind(enum.StrEnum):
    CREATE = "create"
    ADOPT = "adopt"
    CONFIRM = "confirm"
    CAPTURE = "capture"
    CANCEL = "cancel"
    REFUND = "refund"
    INCREMENT = "increment"


# An operation's parameter saying its payment ended before Stripe answered it (the customer's wait
# ran out): it is carried on under its own key only, and a cancel queued behind it ends what it made.
ABANDONED = "abandoned"
# An abandoned operation's parameter saying Stripe replayed a saved 5xx for its key: the request
# under that key ended at Stripe and can never succeed, so nothing of it is still in flight.
KEY_SPENT = "key_spent"


class Gateway(Protocol):
    """What the worker needs of daemon.payments.gateway.StripeGateway (blocking calls)."""

    def create_intent(
        self,
        *,
        amount: int,
        currency: str,
        capture_method: str = ...,
        metadata: dict[str, str],
        description: str | None,
        idempotency_key: str,
        incremental: bool = ...,
        extended: bool = ...,
    ) -> Outcome: ...

    def retrieve_intent(self, intent_id: str) -> Outcome: ...

    def retrieve_by_client_secret(self, client_secret: str) -> Outcome: ...

    def update_metadata(self, intent_id: str, metadata: dict[str, str], idempotency_key: str) -> Outcome: ...

    def confirm_intent(self, intent_id: str, payment_method: str, idempotency_key: str) -> Outcome: ...

    def capture_intent(self, intent_id: str, amount_to_capture: int | None, idempotency_key: str) -> Outcome: ...

    def cancel_intent(self, intent_id: str, reason: str, idempotency_key: str) -> Outcome: ...

    def increment_authorization(self, intent_id: str, amount: int, idempotency_key: str) -> Outcome: ...

    def list_intents(
        self, *, created_gte: int, created_lt: int, page_size: int = ...
    ) -> list[IntentView] | Unknown | Refused: ...

    def each_intent(
        self,
        *,
        created_gte: int,
        created_lt: int,
        visit: Callable[[IntentView], None],
        page_size: int = ...,
        charges: bool = ...,
    ) -> Unknown | Refused | None: ...

    def list_recent_intents(self, *, window_s: int, max_pages: int) -> list[IntentView] | Unknown | Refused: ...

    def search_intents(self, query: str) -> list[IntentView] | Unknown | Refused: ...

    def create_refund(
        self, *, payment_intent: str, amount: int, reason: str | None, metadata: Mapping[str, str], idempotency_key: str
    ) -> Outcome: ...

    def list_refunds(self, payment_intent: str) -> list[RefundView] | Unknown | Refused: ...


def intent_id_of(payment: Payment) -> str | None:
    """The PaymentIntent a payment works on, once known (for `adopt`: from the client secret)."""
    if payment.payment_intent:
        return payment.payment_intent
    secret = payment.request.payment_intent_client_secret
    return intent_of_client_secret(secret) if secret else None


def send(gateway: Gateway, kind: str, key: str, params: dict[str, object], payment: Payment) -> Outcome:
    """Send one operation under its key (blocking: the worker calls this in a thread)."""
    if kind == Kind.CREATE:
        request = payment.request
        return gateway.create_intent(
            amount=request.amount,
            currency=request.currency,
            capture_method="manual",
            metadata=dict(params["metadata"]),  # type: ignore[call-overload]
            description=request.description,
            idempotency_key=key,
            incremental=request.incremental,
            extended=request.extended,
        )
    intent_id = intent_id_of(payment)
    if intent_id is None:
        return NotFound(f"payment {payment.payment_id} has no PaymentIntent to {kind}")
    if kind == Kind.ADOPT:
        return _adopt(gateway, key, dict(params["metadata"]), payment)  # type: ignore[call-overload]
    if kind == Kind.CONFIRM and params.get("by_reader"):
        return reader_outcome(gateway.retrieve_intent(intent_id))
    if kind == Kind.CONFIRM:
        return gateway.confirm_intent(intent_id, str(params["payment_method"]), key)
    if kind == Kind.CAPTURE:
        amount = params.get("amount")
        return gateway.capture_intent(intent_id, amount if isinstance(amount, int) else None, key)
    if kind == Kind.CANCEL:
        return gateway.cancel_intent(intent_id, str(params["reason"]), key)
    if kind == Kind.INCREMENT:
        return gateway.increment_authorization(intent_id, int(params["amount"]), key)  # type: ignore[call-overload]
    if kind == Kind.REFUND and params.get("by_reader"):
        return find_refund(gateway, intent_id, str(params["refund_id"]))
    if kind == Kind.REFUND:
        reason = params.get("reason")
        return gateway.create_refund(
            payment_intent=intent_id,
            amount=int(params["amount"]),  # type: ignore[call-overload]
            reason=reason if isinstance(reason, str) else None,
            metadata=dict(params["metadata"]),  # type: ignore[call-overload]
            idempotency_key=key,
        )
    raise ValueError(f"unknown operation kind {kind!r}")


def find_refund(gateway: Gateway, intent_id: str, refund_id: str) -> Outcome:
    """The PaymentIntent's refund that carries `refund_id` in its metadata, or NotFound."""
    found = gateway.list_refunds(intent_id)
    if not isinstance(found, list):
        return found
    for refund in found:
        if refund.metadata.get("refund_id") == refund_id:
            return Refunded(refund)
    return NotFound(f"no refund of the PaymentIntent {intent_id} carries refund_id {refund_id}")


def _adopt(gateway: Gateway, key: str, ours: dict[str, str], payment: Payment) -> Outcome:
    """Take over the POS backend's PaymentIntent. Look before writing: the whole client secret must
    be the PaymentIntent's (its `pi_` prefix names any PaymentIntent of the account), and one that
    cannot serve this payment is left untouched."""
    secret = payment.request.payment_intent_client_secret or ""
    current = gateway.retrieve_by_client_secret(secret)
    if isinstance(current, Refused) and current.param == "payment_intent_client_secret":
        return WrongState(current.message, None)  # not this PaymentIntent's secret: nothing is written
    if not isinstance(current, Succeeded):
        return current
    problem = unusable_for(current.intent, payment)
    if problem:
        return WrongState(problem, current.intent)
    metadata = adoption_metadata(current.intent, ours)
    if isinstance(metadata, Conflict):
        return WrongState(metadata.message, current.intent)
    return gateway.update_metadata(current.intent.id, metadata, key)


@dataclass(frozen=True)
class Conflict:
    message: str


def adoption_metadata(intent: IntentView, ours: dict[str, str]) -> dict[str, str] | Conflict:
    """What adoption writes into the backend's metadata, which Stripe merges key by key: readerhost's
    reserved keys (which the backend may have set only to the same values), and the POS's keys where
    the backend has none of its own. The backend's keys are never overwritten. The result is the same
    when asked again after it was written, so a retry sends the same request under its key."""
    theirs = intent.metadata
    for name in RESERVED_METADATA:
        if name in theirs and theirs[name] != ours[name]:
            return Conflict(
                f"the PaymentIntent {intent.id} carries {name} {theirs[name]!r}, not {ours[name]!r}: "
                "it belongs to another payment or order"
            )
    return {name: value for name, value in ours.items() if theirs.get(name, value) == value}


def reader_outcome(retrieved: Outcome) -> Outcome:
    """A server-driven reader presented the card to Stripe itself: the PaymentIntent it left says
    how the authorisation went, in the words a confirm would have used. Nothing is sent: a
    PaymentIntent confirmed by the reader is never confirmed again."""
    if not isinstance(retrieved, Succeeded):
        return retrieved
    intent = retrieved.intent
    if intent.status in ("requires_capture", "succeeded", "canceled"):
        return retrieved
    if intent.status == "processing":
        return Unknown(f"the PaymentIntent {intent.id} is still processing the reader's payment")
    if intent.status == "requires_payment_method" and intent.last_decline is not None:
        return Declined(intent.last_decline, intent)
    return WrongState(f"the reader left the PaymentIntent {intent.id} {intent.status}, not authorised", intent)


def unusable_for(intent: IntentView, payment: Payment) -> str | None:
    """Why a PaymentIntent handed over by the POS backend cannot take this payment's card, if it cannot."""
    request = payment.request
    if intent.amount != request.amount or intent.currency != request.currency:
        return (
            f"the PaymentIntent {intent.id} is for {intent.amount} {intent.currency}, "
            f"not {request.amount} {request.currency}"
        )
    if intent.status not in ("requires_payment_method", "requires_confirmation"):
        return f"the PaymentIntent {intent.id} is {intent.status}: it cannot take a card"
    return None


# How far the wall clock of a Pi without a real-time clock may be off (it boots at the last time it
# saved, and jumps when NTP syncs) when a payment is created, for finding that payment's PaymentIntent
# on an account that offers no search.
CLOCK_DOUBT_S = 7 * 86400

# How far Stripe's search may lag the PaymentIntents: "Under normal operating conditions, data is
# searchable in less than a minute. Occasionally, propagation of new or updated data can be up to an
# hour behind during outages" (docs.stripe.com/api/payment_intents/search): that hour and half again.
SEARCH_LAG_S = 5400

# How many pages of 100 the recent PaymentIntents may take before the daemon stops listing them and
# looks again later: a safety bound, not a budget (100: a fleet making up to 6,600 PaymentIntents an
# hour is listed in one go; a look that stops short concludes nothing and is made again).
RECENT_PAGES_MAX = 100


def learn_truth(
    gateway: Gateway, kind: str, payment: Payment, now: float, params: Mapping[str, object] | None = None
) -> Outcome:
    """What Stripe holds now for this payment (blocking)."""
    if kind == Kind.CREATE:
        return find_created(gateway, payment, now)
    intent_id = intent_id_of(payment)
    if intent_id is None:
        return NotFound(f"payment {payment.payment_id} has no PaymentIntent")
    if kind == Kind.REFUND:
        return find_refund(gateway, intent_id, str((params or {})["refund_id"]))
    return gateway.retrieve_intent(intent_id)


def find_created(gateway: Gateway, payment: Payment, now: float, *, pages_max: int = RECENT_PAGES_MAX) -> Outcome:
    """The PaymentIntent carrying this payment's id, NotFound only when Stripe surely holds none, or
    Unknown (look again later) when that cannot be told yet.

    1. Search for `metadata['payment_id']`. Found: the PaymentIntent is read itself (search's copy
       lags), whatever the clocks.
    2. Not found: it was never made, or made too recently for search (less than SEARCH_LAG_S ago).
       The PaymentIntents made in that last stretch are listed (the list reads its own writes),
       measured back from the account's newest on Stripe's clock, not this machine's. Found there:
       that is it. Not there either: every PaymentIntent is either older than the lag (searchable)
       or in that list, so Stripe holds none: NotFound, and the create may be sent anew.
    3. More than `pages_max` pages made within the lag, or an answer lost: Unknown. Nothing is
       concluded; the worker looks again later.
    An account that refuses search (India) gets step 2's list over the whole window the payment's
    PaymentIntent may lie in: a week either side of its creation and of now, on the local clock.
    """
    payment_id = payment.payment_id
    found = gateway.search_intents(f"metadata['payment_id']:'{_quoted(payment_id)}'")
    if isinstance(found, Refused) and not found.authentication:  # a refused key would refuse the list too
        logger.warning(
            "Stripe refused to search PaymentIntents (%s): finding the create of %s by listing two weeks instead",
            found.message,
            payment_id,
        )
        start = int(min(payment.created_at, now)) - CLOCK_DOUBT_S
        end = int(max(payment.created_at, now)) + CLOCK_DOUBT_S
        return _carrying(gateway.list_intents(created_gte=start, created_lt=end), payment_id)
    if not isinstance(found, list):
        return found
    ours = [intent for intent in found if intent.metadata.get("payment_id") == payment_id]
    if ours:
        newest = max(ours, key=lambda intent: intent.created)
        return gateway.retrieve_intent(newest.id)
    recent = gateway.list_recent_intents(window_s=SEARCH_LAG_S, max_pages=pages_max)
    if isinstance(recent, Unknown):
        said = f"not found by search, and the last {SEARCH_LAG_S} s could not be listed: {recent.message}"
        return replace(recent, message=said)
    return _carrying(recent, payment_id)


def _carrying(listed: list[IntentView] | Unknown | Refused, payment_id: str) -> Outcome:
    """The first listed PaymentIntent (the newest) carrying `payment_id`, or NotFound."""
    if not isinstance(listed, list):
        return listed
    for intent in listed:
        if intent.metadata.get("payment_id") == payment_id:
            return Succeeded(intent)
    return NotFound(f"no PaymentIntent carries payment_id {payment_id}")


def _quoted(value: str) -> str:
    """`value` inside a search query's single quotes (Stripe escapes a quote with a backslash)."""
    return value.replace("\\", "\\\\").replace("'", "\\'")


class Verdict(enum.Enum):
    DONE = "done"  # Stripe already holds the operation's effect
    SEND_ANEW = "send_anew"  # not applied: send again under a new key
    CONCLUSIVE = "conclusive"  # Stripe's state rules the operation out: settle it as a wrong state
    WAIT = "wait"  # Stripe is mid-way (processing): look again later


def judge(kind: str, truth: Outcome, params: Mapping[str, object] | None = None) -> Verdict:
    """Decide, from what Stripe holds, whether an operation of this kind took effect."""
    if kind == Kind.REFUND:
        if isinstance(truth, Refunded):
            return Verdict.DONE
        return Verdict.SEND_ANEW if isinstance(truth, NotFound) else Verdict.WAIT
    if isinstance(truth, NotFound):
        return Verdict.SEND_ANEW if kind == Kind.CREATE else Verdict.CONCLUSIVE
    intent = truth.intent if isinstance(truth, Succeeded | WrongState) else None
    if intent is None:
        return Verdict.WAIT
    status = intent.status
    if status == "processing":
        return Verdict.WAIT
    if kind == Kind.CREATE:
        return Verdict.DONE
    if kind == Kind.ADOPT:
        return Verdict.SEND_ANEW if status != "canceled" else Verdict.CONCLUSIVE
    if kind == Kind.CONFIRM:
        if status in ("requires_capture", "succeeded"):
            return Verdict.DONE
        return Verdict.CONCLUSIVE if status == "canceled" else Verdict.SEND_ANEW
    if kind == Kind.CAPTURE:
        if status == "succeeded":
            return Verdict.DONE
        return Verdict.SEND_ANEW if status == "requires_capture" else Verdict.CONCLUSIVE
    if kind == Kind.CANCEL:
        if status == "canceled":
            return Verdict.DONE
        return Verdict.CONCLUSIVE if status == "succeeded" else Verdict.SEND_ANEW
    if kind == Kind.INCREMENT:
        if intent.amount >= int((params or {})["amount"]):  # type: ignore[call-overload]
            return Verdict.DONE
        # Not raised: still held, it may be asked again (a lost decline only costs one of its attempts).
        return Verdict.SEND_ANEW if status == "requires_capture" else Verdict.CONCLUSIVE
    raise ValueError(f"unknown operation kind {kind!r}")
