"""Offline through a reader's own store (FORWARDS_OFFLINE: a Terminal SDK bridge's offline mode,
docs/payments.md "Which offline is real").

While Stripe cannot be reached the host cannot create a PaymentIntent, so the reader's SDK stores
the payment itself and creates and confirms its PaymentIntent when it forwards it. The host:
- on STORED (the collection's end, `StoredOffline`) commits the payment `queued_offline`, its
  create dropped (the reader makes the PaymentIntent), with a CONFIRM(by_reader) operation that
  names the reader's offline_ref and waits until the PaymentIntent is known (`waits`);
- on FORWARDED (`ForwardedPayments.tell`, also repeated by the reader after every connect) finds
  the payment by that offline_ref, reads the PaymentIntent at Stripe and takes it only when it is
  this payment's (its metadata's offline_ref and the host's order metadata — order_id,
  terminal_id, payment_id — which the host gave the reader with the offline COLLECT, its amount
  and currency): the device is never believed. The worker then reads the PaymentIntent's outcome
  and the payment is authorised (and captured when asked) or failed, exactly once, as any
  CONFIRM(by_reader).
- on FORWARDED of a payment no queued_offline payment waits for (the daemon died between the
  reader storing it and the host committing it, and the restart canceled the customer's payment):
  an authorisation nobody here will capture. It is released (`release_orphan`: canceled at Stripe
  under a key made of the PaymentIntent's id, so a repeated FORWARDED cancels it once), and said
  loudly: the POS was never told this payment succeeded, so taking the money is not readerhost's
  call to make.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Protocol

from readerhost.drivers.reader.base import StoredOffline

from .model import Card, OpStatus, Payment, State
from .operations import Kind
from .outcomes import IntentView, Outcome, Succeeded
from .store import Operation, Store
from .validation import reserved_metadata

logger = logging.getLogger(__name__)

VERIFY_RETRY_S = (0.5, 1.0, 2.0, 5.0, 10.0)  # reading the forwarded PaymentIntent while Stripe is unsteady


def stored_offline_op_params(stored: StoredOffline, attempt: int) -> dict[str, object]:
    """The CONFIRM(by_reader) operation of a payment the reader stored: read once it is forwarded."""
    return {"payment_method": stored.offline_ref, "attempt": attempt, "by_reader": True, "stored_by_reader": True}


def stored_card(stored: StoredOffline) -> Card:
    return Card(stored.brand, stored.last4, stored.read_method)


def waits_for_forwarding(op: Operation, payment: Payment | None) -> bool:
    """The worker's question: a stored payment's CONFIRM is read only once its PaymentIntent is known."""
    return (
        op.kind == Kind.CONFIRM
        and bool(op.params.get("stored_by_reader"))
        and (payment is None or payment.payment_intent is None)
    )


def offline_ref_of(store: Store, offline_ref: str) -> Payment | None:
    """The queued_offline payment whose reader stored it as `offline_ref`."""
    for payment in store.payments(states=(State.QUEUED_OFFLINE,), limit=10_000):
        for op in store.operations_of(payment.payment_id):
            if op.params.get("stored_by_reader") and op.params.get("payment_method") == offline_ref:
                return payment
    return None


class Adopt(Protocol):
    def __call__(self, payment_id: str, payment_intent: str) -> None: ...


class ForwardedPayments:
    """Hears the reader's FORWARDED, checks the PaymentIntent at Stripe, and hands it to the service."""

    def __init__(
        self,
        store: Store,
        retrieve: Callable[[str], Outcome],
        cancel: Callable[[str, str | None, str], Outcome],
        terminal_id: str,
    ) -> None:
        self._store = store
        self._terminal_id = terminal_id
        self._retrieve = retrieve
        self._cancel = cancel
        self._adopt: Adopt | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._checking: set[str] = set()

    def attach(self, adopt: Adopt) -> None:
        self._adopt = adopt

    def tell(self, offline_ref: str, payment_intent: str) -> None:
        """The reader says it forwarded `offline_ref` as `payment_intent` (from the event loop)."""
        if offline_ref in self._checking:
            return
        payment = offline_ref_of(self._store, offline_ref)
        if payment is not None and payment.payment_intent is not None:
            logger.debug("forwarded payment %s: already taken as %s", offline_ref, payment.payment_intent)
            return
        if payment is None and self._store.payment_by_intent(payment_intent) is not None:
            logger.debug("forwarded payment %s: %s is already a payment's here", offline_ref, payment_intent)
            return
        self._checking.add(offline_ref)
        work = (
            self._check(payment, offline_ref, payment_intent) if payment else self._release(offline_ref, payment_intent)
        )
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _check(self, payment: Payment, offline_ref: str, payment_intent: str) -> None:
        """A forwarded PaymentIntent for `payment`: taken once read at Stripe to be this payment's."""
        try:
            for wait in (0.0, *VERIFY_RETRY_S):
                await asyncio.sleep(wait)
                outcome = await asyncio.to_thread(self._retrieve, payment_intent)
                if not isinstance(outcome, Succeeded):
                    continue  # Stripe unsteady: read again; the reader also repeats FORWARDED on connect
                intent = outcome.intent
                problem = _not_this_payment(intent, payment, offline_ref, self._terminal_id)
                if problem:
                    logger.critical(
                        "payment %s: the reader forwarded %s as %s, which is not this payment (%s): not taken",
                        payment.payment_id, offline_ref, payment_intent, problem,
                    )  # fmt: skip
                    return
                assert self._adopt is not None
                self._adopt(payment.payment_id, payment_intent)
                return
            logger.warning("payment %s: could not read the forwarded %s yet", payment.payment_id, payment_intent)
        finally:
            self._checking.discard(offline_ref)

    async def _release(self, offline_ref: str, payment_intent: str) -> None:
        """A forwarded PaymentIntent no payment here waits for: cancel its authorisation (once)."""
        try:
            outcome = await asyncio.to_thread(self._retrieve, payment_intent)
            if not isinstance(outcome, Succeeded):
                return  # the reader repeats FORWARDED after every connect: looked at again then
            intent = outcome.intent
            if intent.metadata.get("offline_ref") != offline_ref:
                logger.critical(
                    "the reader forwarded %s as %s, whose metadata names %r: not touched",
                    offline_ref, payment_intent, intent.metadata.get("offline_ref"),
                )  # fmt: skip
                return
            if intent.status not in ("requires_capture", "requires_confirmation", "requires_payment_method"):
                logger.critical(
                    "the reader forwarded %s as %s (%s), which no payment here waits for: settle it from the "
                    "Stripe Dashboard", offline_ref, payment_intent, intent.status,
                    extra={"journal": {"PAYMENT_INTENT": payment_intent}},
                )  # fmt: skip
                return
            released = await asyncio.to_thread(
                self._cancel, payment_intent, "abandoned", f"readerhost-orphan-{payment_intent}"
            )
            logger.critical(
                "the reader forwarded %s as %s (%s %s), which no payment here waits for (the daemon stopped "
                "before it was recorded): its authorisation is %s; if the customer took the goods, charge "
                "them another way",
                offline_ref, payment_intent, intent.amount, intent.currency,
                "released" if isinstance(released, Succeeded) else f"NOT released yet ({type(released).__name__})",
                extra={"journal": {"PAYMENT_INTENT": payment_intent}},
            )  # fmt: skip
        finally:
            self._checking.discard(offline_ref)


def _not_this_payment(intent: IntentView, payment: Payment, offline_ref: str, terminal_id: str) -> str | None:
    ref = intent.metadata.get("offline_ref")
    if ref != offline_ref:
        return f"its metadata names {ref!r}"
    for key, ours in reserved_metadata(payment, terminal_id).items():
        if intent.metadata.get(key) != ours:
            return f"its metadata's {key} is {intent.metadata.get(key)!r}, not {ours!r}"
    if intent.amount != payment.request.amount or intent.currency != payment.request.currency:
        return f"it is for {intent.amount} {intent.currency}, not {payment.request.amount} {payment.request.currency}"
    return None


def dropped_creates(store: Store, payment: Payment, now: float) -> list[Operation]:
    """The payment's create, still pending: the reader makes the PaymentIntent now, not the host.
    (A create sent before may have made one, unconfirmed: it holds no money.)"""
    return [
        op.but(status=OpStatus.DROPPED, updated_at=now)
        for op in store.operations_of(payment.payment_id)
        if op.kind == Kind.CREATE and op.status == OpStatus.PENDING
    ]
