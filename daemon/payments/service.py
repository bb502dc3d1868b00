"""The payment service: what the POS asks for, carried out through the store, the reader and the worker.

Every change of a payment goes through the ledger (ledger.py): committed with its history and its
outbox operations, then told. The worker reports Stripe's answers back through `settle` and
`hold`, which decide what each answer means for the payment.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import string
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from typing import Any

from readerhost.daemon.journal import MessageId
from readerhost.drivers.reader.base import (
    DISPLAY_MESSAGES,
    Capability,
    CollectedPaymentMethod,
    Reader,
    ReaderError,
    StoredOffline,
)

from . import attempts, keys, sdk_offline, validation
from .events import Event, EventHub, Topic
from .increments import Increments, pending_increment
from .ledger import Ledger, journal_fields
from .model import (
    ATTEMPT_OVER,
    CANCELLATION_REASONS,
    HOLDS_READER,
    TERMINAL,
    TRANSITIONS,
    CaptureMode,
    Card,
    OfflineMode,
    OpStatus,
    OrderClosure,
    PaidBy,
    Payment,
    PaymentError,
    PaymentRequest,
    Reason,
    Refund,
    RequestRefused,
    State,
    rfc3339,
)
from .offline import OfflineLimits, offline_problem
from .operations import ABANDONED, Kind, intent_id_of
from .outcomes import Declined, IntentView, NotFound, Outcome, Succeeded, Unknown, WrongState
from .refunds import Refunds
from .store import Operation, Store
from .worker import Worker

logger = logging.getLogger(__name__)

# How many times, per card, a reader that confirms itself is asked to confirm in one run of the daemon
# (each time after the truth was learned from the reader and the PaymentIntent).
READER_CONFIRM_ASKS = 2


@dataclass(frozen=True)
class ServiceSettings:
    terminal_id: str = "readerhost"
    offline: OfflineLimits = field(default_factory=OfflineLimits)
    customer_wait_s: float = 30.0  # the longest a customer waits for Stripe before the payment fails


class PaymentService:
    def __init__(
        self,
        store: Store,
        worker: Worker,
        reader: Reader,
        events: EventHub,
        settings: ServiceSettings = ServiceSettings(),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._worker = worker
        self._reader = reader
        self._events = events
        self._settings = settings
        self._clock = clock
        self._collections: dict[str, asyncio.Task[None]] = {}
        self._collected: dict[str, CollectedPaymentMethod] = {}  # read, awaiting the customer's OK
        # A reader that confirms itself, confirming: its payment's CONFIRM waits until it has ended.
        self._processing: dict[str, asyncio.Task[None]] = {}
        self._reader_asks: dict[str, int] = {}  # per payment: asks to confirm its current card, this run
        self._customer_waits: dict[str, asyncio.TimerHandle] = {}  # per payment: its bound on waiting for Stripe
        self._ledger = Ledger(store, events, worker, clock)
        self._refunds = Refunds(
            store,
            self._ledger,
            reader,
            lambda payment_id: _ReaderRelay(events, payment_id),
            terminal_id=settings.terminal_id,
            clock=clock,
        )
        self._increments = Increments(store, self._ledger, clock)
        worker.attach(self.settle, self.hold, self._waits_for_reader)

    # -- the POS's requests -------------------------------------------------------------------

    async def start(self, params: dict[str, Any]) -> Payment:
        """payment.start: the order's live (or successful) attempt, or a new attempt (attempts.py)."""
        request = validation.payment_request(params)
        latest = self._store.payment_by_order(request.order_id)  # still the latest below: nothing awaits
        live = attempts.live_attempt(self._store, request, latest)
        if live is not None:
            return live
        self._require_free_reader()
        self._require_reader()
        if request.tipping is not None and Capability.TAKES_TIPS not in self._reader.capabilities:
            raise RequestRefused(Reason.UNSUPPORTED, f"the {self._reader.driver} reader has no screen to offer a tip")
        if not self._worker.health.reachable and request.offline is OfflineMode.REQUIRE_ONLINE:
            raise RequestRefused(
                Reason.STRIPE_UNAVAILABLE, "Stripe cannot be reached and this payment requires online", retryable=True
            )
        if not self._worker.health.reachable and not (self._reader_stores_offline or self._reader_forwards_offline):
            raise RequestRefused(
                Reason.STRIPE_UNAVAILABLE, "Stripe cannot be reached and this reader works only online", retryable=True
            )
        if not self._worker.health.reachable:
            self._check_offline_limits(request)
        now = self._clock()
        attempt = attempts.next_attempt(latest)
        payment = Payment(
            _new_payment_id(), request, State.CREATING, created_at=now, updated_at=now, order_attempt=attempt
        )
        if request.payment_intent_client_secret:
            kind, key = Kind.ADOPT, keys.operation_key(payment.payment_id, Kind.ADOPT)
        else:
            kind, key = Kind.CREATE, keys.create_key(self._settings.terminal_id, request.order_id, attempt)
        new_op = (kind, key, {"metadata": self._metadata(payment)})
        paid_again = f", attempt {attempt} of the order" if attempt > 1 else ""
        detail = f"payment.start ({request.amount} {request.currency}{paid_again})"
        payment = self._ledger.insert(payment, detail, new_op)
        self._bound_wait(payment)
        return payment

    def close_order(self, order_id: str, paid_by: PaidBy) -> tuple[OrderClosure, list[Payment]]:
        """payment.close: the order was paid outside readerhost; its attempts, all over, are kept."""
        closure = self._store.order_closure(order_id)
        if closure is None:  # else asked again: the same answer (`other` is the only way paid_by names)
            attempts.refuse_closing(self._store, order_id)
            closure = self._ledger.close_order(OrderClosure(order_id, paid_by, self._clock()))
        return closure, self._store.order_payments(order_id)

    def get(self, *, payment_id: str | None = None, order_id: str | None = None) -> Payment:
        payment = self._store.payment(payment_id) if payment_id else self._store.payment_by_order(order_id or "")
        if payment is None:
            raise RequestRefused(Reason.NOT_FOUND, f"no payment {payment_id or order_id}")
        return payment

    def list(
        self,
        *,
        states: Collection[State] | None = None,
        since: float | None = None,
        limit: int = 100,
        capture_before_lt: float | None = None,
        order_id: str | None = None,
    ) -> list[Payment]:
        return self._store.payments(
            states=states, since=since, limit=limit, capture_before_lt=capture_before_lt, order_id=order_id
        )

    async def confirm(self, payment_id: str) -> Payment:
        """payment.confirm: the customer (or the POS) said go after the card was read."""
        payment = self.get(payment_id=payment_id)
        method = self._collected.pop(payment_id, None)
        if payment.state is not State.AWAITING_CONFIRMATION or method is None:
            raise RequestRefused(
                Reason.INVALID_STATE, f"payment {payment_id} is {payment.state}, not awaiting_confirmation"
            )
        return self._authorise(payment, method)

    async def collect_again(self, payment_id: str) -> Payment:
        """payment.collect_again: another card for the same PaymentIntent after a decline or a reader error."""
        payment = self.get(payment_id=payment_id)
        reader_failed = payment.state is State.COLLECTING and payment_id not in self._collections and payment.error
        if payment.state is not State.DECLINED and not reader_failed:
            raise RequestRefused(
                Reason.INVALID_STATE, f"payment {payment_id} is {payment.state}: nothing to collect again"
            )
        self._require_free_reader(but=payment_id)
        self._require_reader()
        payment = self._ledger.commit(
            payment, payment.moved_to(State.COLLECTING, self._clock(), error=None), "collect again"
        )
        self._begin_collection(payment)
        return payment

    async def capture(self, payment_id: str, amount: int | None = None, *, why: str = "payment.capture") -> Payment:
        """payment.capture: accepted once the capture is durably queued (`why` goes in its history)."""
        payment = self.get(payment_id=payment_id)
        pending = pending_increment(payment)
        if pending is not None and payment.state is State.AUTHORIZED:  # the hold may yet change
            raise RequestRefused(
                Reason.BUSY,
                f"increment {pending.increment_id} of payment {payment_id} is still on its way to Stripe: "
                "capture once it has settled (increment.updated)",
                retryable=True,
            )
        authorised = payment.authorised_amount  # with the tip the customer added on the reader, or raised
        wanted = authorised if amount is None else amount
        if isinstance(wanted, bool) or not isinstance(wanted, int) or not 0 < wanted <= authorised:
            raise validation.InvalidRequest("amount", f"amount must be 1 to the authorised {authorised}")
        if payment.state is State.CAPTURED and payment.capture_amount is None:
            # Captured as it was authorised (Interac): the POS asking for that capture gets it.
            if wanted == payment.captured_amount:
                return payment
            raise RequestRefused(
                Reason.INVALID_STATE,
                f"payment {payment_id} was captured as it was authorised, for {payment.captured_amount}",
            )
        if payment.state in (State.CAPTURING, State.CAPTURED) or payment.capture_amount is not None:
            if payment.capture_amount == wanted:
                return payment  # the POS asking again: the same capture, not a second one
            raise RequestRefused(
                Reason.INVALID_STATE, f"payment {payment_id} is already being captured for {payment.capture_amount}"
            )
        if payment.state is State.QUEUED_OFFLINE:
            # Captured as soon as the stored authorisation has been forwarded and accepted.
            return self._ledger.commit(
                payment, replace(payment, capture_amount=wanted, updated_at=self._clock()), "capture requested"
            )
        if payment.state is not State.AUTHORIZED:
            raise RequestRefused(Reason.INVALID_STATE, f"payment {payment_id} is {payment.state}, not authorized")
        return self._queue_capture(payment, wanted, why)

    async def cancel(
        self, payment_id: str, reason: str = "requested_by_customer", *, why: str = "payment.cancel"
    ) -> Payment:
        """payment.cancel: stops a collection; cancels the PaymentIntent unless it was captured."""
        if reason not in CANCELLATION_REASONS:
            raise validation.InvalidRequest("reason", f"reason must be one of {', '.join(CANCELLATION_REASONS)}")
        payment = self.get(payment_id=payment_id)
        if payment.state is State.CANCELED:
            return payment
        if State.CANCELED not in TRANSITIONS[payment.state]:
            raise RequestRefused(
                Reason.INVALID_STATE, f"payment {payment_id} is {payment.state} and cannot be canceled"
            )
        self._stop_collection(payment_id)
        return self._cancel(payment, reason, f"{why} ({reason})")

    async def cancel_at_stripe(self, payment_id: str, reason: str) -> Payment:
        """Reconciliation's cancel: like payment.cancel, and for a payment canceled (or failed) here
        whose PaymentIntent still holds an authorisation, a fresh cancel under a new key."""
        payment = self.get(payment_id=payment_id)
        if payment.state not in ATTEMPT_OVER:
            return await self.cancel(payment_id, reason)
        ops = [op for op in self._store.operations_of(payment_id) if op.kind == Kind.CANCEL]
        if any(op.status == OpStatus.PENDING for op in ops):
            return payment  # already on its way
        key = keys.operation_key(payment_id, Kind.CANCEL, len(ops) + 1)
        self._ledger.add_operation(payment_id, (Kind.CANCEL, key, {"reason": reason}))
        return payment

    def authorisation_ended(self, payment_id: str, intent: IntentView) -> Payment | None:
        """Stripe canceled the PaymentIntent of a payment still `authorized` here (its authorisation
        expired at its deadline, or it was canceled elsewhere): the payment fails now, without waiting
        for a capture request. Returns the failed payment, or None when it had moved on meanwhile."""
        payment = self._store.payment(payment_id)
        if payment is None or payment.state is not State.AUTHORIZED or intent.status != "canceled":
            return None
        reason = _cancel_reason(intent)
        message = f"Stripe canceled the authorisation before a capture was asked ({intent.cancellation_reason})"
        after = payment.moved_to(State.FAILED, self._clock(), error=PaymentError(reason, message))
        return self._ledger.commit(payment, after, f"failed: {message}")

    async def refund(self, params: dict[str, Any]) -> Refund:
        """payment.refund: see refunds.py."""
        return await self._refunds.refund(params)

    async def increment(self, params: dict[str, Any]) -> Payment:
        """payment.increment: see increments.py."""
        return self._increments.increment(params)

    def set_offline_limits(self, limits: OfflineLimits) -> None:
        """New offline limits (a configuration reload); payments already stored are not affected."""
        self._settings = replace(self._settings, offline=limits)

    async def recover(self) -> None:
        """After a restart: payments that waited for a customer are canceled; the rest resume."""
        for payment in self._store.payments(states=HOLDS_READER, limit=10_000):
            self._cancel(payment, "abandoned", "canceled at restart: the customer interaction was lost")
        self._refunds.recover()
        self._worker.wake()

    async def close(self) -> None:
        """Stop the collections and the readers' confirms in progress (their payments are left as
        committed: a confirm's outcome is read from the PaymentIntent after the restart)."""
        stopping = list(self._collections.values()) + list(self._processing.values())
        for timer in self._customer_waits.values():
            timer.cancel()
        self._customer_waits.clear()
        for payment_id in list(self._collections):
            self._stop_collection(payment_id)
        for task in self._processing.values():
            task.cancel()
        if stopping:
            await asyncio.wait(stopping, timeout=5.0)
        await self._refunds.close()

    # -- Stripe's answers, from the worker ----------------------------------------------------

    def settle(self, op: Operation, outcome: Outcome) -> None:
        """Apply a definite answer to an operation: it is done (or failed) and the payment moves."""
        payment = self._store.payment(op.payment_id)
        assert payment is not None
        settle_kind = {
            Kind.CREATE: self._settle_create,
            Kind.ADOPT: self._settle_create,
            Kind.CONFIRM: self._settle_confirm,
            Kind.CAPTURE: self._settle_capture,
            Kind.CANCEL: self._settle_cancel,
        }.get(Kind(op.kind))
        if op.kind == Kind.INCREMENT:
            self._increments.settle(op, outcome)
            return
        if settle_kind is None:  # a refund's, which moves the refund, not the payment
            self._refunds.settle(op, outcome)
            return
        settle_kind(payment, op, outcome)

    def hold(self, op: Operation, outcome: Unknown) -> None:
        """No answer: the worker will retry; meanwhile an offline-capable payment may go on without Stripe."""
        payment = self._store.payment(op.payment_id)
        if payment is None or not outcome.unreachable or payment.request.offline is not OfflineMode.PREFER_ONLINE:
            return
        if not (self._reader_stores_offline or self._reader_forwards_offline):
            return
        if payment.state is State.CREATING and op.kind == Kind.CREATE:
            dropped: list[Operation] = []
            if self._reader_forwards_offline:
                # The reader's SDK stores the payment and makes its PaymentIntent when it forwards it:
                # the host's create is dropped now, so that there is never a second one.
                if self._offline_problem(payment.request) is not None:
                    return  # over the offline limits: it waits for Stripe
                dropped = sdk_offline.dropped_creates(self._store, payment, self._clock())
            payment = self._ledger.commit(
                payment,
                payment.moved_to(State.COLLECTING, self._clock()),
                "Stripe unreachable: collecting offline",
                updates=dropped,
            )
            self._begin_collection(payment)
        elif payment.state is State.PROCESSING and self._reader_stores_offline:
            self._go_offline(payment)

    def _settle_create(self, payment: Payment, op: Operation, outcome: Outcome) -> None:
        now = self._clock()
        if op.kind == Kind.ADOPT and isinstance(outcome, WrongState):
            self._fail(payment, op, Reason.INVALID_STATE, outcome.message)
            return
        intent = outcome.intent if isinstance(outcome, Succeeded) else None
        if intent is None:
            message = getattr(outcome, "message", type(outcome).__name__)
            if payment.state is State.CANCELED:
                self._ledger.finish(op, OpStatus.FAILED, message)
            else:
                self._fail(payment, op, Reason.STRIPE_REFUSED, f"Stripe refused the PaymentIntent: {message}")
            return
        after = replace(payment, payment_intent=intent.id, updated_at=now)
        if payment.state is State.CREATING:
            after = after.moved_to(State.COLLECTING, now)
        after = self._ledger.commit(payment, after, f"PaymentIntent {intent.id}", done=op)
        if after.state is State.COLLECTING and after.payment_id not in self._collections:
            self._begin_collection(after)

    def _settle_confirm(self, payment: Payment, op: Operation, outcome: Outcome) -> None:
        if payment.state in TERMINAL:
            self._settle_abandoned_confirm(payment, op, outcome)
            return
        now = self._clock()
        if isinstance(outcome, Declined):
            if payment.offline:
                logger.error(
                    "offline payment %s (order %s) was declined when forwarded: %s; the goods were already given",
                    payment.payment_id, payment.order_id, outcome.decline.message,
                    extra={"journal": journal_fields(payment, payment)},
                )  # fmt: skip
                self._fail(payment, op, Reason.OFFLINE_DECLINED, f"declined when forwarded: {outcome.decline.message}")
                return
            # The declined charge's receipt, when Stripe's answer carried it expanded (a reader's does).
            receipt = outcome.intent.receipt if outcome.intent else None
            after = payment.moved_to(State.DECLINED, now, decline=outcome.decline, receipt=receipt)
            self._ledger.commit(
                payment, after, f"declined: {outcome.decline.decline_code or outcome.decline.code}", done=op
            )
            return
        intent = outcome.intent if isinstance(outcome, Succeeded | WrongState) else None
        if intent is not None and intent.status in ("requires_capture", "succeeded"):
            self._authorised(payment, op, intent)
            return
        if op.params.get("by_reader") and intent is not None and intent.status == "requires_confirmation":
            self._reader_did_not_confirm(payment, op)
            return
        if intent is not None and intent.status == "canceled":
            self._fail(
                payment, op, _cancel_reason(intent), f"the PaymentIntent was canceled ({intent.cancellation_reason})"
            )
            return
        self._fail(payment, op, Reason.STRIPE_REFUSED, f"Stripe refused the authorisation: {_describe(outcome)}")

    def _settle_capture(self, payment: Payment, op: Operation, outcome: Outcome) -> None:
        intent = outcome.intent if isinstance(outcome, Succeeded | WrongState) else None
        if intent is not None and intent.status == "succeeded":
            after = payment.moved_to(State.CAPTURED, self._clock(), captured_amount=intent.amount_received)
            self._ledger.commit(payment, after, f"captured {intent.amount_received}", done=op)
            if payment.capture_amount is not None and intent.amount_received != payment.capture_amount:
                self._captured_other_amount(after, payment.capture_amount)
            return
        if intent is not None and intent.status == "canceled":
            logger.error(
                "capture of payment %s (order %s) failed: the authorisation ended before it (%s)",
                payment.payment_id, payment.order_id, intent.cancellation_reason,
                extra={"journal": journal_fields(payment, payment)},
            )  # fmt: skip
            self._fail(payment, op, _cancel_reason(intent), "the authorisation expired or was canceled before capture")
            return
        logger.error(
            "capture of payment %s failed: %s", payment.payment_id, _describe(outcome),
            extra={"journal": journal_fields(payment, payment)},
        )  # fmt: skip
        self._fail(payment, op, Reason.STRIPE_REFUSED, f"Stripe refused the capture: {_describe(outcome)}")

    def _captured_other_amount(self, payment: Payment, asked: int) -> None:
        """Stripe holds a capture of another amount than the POS asked (the PaymentIntent was captured
        elsewhere, e.g. from the Dashboard): the store keeps Stripe's amount; a person must settle it."""
        taken = payment.captured_amount
        remedy = (
            f"refund {taken - asked} from the Stripe Dashboard" if taken > asked
            else f"the other {asked - taken} was released: take it another way"
        )  # fmt: skip
        logger.critical(
            "payment %s (order %s): Stripe captured %d %s where %d was asked; %s",
            payment.payment_id, payment.order_id, taken, payment.request.currency, asked, remedy,
            extra={"journal": {**journal_fields(payment, payment), "MESSAGE_ID": MessageId.CAPTURE_AMOUNT_MISMATCH}},
        )  # fmt: skip

    def _settle_cancel(self, payment: Payment, op: Operation, outcome: Outcome) -> None:
        intent = outcome.intent if isinstance(outcome, Succeeded | WrongState) else None
        if isinstance(outcome, NotFound) or (intent is not None and intent.status == "canceled"):
            self._ledger.finish(op, OpStatus.DONE, None)
            return
        if intent is not None and intent.status == "succeeded":
            logger.critical(
                "payment %s was canceled here but its PaymentIntent %s is captured at Stripe: refund it by hand",
                payment.payment_id, intent.id,
                extra={"journal": journal_fields(payment, payment)},
            )  # fmt: skip
        self._ledger.finish(op, OpStatus.FAILED, _describe(outcome))

    # -- steps --------------------------------------------------------------------------------

    def _authorise(self, before: Payment, method: CollectedPaymentMethod, read: Payment | None = None) -> Payment:
        """The card is read and the customer agreed: queue the authorisation (or store it offline).

        `read` is `before` with what the read changed (card, attempts), committed together.
        """
        current = read or before
        attempt = current.attempts
        key = keys.operation_key(current.payment_id, Kind.CONFIRM, attempt)
        params: dict[str, Any] = {"payment_method": method.reference, "attempt": attempt}
        by_reader = Capability.CONFIRMS_ITSELF in self._reader.capabilities
        if by_reader:  # the reader confirms: the worker reads what it did, once it has ended
            params["by_reader"] = True
        offline = not by_reader and not self._worker.health.reachable and self._offline_allowed(current)
        target = State.QUEUED_OFFLINE if offline else State.PROCESSING
        after = current.moved_to(target, self._clock(), offline=offline or current.offline)
        detail = "card read: stored offline" if offline else "card read: authorising"
        if by_reader:
            detail = "card read: the reader confirms it with Stripe"
        # A reader that confirms itself makes the CONFIRM wait for it; an offline one waits for Stripe.
        sent_at_once = not by_reader and not offline
        after = self._ledger.commit(
            before, after, detail, new_ops=[(Kind.CONFIRM, key, params)], sent_at_once=sent_at_once
        )
        if after.state is State.PROCESSING:
            self._bound_wait(after)
        if by_reader:
            self._reader_asks.pop(after.payment_id, None)  # a new card: the reader may be asked afresh
            self._ask_reader_to_confirm(after)
        return after

    def _authorised(self, payment: Payment, op: Operation, intent: IntentView) -> None:
        now = self._clock()
        # A reader that confirms itself may carry a card the charge does not (its wallet, from the collect).
        card = _merge_cards(intent.card, payment.card)
        receipt = intent.receipt or payment.receipt
        tip = max(0, intent.amount - payment.request.amount)  # a tip chosen on the reader raised the amount
        if intent.status == "succeeded":  # captured as it was authorised (Interac)
            after = payment.moved_to(
                State.CAPTURED,
                now,
                captured_amount=intent.amount_received,
                card=card,
                receipt=receipt,
                decline=None,
                error=None,
                tip=tip,
            )
            self._ledger.commit(payment, after, "authorised and captured", done=op)
            return
        after = payment.moved_to(
            State.AUTHORIZED,
            now,
            card=card,
            receipt=receipt,
            decline=None,
            error=None,
            capture_before=intent.capture_before,
            tip=tip,
            card_support=intent.card_support,
        )
        deadline = f"; capture before {rfc3339(intent.capture_before)}" if intent.capture_before else ""
        after = self._ledger.commit(payment, after, f"authorised{deadline}", done=op)
        if payment.request.capture is CaptureMode.AUTOMATIC or payment.capture_amount is not None:
            self._queue_capture(after, payment.capture_amount or after.authorised_amount, "automatic capture")

    def _reader_did_not_confirm(self, payment: Payment, op: Operation) -> None:
        """The reader's confirm ended (or was lost) and the PaymentIntent is still unconfirmed: the
        reader, which has looked at its own action first, is asked again a bounded number of times.
        After a restart (the customer may have left) or too many asks the PaymentIntent is canceled,
        never confirmed blind: docs/payments.md says why this is the money-safe choice."""
        asks = self._reader_asks.get(payment.payment_id, 0)
        if 0 < asks < READER_CONFIRM_ASKS:
            logger.warning(
                "payment %s: the reader has not confirmed the PaymentIntent %s: asking it again",
                payment.payment_id, payment.payment_intent,
                extra={"journal": journal_fields(payment, payment)},
            )  # fmt: skip
            self._ask_reader_to_confirm(payment)  # the CONFIRM stays pending: read again after it
            return
        why = "asked twice" if asks else "the daemon restarted meanwhile"
        message = f"the reader did not confirm the card ({why}): its PaymentIntent is canceled"
        now = self._clock()
        after = payment.moved_to(State.FAILED, now, error=PaymentError(Reason.READER_UNAVAILABLE, message))
        cancel = (Kind.CANCEL, keys.operation_key(payment.payment_id, Kind.CANCEL), {"reason": "abandoned"})
        self._reader_asks.pop(payment.payment_id, None)
        self._ledger.commit(payment, after, f"failed: {message}", failed=op, new_ops=[cancel])

    def _ask_reader_to_confirm(self, payment: Payment) -> None:
        """Have the reader confirm the payment's PaymentIntent; its CONFIRM waits until that ends."""
        intent_id = intent_id_of(payment)
        assert intent_id is not None, f"payment {payment.payment_id} was read without a PaymentIntent"
        self._reader_asks[payment.payment_id] = self._reader_asks.get(payment.payment_id, 0) + 1
        self._processing[payment.payment_id] = asyncio.create_task(self._process(payment.payment_id, intent_id))

    async def _process(self, payment_id: str, intent_id: str) -> None:
        try:
            await self._reader.process(intent_id, _ReaderRelay(self._events, payment_id))
        except ReaderError as error:
            # The worker reads the PaymentIntent next: the truth decides what happens, not the reader.
            logger.warning(
                "payment %s: the reader's confirm of %s ended without an answer (%s: %s): reading the PaymentIntent",
                payment_id, intent_id, error.code, error.message,
            )  # fmt: skip
        finally:
            if self._processing.get(payment_id) is asyncio.current_task():
                del self._processing[payment_id]
            self._worker.wake()

    def _waits_for_reader(self, op: Operation) -> bool:
        """The worker's question: a reader's CONFIRM is read only once the reader's confirm has ended
        (or, for a payment the reader stored offline, once the reader has forwarded it)."""
        if op.kind == Kind.CONFIRM and op.params.get("stored_by_reader"):
            return sdk_offline.waits_for_forwarding(op, self._store.payment(op.payment_id))
        return op.kind == Kind.CONFIRM and op.payment_id in self._processing

    def _stored_by_reader(self, payment_id: str, stored: StoredOffline) -> None:
        """FORWARDS_OFFLINE: the reader stored the payment; it is queued_offline until the reader forwards it."""
        current = self._store.payment(payment_id)
        if current is None or current.state is not State.COLLECTING:
            logger.critical(
                "the reader stored payment %s offline as %s after it ended here: when forwarded, cancel its "
                "PaymentIntent from the Stripe Dashboard", payment_id, stored.offline_ref,
            )  # fmt: skip
            return
        now = self._clock()
        attempt = current.attempts + 1
        key = keys.operation_key(payment_id, Kind.CONFIRM, attempt)
        after = current.moved_to(
            State.QUEUED_OFFLINE, now, card=sdk_offline.stored_card(stored), attempts=attempt, offline=True, error=None
        )
        params = sdk_offline.stored_offline_op_params(stored, attempt)
        dropped = sdk_offline.dropped_creates(self._store, current, now)
        detail = f"Stripe unreachable: the reader stored the payment ({stored.offline_ref})"
        self._ledger.commit(current, after, detail, new_ops=[(Kind.CONFIRM, key, params)], updates=dropped)
        logger.warning(
            "payment %s (order %s) stored offline by the reader as %s", payment_id, current.order_id,
            stored.offline_ref, extra={"journal": journal_fields(after, after)},
        )  # fmt: skip

    def adopt_forwarded(self, payment_id: str, payment_intent: str) -> None:
        """The reader forwarded the payment it stored, as `payment_intent` (checked at Stripe to be this
        payment's): the worker reads its outcome next."""
        payment = self._store.payment(payment_id)
        if payment is None or payment.state is not State.QUEUED_OFFLINE or payment.payment_intent is not None:
            return
        after = replace(payment, payment_intent=payment_intent, updated_at=self._clock())
        self._ledger.commit(payment, after, f"forwarded by the reader as {payment_intent}: reading the outcome")
        self._worker.wake()

    def _queue_capture(self, payment: Payment, amount: int, why: str) -> Payment:
        after = payment.moved_to(State.CAPTURING, self._clock(), capture_amount=amount)
        key = keys.operation_key(payment.payment_id, Kind.CAPTURE)
        return self._ledger.commit(
            payment,
            after,
            f"{why}: capture {amount} queued",
            new_ops=[(Kind.CAPTURE, key, {"amount": amount})],
            sent_at_once=True,
        )

    def _cancel(self, payment: Payment, reason: str, detail: str) -> Payment:
        """Cancel here at once; the PaymentIntent's cancel follows through the outbox when one may exist."""
        now = self._clock()
        # The POS backend's PaymentIntent exists already; ours may, once its create was sent.
        may_exist = payment.payment_intent is not None or payment.request.payment_intent_client_secret is not None
        dropped = []
        for op in self._store.operations_of(payment.payment_id):
            if op.status != OpStatus.PENDING:
                continue
            if self._worker.may_have_sent(op):
                may_exist = True  # it may have reached Stripe: let it finish, then cancel what it made
            else:
                dropped.append(op.but(status=OpStatus.DROPPED, updated_at=now))
        key = keys.operation_key(payment.payment_id, Kind.CANCEL)
        new_ops = [(Kind.CANCEL, key, {"reason": reason})] if may_exist else []
        self._collected.pop(payment.payment_id, None)
        after = payment.moved_to(State.CANCELED, now)
        after = self._ledger.commit(payment, after, detail, new_ops=new_ops, updates=dropped)
        self._increments.dropped(payment.payment_id, dropped, "the payment was canceled")
        return self._store.payment(payment.payment_id) or after

    def _go_offline(self, payment: Payment) -> None:
        problem = self._offline_problem(payment.request)
        if problem:
            error = PaymentError(Reason.OFFLINE_LIMIT, problem)
            if payment.error != error:
                self._ledger.commit(payment, replace(payment, error=error, updated_at=self._clock()), problem)
            return
        after = payment.moved_to(State.QUEUED_OFFLINE, self._clock(), offline=True)
        self._ledger.commit(payment, after, "Stripe unreachable: authorisation stored for forwarding")
        logger.warning(
            "payment %s (order %s) stored offline for forwarding", payment.payment_id, payment.order_id,
            extra={"journal": journal_fields(payment, payment)},
        )  # fmt: skip

    def _fail(self, payment: Payment, op: Operation, reason: Reason, message: str) -> None:
        if payment.state in TERMINAL:
            self._ledger.finish(op, OpStatus.FAILED, message)
            return
        now = self._clock()
        after = payment.moved_to(State.FAILED, now, error=PaymentError(reason, message))
        # What was queued behind the failed operation has nothing left to act on (a cancel still does).
        behind = [
            other.but(status=OpStatus.DROPPED, updated_at=now)
            for other in self._store.operations_of(payment.payment_id)
            if other.status == OpStatus.PENDING and other.op_id != op.op_id and other.kind != Kind.CANCEL
        ]
        self._ledger.commit(payment, after, f"failed: {message}", failed=op, updates=behind)
        self._increments.dropped(payment.payment_id, behind, f"the payment failed ({message})")
        self._stop_collection(payment.payment_id)

    # -- the customer's wait for Stripe --------------------------------------------------------

    def _bound_wait(self, payment: Payment) -> None:
        """Give the customer at most `customer_wait_s` of waiting for Stripe in this state."""
        previous = self._customer_waits.pop(payment.payment_id, None)
        if previous is not None:
            previous.cancel()
        loop = asyncio.get_running_loop()
        self._customer_waits[payment.payment_id] = loop.call_later(
            self._settings.customer_wait_s, self._customer_waited, payment.payment_id, payment.state, payment.attempts
        )

    def _customer_waited(self, payment_id: str, state: State, attempts: int) -> None:
        """The customer has waited long enough: unless Stripe answered meanwhile, the payment fails
        (STRIPE_UNAVAILABLE) and frees the reader; docs/payments.md gives the money argument."""
        self._customer_waits.pop(payment_id, None)
        payment = self._store.payment(payment_id)
        if payment is None or payment.state is not state or payment.attempts != attempts:
            return  # Stripe answered (or the POS acted) in time; a later wait has its own bound
        if state is State.PROCESSING and self._offline_allowed(payment):
            return  # it goes offline as soon as Stripe counts as unreachable: the customer is served
        try:
            self._give_up_on_stripe(payment)
        except Exception:  # a timer's bug must not take the loop down; the payment then waits on
            logger.exception("payment %s: could not end its wait for Stripe", payment_id)

    def _give_up_on_stripe(self, payment: Payment) -> None:
        now = self._clock()
        waited = self._settings.customer_wait_s
        sent: list[Operation] = []  # may have reached Stripe: carried on, never under a new key
        dropped: list[Operation] = []
        for op in self._store.operations_of(payment.payment_id):
            if op.status != OpStatus.PENDING:
                continue
            reader_confirming = op.kind == Kind.CONFIRM and bool(op.params.get("by_reader"))
            if self._worker.may_have_sent(op) or reader_confirming:
                sent.append(op)
            else:
                dropped.append(op.but(status=OpStatus.DROPPED, updated_at=now))
        confirm_sent = any(op.kind == Kind.CONFIRM for op in sent)
        if confirm_sent and _may_capture_at_authorisation(payment):
            # A cancel cannot undo a capture: telling "failed" could hide money taken. It waits on.
            logger.warning(
                "payment %s (order %s) has waited %g s for Stripe's answer to an authorisation that may "
                "capture at once (Interac): it is not failed but waits for that answer",
                payment.payment_id, payment.order_id, waited,
                extra={"journal": journal_fields(payment, payment)},
            )  # fmt: skip
            return
        # What was sent is carried on under its own key, then its PaymentIntent (if any) is canceled:
        # an abandoned operation learns the truth, and is never sent under a new key (worker.py).
        carried = [
            op.but(
                params={**op.params, ABANDONED: True},
                needs_truth=op.needs_truth or op.kind == Kind.CONFIRM,
                updated_at=now,
            )
            for op in sent
        ]
        may_exist = bool(sent) or intent_id_of(payment) is not None
        cancel_key = keys.operation_key(payment.payment_id, Kind.CANCEL)
        new_ops = [(Kind.CANCEL, cancel_key, {"reason": "abandoned"})] if may_exist else []
        message = f"Stripe did not answer within {waited:g} s: card payments are unavailable"
        after = payment.moved_to(State.FAILED, now, error=PaymentError(Reason.STRIPE_UNAVAILABLE, message))
        self._collected.pop(payment.payment_id, None)
        self._ledger.commit(payment, after, f"failed: {message}", new_ops=new_ops, updates=[*carried, *dropped])
        self._stop_collection(payment.payment_id)

    def _settle_abandoned_confirm(self, payment: Payment, op: Operation, outcome: Outcome) -> None:
        """The answer to a confirm whose payment failed while waiting for it: the cancel queued
        behind it releases an authorisation; one captured at once can only be refunded."""
        intent = outcome.intent if isinstance(outcome, Succeeded | WrongState | Declined) else None
        status = intent.status if intent is not None else None
        if status == "succeeded":
            logger.critical(
                "payment %s (order %s) failed while waiting for Stripe, but its PaymentIntent %s was "
                "captured meanwhile: refund it from the Stripe Dashboard",
                payment.payment_id, payment.order_id, intent.id if intent else None,
                extra={"journal": journal_fields(payment, payment)},
            )  # fmt: skip
        authorised = status in ("requires_capture", "succeeded")
        logger.info(
            "payment %s: the confirm it stopped waiting for ended (%s); its PaymentIntent's cancel follows",
            payment.payment_id, status or _describe(outcome),
            extra={"journal": journal_fields(payment, payment)},
        )  # fmt: skip
        if authorised:
            self._ledger.finish(op, OpStatus.DONE, None)
        else:
            self._ledger.finish(op, OpStatus.FAILED, _describe(outcome))

    # -- the reader ---------------------------------------------------------------------------

    def _begin_collection(self, payment: Payment) -> None:
        self._collections[payment.payment_id] = asyncio.create_task(self._collect(payment.payment_id))

    def _stop_collection(self, payment_id: str) -> None:
        task = self._collections.pop(payment_id, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _collect(self, payment_id: str) -> None:
        payment = self._store.payment(payment_id)
        assert payment is not None
        relay = _ReaderRelay(self._events, payment_id)
        try:
            method = await self._reader.collect(
                payment.request.amount,
                payment.request.currency,
                relay,
                payment_intent=intent_id_of(payment),
                tipping=payment.request.tipping,
                metadata=validation.reserved_metadata(payment, self._settings.terminal_id),
            )
        except StoredOffline as stored:
            self._stored_by_reader(payment_id, stored)
            return
        except ReaderError as error:
            current = self._store.payment(payment_id)
            if current is not None and current.state is State.COLLECTING:
                failed = replace(
                    current, error=PaymentError(Reason.READER_UNAVAILABLE, error.message), updated_at=self._clock()
                )
                self._ledger.commit(current, failed, f"reader: {error.code}")
            return
        finally:
            if self._collections.get(payment_id) is asyncio.current_task():
                del self._collections[payment_id]
        current = self._store.payment(payment_id)
        if current is None or current.state is not State.COLLECTING:
            return  # canceled or failed while the card was being read
        # A one-step smart reader tells nothing of the card: it comes from the PaymentIntent later.
        card = (
            Card(method.brand, method.last4, method.read_method, method.wallet, method.network)
            if method.last4
            else current.card
        )
        read = replace(
            current, card=card, attempts=current.attempts + 1, error=None, decline=None, updated_at=self._clock()
        )
        if current.request.confirm:
            self._collected[payment_id] = method
            self._ledger.commit(
                current, read.moved_to(State.AWAITING_CONFIRMATION, self._clock()), "card read: awaiting confirmation"
            )
        else:
            self._authorise(current, method, read)

    def reader_holder(self) -> str | None:
        """The payment holding the reader (creating, collecting or awaiting confirmation), if any."""
        holders = self._store.payments(states=HOLDS_READER)
        return holders[0].payment_id if holders else None

    def _require_free_reader(self, but: str | None = None) -> None:
        refunding = self._refunds.reader_holder()
        if refunding is not None:
            raise RequestRefused(Reason.BUSY, f"the reader is taking refund {refunding}", retryable=True)
        for holder in self._store.payments(states=HOLDS_READER):
            if holder.payment_id != but:
                raise RequestRefused(
                    Reason.BUSY,
                    f"the reader is held by payment {holder.payment_id} (order {holder.order_id})",
                    retryable=True,
                )

    def _require_reader(self) -> None:
        """A reader that is gone (unplugged, out of range) is said so before anything is asked of Stripe."""
        problem = self._reader.unavailable()
        if problem is not None:
            raise RequestRefused(Reason.READER_UNAVAILABLE, problem, retryable=True)

    # -- offline ------------------------------------------------------------------------------

    @property
    def _reader_stores_offline(self) -> bool:
        """Whether the host may keep what the reader read and authorise it later (not with a reader
        that goes to Stripe itself)."""
        return Capability.STORES_OFFLINE in self._reader.capabilities

    @property
    def _reader_forwards_offline(self) -> bool:
        """Whether the reader stores payments itself while Stripe is unreachable and forwards them."""
        return Capability.FORWARDS_OFFLINE in self._reader.capabilities

    def _offline_allowed(self, payment: Payment) -> bool:
        return (
            payment.request.offline is OfflineMode.PREFER_ONLINE
            and self._reader_stores_offline
            and self._offline_problem(payment.request) is None
        )

    def _check_offline_limits(self, request: PaymentRequest) -> None:
        problem = self._offline_problem(request) if request.offline is OfflineMode.PREFER_ONLINE else None
        if problem:
            raise RequestRefused(Reason.OFFLINE_LIMIT, f"Stripe cannot be reached and {problem}", retryable=True)

    def _offline_problem(self, request: PaymentRequest) -> str | None:
        stored = self._store.payments(states=(State.QUEUED_OFFLINE,), limit=10_000)
        return offline_problem(self._settings.offline, stored, request, self._clock())

    def _metadata(self, payment: Payment) -> dict[str, str]:
        return {**payment.request.metadata, **validation.reserved_metadata(payment, self._settings.terminal_id)}


class _ReaderRelay:
    """Passes the reader's prompts on as events tagged with the payment they belong to."""

    def __init__(self, events: EventHub, payment_id: str) -> None:
        self._events = events
        self._payment_id = payment_id

    def input_options(self, options: list[str]) -> None:
        self._events.publish(
            Event(Topic.READER, "reader.input_options", {"payment_id": self._payment_id, "options": options})
        )

    def display_message(self, message: str) -> None:
        text = DISPLAY_MESSAGES.get(message, message.replace("_", " ").capitalize())
        data = {"payment_id": self._payment_id, "message": message, "text": text}
        self._events.publish(Event(Topic.READER, "reader.display_message", data))

    def card_event(self, event: str) -> None:
        self._events.publish(Event(Topic.READER, "reader.card", {"payment_id": self._payment_id, "event": event}))


def _new_payment_id() -> str:
    alphabet = string.ascii_letters + string.digits
    return "pay_" + "".join(secrets.choice(alphabet) for _ in range(20))


def _merge_cards(charged: Card | None, read: Card | None) -> Card | None:
    """The charge's card (Stripe's word), completed with what the reader read where the charge is silent."""
    if charged is None or read is None or (charged.brand, charged.last4) != (read.brand, read.last4):
        return charged or read
    return replace(charged, wallet=charged.wallet or read.wallet, network=charged.network or read.network)


def _may_capture_at_authorisation(payment: Payment) -> bool:
    """Whether the card read may be captured as it is authorised (Interac, or a card not known yet)."""
    card = payment.card
    return card is None or "interac" in (card.brand.lower(), (card.network or "").lower())


def _cancel_reason(intent: IntentView) -> Reason:
    if intent.cancellation_reason in ("automatic", "expired"):
        return Reason.AUTHORIZATION_EXPIRED
    return Reason.PAYMENT_INTENT_CANCELED


def _describe(outcome: Outcome) -> str:
    return str(getattr(outcome, "message", None) or type(outcome).__name__)
