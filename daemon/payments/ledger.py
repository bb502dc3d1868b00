"""Commit, then tell: the one way a payment (or one of its refunds) changes.

Each change writes the payment's new state (checked against the transition table by the caller's
`moved_to`), its history line and its outbox operations in one transaction; only then is it
logged, with the journal's fields, and published to the listeners, and the worker woken when the
outbox changed. A crash before the commit leaves nothing to tell; after it, nothing told is missing
from the store.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from readerhost.daemon.journal import MessageId

from .events import Event, EventHub, Topic
from .model import Increment, OpStatus, OrderClosure, Payment, Refund, RefundState, State
from .store import Operation, Store

logger = logging.getLogger("readerhost.daemon.payments.service")  # the name technicians filter on

NewOperation = tuple[str, str, dict[str, Any]]  # kind, idempotency key, parameters


class Outbox(Protocol):
    """What the ledger tells the worker (worker.py), the outbox's only sender."""

    def wake(self) -> None:
        """The outbox changed: look at it again."""

    def attempt_committed(self, op_id: int) -> None:
        """The operation's first attempt was committed with the change that queued it: the send
        that follows at once uses it."""


class Ledger:
    def __init__(self, store: Store, events: EventHub, outbox: Outbox, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._events = events
        self._outbox = outbox
        self._clock = clock

    def insert(self, payment: Payment, detail: str, first_op: NewOperation) -> Payment:
        """A new payment, with the operation that starts it, sent at once: its first attempt is
        committed with it (one synced write, not two; docs/payments.md, "One sync per step")."""
        kind, key, params = first_op
        with self._store.transaction():
            self._store.insert_payment(payment, detail)
            op = self._store.add_operation(payment.payment_id, kind, key, params, self._clock(), first_attempt=True)
        self._outbox.attempt_committed(op.op_id)
        self._events.publish(Event(Topic.PAYMENT, "payment.state", payment.to_json()))
        self.queued()
        return payment

    def close_order(self, closure: OrderClosure) -> OrderClosure:
        """Record the order as paid outside readerhost (payment.close), then say so."""
        with self._store.transaction():
            self._store.close_order(closure)
        logger.info(
            "order %s closed as paid %s (payment.close): no card payment follows, its open authorisations are "
            "canceled at reconciliation", closure.order_id, closure.paid_by,
            extra={"journal": {"ORDER_ID": closure.order_id}},
        )  # fmt: skip
        return closure

    def commit(
        self,
        before: Payment,
        after: Payment,
        detail: str,
        *,
        new_ops: Sequence[NewOperation] = (),
        updates: Sequence[Operation] = (),
        done: Operation | None = None,
        failed: Operation | None = None,
        sent_at_once: bool = False,
    ) -> Payment:
        """`before` becomes `after`, with `detail` in its history; operations are added (`new_ops`),
        changed (`updates`), or finished with the change (`done`, `failed`). With `sent_at_once`, the
        one new operation goes to Stripe as soon as this is committed: when it is first in its
        payment's line, its first attempt is committed with it (docs/payments.md, "One sync per step")."""
        now = self._clock()
        finished = [op.but(status=OpStatus.DONE, updated_at=now) for op in (done,) if op] + [
            op.but(status=OpStatus.FAILED, updated_at=now) for op in (failed,) if op
        ]
        attempted: int | None = None
        with self._store.transaction():
            self._store.save_payment(before, after, detail)
            for op in (*updates, *finished):
                self._store.save_operation(op)
            first_attempt = (
                sent_at_once and len(new_ops) == 1 and not self._store.has_pending_operation(after.payment_id)
            )
            for kind, key, params in new_ops:
                added = self._store.add_operation(after.payment_id, kind, key, params, now, first_attempt=first_attempt)
                attempted = added.op_id if first_attempt else None
        if attempted is not None:
            self._outbox.attempt_committed(attempted)
        logger.log(
            logging.WARNING if after.state is State.FAILED else logging.INFO,
            "payment %s (order %s): %s -> %s: %s", after.payment_id, after.order_id, before.state, after.state, detail,
            extra={"journal": journal_fields(before, after)},
        )  # fmt: skip
        self._events.publish(Event(Topic.PAYMENT, "payment.state", after.to_json()))
        if new_ops or updates or finished:
            self.queued()
        return after

    def commit_refund(
        self,
        before: Refund | None,
        after: Refund,
        detail: str,
        *,
        new_ops: Sequence[NewOperation] = (),
        done: Operation | None = None,
        failed: Operation | None = None,
    ) -> Refund:
        """A refund is asked for (`before` None) or changes, with `detail` in its history and its outbox
        operations (which are its payment's); then it is logged and told as `refund.updated`."""
        now = self._clock()
        finished = [op.but(status=OpStatus.DONE, updated_at=now) for op in (done,) if op] + [
            op.but(status=OpStatus.FAILED, updated_at=now) for op in (failed,) if op
        ]
        with self._store.transaction():
            if before is None:
                self._store.insert_refund(after, detail)
            else:
                self._store.save_refund(before, after, detail)
            for op in finished:
                self._store.save_operation(op)
            for kind, key, params in new_ops:
                self._store.add_operation(after.payment_id, kind, key, params, now)
        payment = self._store.payment(after.payment_id)
        assert payment is not None
        failed_now = after.state in (RefundState.FAILED, RefundState.CANCELED)
        logger.log(
            logging.WARNING if failed_now else logging.INFO,
            "refund %s of payment %s (order %s): %s -> %s: %s",
            after.refund_id, after.payment_id, payment.order_id, before.state if before else "new", after.state, detail,
            extra={"journal": refund_journal_fields(payment, before, after)},
        )  # fmt: skip
        self._events.publish(Event(Topic.PAYMENT, "refund.updated", {**after.to_json(), "payment": payment.to_json()}))
        if new_ops or finished:
            self.queued()
        return after

    def commit_increment(
        self,
        before: Payment,
        after: Payment,
        increment_before: Increment | None,
        increment: Increment,
        detail: str,
        *,
        new_ops: Sequence[NewOperation] = (),
        done: Operation | None = None,
        failed: Operation | None = None,
    ) -> Payment:
        """An increment is asked for (`increment_before` None) or settles, with its payment's change (the
        hold raised) and operations in one transaction; then it is logged and told as `increment.updated`
        (with the payment). Returns the payment as committed, with its increments."""
        now = self._clock()
        finished = [op.but(status=OpStatus.DONE, updated_at=now) for op in (done,) if op] + [
            op.but(status=OpStatus.FAILED, updated_at=now) for op in (failed,) if op
        ]
        with self._store.transaction():
            self._store.save_payment(before, after, detail)
            if increment_before is None:
                self._store.insert_increment(increment)
            else:
                self._store.save_increment(increment_before, increment)
            for op in finished:
                self._store.save_operation(op)
            for kind, key, params in new_ops:
                self._store.add_operation(after.payment_id, kind, key, params, now)
        payment = self._store.payment(after.payment_id)
        assert payment is not None
        logger.info(
            "payment %s (order %s): %s", payment.payment_id, payment.order_id, detail,
            extra={"journal": {**journal_fields(before, payment), "INCREMENT_ID": increment.increment_id}},
        )  # fmt: skip
        self._events.publish(
            Event(Topic.PAYMENT, "increment.updated", {**increment.to_json(), "payment": payment.to_json()})
        )
        if new_ops or finished:
            self.queued()
        return payment

    def add_operation(self, payment_id: str, new: NewOperation) -> None:
        """An operation for a payment whose state does not change (e.g. a cancel sent again)."""
        kind, key, params = new
        with self._store.transaction():
            self._store.add_operation(payment_id, kind, key, params, self._clock())
        self.queued()

    def finish(self, op: Operation, status: OpStatus, error: str | None) -> None:
        """An operation ends without changing its payment (e.g. the payment had ended already)."""
        with self._store.transaction():
            self._store.save_operation(op.but(status=status, last_error=error, updated_at=self._clock()))
        self._queue_changed()

    def queued(self) -> None:
        """The outbox changed: listeners hear its size, the worker looks at it."""
        self._queue_changed()
        self._outbox.wake()

    def _queue_changed(self) -> None:
        # Only the outbox's figures: the offline totals of queue_stats() cost a scan this does not need.
        pending, oldest_created_at = self._store.pending_operations()
        oldest = None if oldest_created_at is None else round(self._clock() - oldest_created_at, 1)
        self._events.publish(Event(Topic.QUEUE, "queue.changed", {"pending": pending, "oldest_age_s": oldest}))


# The journal's MESSAGE_ID for a payment entering each state (from queued_offline, authorized is "forwarded").
_STATE_MESSAGE_IDS = {
    State.AUTHORIZED: MessageId.PAYMENT_AUTHORISED,
    State.DECLINED: MessageId.PAYMENT_DECLINED,
    State.CAPTURED: MessageId.PAYMENT_CAPTURED,
    State.FAILED: MessageId.PAYMENT_FAILED,
    State.CANCELED: MessageId.PAYMENT_CANCELED,
    State.QUEUED_OFFLINE: MessageId.OFFLINE_STORED,
}


_REFUND_MESSAGE_IDS = {
    RefundState.PENDING: MessageId.REFUND_REQUESTED,
    RefundState.SUCCEEDED: MessageId.REFUND_SUCCEEDED,
    RefundState.FAILED: MessageId.REFUND_FAILED,
    RefundState.CANCELED: MessageId.REFUND_FAILED,
}


def refund_journal_fields(payment: Payment, before: Refund | None, after: Refund) -> dict[str, str]:
    """The journal fields of a change of refund: its ids and its payment's (never the card)."""
    fields = journal_fields(payment, payment)
    fields["REFUND_ID"] = after.refund_id
    if after.stripe_refund:
        fields["STRIPE_REFUND"] = after.stripe_refund
    if (before is None or before.state is not after.state) and after.state in _REFUND_MESSAGE_IDS:
        fields["MESSAGE_ID"] = _REFUND_MESSAGE_IDS[after.state]
    return fields


def journal_fields(before: Payment, after: Payment) -> dict[str, str]:
    """The journal fields of a change of payment: ids only (never the card, a key or a client secret)."""
    fields = {"PAYMENT_ID": after.payment_id, "ORDER_ID": after.order_id}
    if after.payment_intent:
        fields["PAYMENT_INTENT"] = after.payment_intent.partition("_secret_")[0]
    if after.capture_before is not None and after.capture_before != before.capture_before:
        # The message says it in RFC 3339; the field keeps the raw value for tools.
        fields["CAPTURE_BEFORE_UNIX"] = str(after.capture_before)
    if after.state is not before.state:
        if before.state is State.QUEUED_OFFLINE and after.state is State.AUTHORIZED:
            fields["MESSAGE_ID"] = MessageId.OFFLINE_FORWARDED
        elif after.state in _STATE_MESSAGE_IDS:
            fields["MESSAGE_ID"] = _STATE_MESSAGE_IDS[after.state]
    return fields
