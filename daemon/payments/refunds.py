"""Refunds: money given back from a captured payment, asked for by the POS (`payment.refund`).

The rules: only a captured payment is refunded (an authorised one is canceled instead); refunds add
up to at most what was captured; a refund_id names one refund forever (asked again with the same
parameters it is the same refund, with others an idempotency conflict).

Two ways to Stripe, one truth. A card payment is refunded server-side: the refund is committed
with an outbox operation (`refund`, keyed by its refund_id) that the worker sends as
`POST /v1/refunds`, exactly once whatever crashes, like a capture. An Interac payment (Stripe
refunds those only in person) and any payment the POS asks `at_reader` are refunded with the card
presented to the reader (REFUNDS_AT_READER): the reader's action is asked under one key derived
from the refund_id, and followed. Either way the refund's truth is Stripe's: the PaymentIntent's
refund that carries the refund_id in its metadata (list reads its own writes), never the reader's
word. After a restart a refund at the reader is first looked up at Stripe, and only if Stripe
holds none is the reader asked again, under the same key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from readerhost.drivers.reader.base import (
    REFUND_REFUSED,
    Capability,
    Reader,
    ReaderError,
    ReaderListener,
    RefundOrder,
    RefundOutcomeUnknown,
)

from . import keys, validation
from .ledger import Ledger
from .model import (
    HOLDS_READER,
    REFUND_HOLDS_AMOUNT,
    REFUND_REASONS,
    OpStatus,
    Payment,
    PaymentError,
    Reason,
    Refund,
    RefundRequest,
    RefundState,
    RequestRefused,
    State,
)
from .operations import Kind
from .outcomes import NotFound, Outcome, Refunded
from .store import Operation, Store

logger = logging.getLogger(__name__)

# Interac (Canada's debit network) is refunded only with the card presented (Stripe's Terminal
# refunds docs, "Availability"); its card_present brand is "interac".
INTERAC_BRAND = "interac"
# What the reader said that means nobody presented a card: the refund is canceled, not failed.
_NOBODY_PRESENTED = ("canceled_on_reader", "card_read_timed_out")
OPEN = frozenset({RefundState.PENDING, RefundState.REQUIRES_ACTION})


def refund_request(params: dict[str, Any]) -> RefundRequest:
    """A RefundRequest from payment.refund's parameters, or InvalidRequest naming the field."""
    refund_id = validation.client_id(params, "refund_id")
    payment_id = params.get("payment_id")
    if not isinstance(payment_id, str) or not payment_id:
        raise validation.InvalidRequest("payment_id", "payment_id is required")
    amount = params.get("amount")
    if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0):
        raise validation.InvalidRequest("amount", "amount must be a positive integer in the currency's minor unit")
    reason = params.get("reason")
    if reason is not None and reason not in REFUND_REASONS:
        raise validation.InvalidRequest("reason", f"reason must be one of {', '.join(REFUND_REASONS)}")
    at_reader = params.get("at_reader", False)
    if not isinstance(at_reader, bool):
        raise validation.InvalidRequest("at_reader", "at_reader must be true or false")
    return RefundRequest(refund_id, payment_id, amount, reason, at_reader)


def refundable(payment: Payment) -> int:
    """What is left to refund: captured, less the refunds made or on their way."""
    held = sum(refund.amount for refund in payment.refunds if refund.state in REFUND_HOLDS_AMOUNT)
    return payment.captured_amount - held


def needs_reader(payment: Payment, request: RefundRequest) -> bool:
    return request.at_reader or (payment.card is not None and payment.card.brand == INTERAC_BRAND)


