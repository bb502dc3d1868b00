"""Increments: raising an authorised payment's hold to a new total (`payment.increment`, protocol 1.4).

The rules (Stripe's, docs/payments.md "Flexible authorisations"): only an authorised payment whose
card Stripe said supports it (the charge's `incremental_authorization_supported`) is raised, and
only to a total above what it holds now; an increment_id names one increment forever (asked again
with the same parameters it is the same increment, with others an idempotency conflict); one
increment at a time per payment, and no capture while one is on its way.

Like a capture, an increment is committed with an outbox operation (`increment`, keyed by its
increment_id) that the worker sends as increment_authorization, exactly once whatever crashes.
Stripe's answer decides: raised (the PaymentIntent's amount is the new total), or declined by the
issuer, or refused; either of the last two leaves the hold as it was and the payment authorized.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from readerhost.daemon.journal import MessageId

from . import keys, validation
from .ledger import Ledger, journal_fields
from .model import (
    Increment,
    IncrementRequest,
    IncrementState,
    OpStatus,
    Payment,
    PaymentError,
    Reason,
    RequestRefused,
    State,
)
from .operations import Kind
from .outcomes import Declined, Outcome, Succeeded, WrongState
from .store import Operation, Store

logger = logging.getLogger(__name__)


def increment_request(params: dict[str, Any]) -> IncrementRequest:
    """An IncrementRequest from payment.increment's parameters, or InvalidRequest naming the field."""
    increment_id = validation.client_id(params, "increment_id")
    payment_id = params.get("payment_id")
    if not isinstance(payment_id, str) or not payment_id:
        raise validation.InvalidRequest("payment_id", "payment_id is required")
    amount = params.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise validation.InvalidRequest(
            "amount", "amount must be the new total to hold, a positive integer in the currency's minor unit"
        )
    return IncrementRequest(increment_id, payment_id, amount)


def pending_increment(payment: Payment) -> Increment | None:
    """The payment's increment on its way to Stripe, if any."""
    return next((i for i in payment.increments if i.state is IncrementState.PENDING), None)


