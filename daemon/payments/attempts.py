"""Orders paid again: a payment is an attempt of its order (docs/payments.md, "Orders paid again").

An order has at most one live attempt (any state but `canceled` and `failed`), so at most one that
succeeds; the store holds this itself (a partial unique index). `payment.start` for an order whose
latest attempt is over starts the next one, with its own PaymentIntent under its own create key;
for an order with a live attempt it returns that attempt. `payment.close` records an order paid
outside readerhost, which no attempt may follow; it is refused while an attempt is live.
"""

from __future__ import annotations

from collections.abc import Sequence

from .model import (
    ATTEMPT_OVER,
    SUCCESSFUL,
    OrderClosure,
    Payment,
    PaymentRequest,
    Reason,
    RequestRefused,
    State,
    intent_of_client_secret,
    rfc3339,
)
from .store import Store


def live_attempt(store: Store, request: PaymentRequest, latest: Payment | None) -> Payment | None:
    """The order's live (or successful) attempt, which payment.start returns as it is; None when the
    order may be paid (again). Refused when the order cannot take this request. `latest` is the
    order's latest attempt (`Store.payment_by_order`), read once for this and `next_attempt`."""
    if latest is not None and latest.state not in ATTEMPT_OVER:
        if latest.request != request:
            raise RequestRefused(
                Reason.IDEMPOTENCY_CONFLICT,
                f"order {request.order_id} already has payment {latest.payment_id} (attempt {latest.order_attempt}, "
                f"{latest.state}) with other parameters",
            )
        return latest
    closure = store.order_closure(request.order_id)
    if closure is not None:
        raise RequestRefused(
            Reason.INVALID_STATE,
            f"order {request.order_id} was closed as paid {closure.paid_by} at {rfc3339(closure.closed_at)} "
            "(payment.close): it takes no card payment",
        )
    if request.payment_intent_client_secret:
        _refuse_used_intent(store, request)
    return None


def next_attempt(latest: Payment | None) -> int:
    """The number of the next attempt of the order whose latest attempt is `latest`: 1 for a new order."""
    return 1 if latest is None else latest.order_attempt + 1


def _refuse_used_intent(store: Store, request: PaymentRequest) -> None:
    """A PaymentIntent serves one attempt: the backend makes a new one for the next."""
    wanted = intent_of_client_secret(request.payment_intent_client_secret or "")
    for earlier in store.order_payments(request.order_id):
        used = earlier.payment_intent or intent_of_client_secret(earlier.request.payment_intent_client_secret or "")
        if wanted is not None and used == wanted:
            raise RequestRefused(
                Reason.INVALID_STATE,
                f"PaymentIntent {wanted} served attempt {earlier.order_attempt} of order {request.order_id} "
                f"({earlier.payment_id}, {earlier.state}): a new attempt needs a new PaymentIntent",
            )


def refuse_closing(store: Store, order_id: str) -> None:
    """payment.close is refused while the order has a live attempt: the message says which, and why."""
    latest = store.payment_by_order(order_id)
    if latest is None or latest.state in ATTEMPT_OVER:
        return
    named = f"payment {latest.payment_id} (attempt {latest.order_attempt})"
    if latest.state in SUCCESSFUL:
        hint = "; cancel it first if the order was paid another way" if latest.state is State.AUTHORIZED else ""
        message = f"order {order_id} is already paid by card: {named} is {latest.state}{hint}"
    elif latest.state is State.QUEUED_OFFLINE:
        message = f"order {order_id} is paid by card: {named} is stored offline and goes to Stripe once it is back"
    elif latest.state is State.PROCESSING:
        message = f"{named} of order {order_id} is being authorised at Stripe: wait for its outcome"
    else:
        message = f"{named} of order {order_id} is in progress at the reader ({latest.state}): cancel it first"
    raise RequestRefused(Reason.INVALID_STATE, message)


def closed_order_json(closure: OrderClosure, payments: Sequence[Payment]) -> dict[str, object]:
    """payment.close's answer: the order, how it was paid, and its card attempts (first first)."""
    return {
        "order_id": closure.order_id,
        "closed_by": closure.paid_by.value,
        "closed_at": rfc3339(closure.closed_at),
        "payments": [payment.to_json() for payment in payments],
    }