class Refunds:
    def __init__(
        self,
        store: Store,
        ledger: Ledger,
        reader: Reader,
        listener_for: Callable[[str], ReaderListener],
        *,
        terminal_id: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._ledger = ledger
        self._reader = reader
        self._listener_for = listener_for
        self._terminal_id = terminal_id
        self._clock = clock
        self._at_reader: dict[str, asyncio.Task[None]] = {}  # refund_id -> the reader's refund in progress

    # -- the POS's request ----------------------------------------------------------------------

    async def refund(self, params: dict[str, Any]) -> Refund:
        """payment.refund: accepted once the refund is durably committed (and, at the reader, asked)."""
        request = refund_request(params)
        existing = self._store.refund(request.refund_id)
        if existing is not None:
            if existing.request != request:
                raise RequestRefused(
                    Reason.IDEMPOTENCY_CONFLICT,
                    f"refund {request.refund_id} was already asked for with other parameters",
                )
            return existing
        payment = self._store.payment(request.payment_id)
        if payment is None:
            raise RequestRefused(Reason.NOT_FOUND, f"no payment {request.payment_id}")
        if payment.state is not State.CAPTURED or payment.payment_intent is None:
            hint = ": cancel it instead (nothing was taken yet)" if payment.state is State.AUTHORIZED else ""
            raise RequestRefused(
                Reason.INVALID_STATE, f"payment {payment.payment_id} is {payment.state}, not captured{hint}"
            )
        left = refundable(payment)
        amount = left if request.amount is None else request.amount
        if left <= 0 or amount > left:
            raise RequestRefused(
                Reason.REFUND_EXCEEDS_CAPTURED,
                f"payment {payment.payment_id} captured {payment.captured_amount} {payment.request.currency} and "
                f"{left} of it is left to refund; {amount} asked",
            )
        at_reader = needs_reader(payment, request)
        if at_reader:
            self._require_reader(payment)
        now = self._clock()
        refund = Refund(request, amount, RefundState.PENDING, now, now, at_reader)
        how = "with the card at the reader" if at_reader else "online"
        detail = f"payment.refund ({amount} {payment.request.currency} {how})"
        if at_reader:
            refund = self._ledger.commit_refund(None, refund, detail)
            self._begin_at_reader(refund.refund_id)
            return refund
        params_out = {
            "refund_id": refund.refund_id,
            "amount": amount,
            "reason": request.reason,
            "metadata": self._metadata(payment, refund),
        }
        new_op = (Kind.REFUND, keys.refund_key(payment.payment_id, refund.refund_id), params_out)
        return self._ledger.commit_refund(None, refund, detail, new_ops=[new_op])

    def reader_holder(self) -> str | None:
        """The refund using the reader (the card being presented), if any."""
        return next(iter(self._at_reader), None)

    def _require_reader(self, payment: Payment) -> None:
        if Capability.REFUNDS_AT_READER not in self._reader.capabilities:
            interac = payment.card is not None and payment.card.brand == INTERAC_BRAND
            why = "an Interac payment is refunded only with the card presented, but " if interac else ""
            raise RequestRefused(
                Reason.UNSUPPORTED, f"{why}the {self._reader.driver} reader cannot refund at the reader"
            )
        holders = self._store.payments(states=HOLDS_READER)
        if holders or self._at_reader:
            holder = holders[0].payment_id if holders else f"refund {next(iter(self._at_reader))}"
            raise RequestRefused(Reason.BUSY, f"the reader is held by {holder}", retryable=True)
        problem = self._reader.unavailable()
        if problem is not None:
            raise RequestRefused(Reason.READER_UNAVAILABLE, problem, retryable=True)

    # -- at the reader --------------------------------------------------------------------------

    def _begin_at_reader(self, refund_id: str) -> None:
        self._at_reader[refund_id] = asyncio.create_task(self._refund_at_reader(refund_id))

    async def _refund_at_reader(self, refund_id: str) -> None:
        refund = self._store.refund(refund_id)
        payment = self._store.payment(refund.payment_id) if refund else None
        assert refund is not None, refund_id
        assert payment is not None, refund.payment_id
        assert payment.payment_intent is not None, payment.payment_id
        order = RefundOrder(
            payment_intent=payment.payment_intent,
            amount=refund.amount,
            metadata=self._metadata(payment, refund),
            idempotency_key=keys.refund_key(payment.payment_id, refund_id, at_reader=True),
        )
        said: ReaderError | None = None
        unknown = False
        try:
            await self._reader.refund(order, self._listener_for(payment.payment_id))
        except RefundOutcomeUnknown as error:
            logger.warning("refund %s at the reader: %s; looking again", refund_id, error.message)
            unknown = True
        except ReaderError as error:
            said = error
        finally:
            if self._at_reader.get(refund_id) is asyncio.current_task():
                del self._at_reader[refund_id]
        # The reader's word is not the money's: read the refund from Stripe, through the outbox. When
        # the reader's fate is unknown, Stripe having none yet means asking the reader again (same key).
        self._read_from_stripe(refund, said, resume=unknown)

    def _read_from_stripe(self, refund: Refund, said: ReaderError | None = None, *, resume: bool = False) -> None:
        attempt = sum(1 for op in self._store.operations_of(refund.payment_id) if op.kind == Kind.REFUND) + 1
        key = f"{keys.refund_key(refund.payment_id, refund.refund_id, at_reader=True)}:read:{attempt}"
        params: dict[str, Any] = {"refund_id": refund.refund_id, "by_reader": True, "resume": resume}
        if said is not None:
            params["reader_code"], params["reader_message"] = said.code, said.message
        self._ledger.add_operation(refund.payment_id, (Kind.REFUND, key, params))

    # -- Stripe's answers, from the worker ------------------------------------------------------

    def settle(self, op: Operation, outcome: Outcome) -> None:
        """Apply Stripe's answer (or what it holds) to the refund of `op`."""
        refund = self._store.refund(str(op.params["refund_id"]))
        if refund is None or refund.state not in OPEN:
            self._ledger.finish(op, OpStatus.DONE, None)
            return
        now = self._clock()
        if isinstance(outcome, Refunded):
            made = outcome.refund
            state = RefundState.of(made.status) or RefundState.PENDING
            error = None
            if state in (RefundState.FAILED, RefundState.CANCELED):
                error = PaymentError(
                    Reason.STRIPE_REFUSED, f"Stripe's refund {made.id} {made.status}: {made.failure_reason}"
                )
            if made.amount != refund.amount:
                logger.error(
                    "refund %s: Stripe's refund %s is for %d, not %d",
                    refund.refund_id,
                    made.id,
                    made.amount,
                    refund.amount,
                )
            after = replace(refund, state=state, stripe_refund=made.id, error=error, updated_at=now)
            self._ledger.commit_refund(refund, after, f"Stripe refund {made.id}: {made.status}", done=op)
            return
        if op.params.get("by_reader") and isinstance(outcome, NotFound):
            if op.params.get("resume"):
                # Restarted with the refund at the reader and Stripe holds none: ask the reader again,
                # under the same key (a request that reached Stripe is answered, never made twice).
                self._ledger.finish(op, OpStatus.DONE, None)
                if refund.refund_id not in self._at_reader:
                    self._begin_at_reader(refund.refund_id)
                return
            code = str(op.params.get("reader_code") or "")
            message = str(op.params.get("reader_message") or "the reader reported a refund that Stripe does not hold")
            state = RefundState.CANCELED if code in _NOBODY_PRESENTED else RefundState.FAILED
            reason = Reason.STRIPE_REFUSED if code == REFUND_REFUSED else Reason.READER_UNAVAILABLE
            after = replace(refund, state=state, error=PaymentError(reason, message), updated_at=now)
            self._ledger.commit_refund(refund, after, f"not refunded at the reader: {message}", failed=op)
            return
        message = str(getattr(outcome, "message", None) or type(outcome).__name__)
        after = replace(
            refund,
            state=RefundState.FAILED,
            error=PaymentError(Reason.STRIPE_REFUSED, f"Stripe refused the refund: {message}"),
            updated_at=now,
        )
        self._ledger.commit_refund(refund, after, f"failed: {message}", failed=op)

    # -- lifecycle ------------------------------------------------------------------------------

    def recover(self) -> None:
        """After a restart: a refund left at the reader is looked up at Stripe, then resumed if Stripe has none."""
        for refund in self._store.refunds(states=OPEN):
            if refund.at_reader and not self._being_read(refund):
                self._read_from_stripe(refund, resume=True)

    def _being_read(self, refund: Refund) -> bool:
        """Whether an operation of this refund waits in the outbox."""
        return any(
            op.status == OpStatus.PENDING and op.kind == Kind.REFUND and op.params.get("refund_id") == refund.refund_id
            for op in self._store.operations_of(refund.payment_id)
        )

    async def close(self) -> None:
        """Stop the refunds at the reader (they stay pending, and are looked up again at the next start)."""
        tasks = list(self._at_reader.values())
        self._at_reader.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, timeout=5.0)

    def _metadata(self, payment: Payment, refund: Refund) -> dict[str, str]:
        return {
            "refund_id": refund.refund_id,
            "payment_id": payment.payment_id,
            "order_id": payment.order_id,
            "terminal_id": self._terminal_id,
        }