class Increments:
    def __init__(self, store: Store, ledger: Ledger, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._ledger = ledger
        self._clock = clock

    # -- the POS's request ----------------------------------------------------------------------

    def increment(self, params: dict[str, Any]) -> Payment:
        """payment.increment: accepted once the increment is durably committed with its operation."""
        request = increment_request(params)
        existing = self._store.increment(request.increment_id)
        if existing is not None:
            if existing.request != request:
                raise RequestRefused(
                    Reason.IDEMPOTENCY_CONFLICT,
                    f"increment {request.increment_id} was already asked for with other parameters "
                    f"(payment {existing.payment_id}, amount {existing.amount})",
                )
            return self._payment(existing.payment_id)
        payment = self._store.payment(request.payment_id)
        if payment is None:
            raise RequestRefused(Reason.NOT_FOUND, f"no payment {request.payment_id}")
        self._check(payment, request)
        now = self._clock()
        increment = Increment(request, IncrementState.PENDING, now, now)
        key = keys.increment_key(payment.payment_id, request.increment_id)
        new_op = (Kind.INCREMENT, key, {"increment_id": request.increment_id, "amount": request.amount})
        detail = f"payment.increment {request.increment_id}: hold {payment.authorised_amount} -> {request.amount}"
        return self._ledger.commit_increment(payment, payment, None, increment, detail, new_ops=[new_op])

    def _check(self, payment: Payment, request: IncrementRequest) -> None:
        currency = payment.request.currency
        if payment.state is not State.AUTHORIZED:
            raise RequestRefused(
                Reason.INVALID_STATE,
                f"payment {payment.payment_id} is {payment.state}, not authorized: no hold to raise",
            )
        if not payment.request.incremental:
            raise RequestRefused(
                Reason.UNSUPPORTED,
                f"payment {payment.payment_id} was not started with incremental: true, so Stripe was not asked "
                "for incremental authorisation support",
            )
        support = payment.card_support
        if support is None or not support.incremental_authorization_supported:
            brand = payment.card.brand if payment.card else "the card"
            raise RequestRefused(
                Reason.UNSUPPORTED,
                f"Stripe said {brand}'s authorisation of payment {payment.payment_id} cannot be incremented "
                "(incremental_authorization_supported is false): capture it and take the rest another way",
            )
        pending = pending_increment(payment)
        if pending is not None:
            raise RequestRefused(
                Reason.BUSY,
                f"increment {pending.increment_id} of payment {payment.payment_id} is still on its way to Stripe",
                retryable=True,
            )
        if request.amount <= payment.authorised_amount:
            raise validation.InvalidRequest(
                "amount",
                f"amount is the new total to hold and must be above the {payment.authorised_amount} {currency} "
                f"held now; {request.amount} asked",
            )

    def _payment(self, payment_id: str) -> Payment:
        payment = self._store.payment(payment_id)
        assert payment is not None, payment_id
        return payment

    # -- Stripe's answers, from the worker ------------------------------------------------------

    def settle(self, op: Operation, outcome: Outcome) -> None:
        """Apply Stripe's answer to the increment of `op` (and, when raised, to its payment's hold)."""
        increment = self._store.increment(str(op.params["increment_id"]))
        payment = self._store.payment(op.payment_id)
        assert payment is not None, op.payment_id
        if increment is None or increment.state is not IncrementState.PENDING:
            self._ledger.finish(op, OpStatus.DONE, None)
            return
        now = self._clock()
        intent = outcome.intent if isinstance(outcome, Succeeded | WrongState) else None
        if intent is not None and intent.amount >= increment.amount and intent.status == "requires_capture":
            after = replace(
                payment,
                incremented_to=intent.amount,
                card_support=intent.card_support or payment.card_support,
                capture_before=intent.capture_before or payment.capture_before,
                updated_at=now,
            )
            done = replace(increment, state=IncrementState.SUCCEEDED, updated_at=now)
            detail = f"increment {increment.increment_id}: hold raised to {intent.amount}"
            self._ledger.commit_increment(payment, after, increment, done, detail, done=op)
            return
        if isinstance(outcome, Declined):
            declined = replace(increment, state=IncrementState.DECLINED, decline=outcome.decline, updated_at=now)
            why = outcome.decline.decline_code or outcome.decline.code
            detail = f"increment {increment.increment_id} declined ({why}): the hold stays {payment.authorised_amount}"
            self._ledger.commit_increment(payment, payment, increment, declined, detail, failed=op)
            self._warn(payment, detail)
            return
        message = _describe(outcome)
        if payment.state is not State.AUTHORIZED:
            message = f"the payment is {payment.state}: {message}"
        error = PaymentError(Reason.STRIPE_REFUSED, f"Stripe did not raise the hold: {message}")
        failed = replace(increment, state=IncrementState.FAILED, error=error, updated_at=now)
        detail = f"increment {increment.increment_id} failed ({message}): the hold stays {payment.authorised_amount}"
        self._ledger.commit_increment(payment, payment, increment, failed, detail, failed=op)
        self._warn(payment, detail)

    def dropped(self, payment_id: str, ops: list[Operation], why: str) -> None:
        """The payment ended before these operations were sent: their increments fail, the hold never raised."""
        for op in ops:
            if op.kind != Kind.INCREMENT:
                continue
            increment = self._store.increment(str(op.params["increment_id"]))
            payment = self._store.payment(payment_id)
            if increment is None or payment is None or increment.state is not IncrementState.PENDING:
                continue
            error = PaymentError(Reason.INVALID_STATE, f"not sent: {why}")
            failed = replace(increment, state=IncrementState.FAILED, error=error, updated_at=self._clock())
            self._ledger.commit_increment(
                payment, payment, increment, failed, f"increment {increment.increment_id} not sent: {why}"
            )

    def _warn(self, payment: Payment, detail: str) -> None:
        logger.warning(
            "payment %s (order %s): %s", payment.payment_id, payment.order_id, detail,
            extra={"journal": {**journal_fields(payment, payment), "MESSAGE_ID": MessageId.INCREMENT_NOT_RAISED}},
        )  # fmt: skip


def _describe(outcome: Outcome) -> str:
    return str(getattr(outcome, "message", None) or type(outcome).__name__)
