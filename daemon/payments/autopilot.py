"""The autopilot: payments their POS left `authorized`, settled by the daemon before Stripe lets them lapse.

An unattended kiosk whose POS crashed leaves its authorisations waiting; Stripe cancels each at its
`capture_before`. From `[reconcile] lead_s` before that deadline (and past it), the autopilot first
reads the PaymentIntent at Stripe (paced with the daemon's other requests, at most once per payment
every `[reconcile] reread_s`):

- Stripe canceled it (the authorisation expired, or it was canceled elsewhere): the payment fails now
  (`AUTHORIZATION_EXPIRED`, or `PAYMENT_INTENT_CANCELED`), said loudly, without waiting for a
  capture request that could only fail.
- Stripe still holds it: `[reconcile] unattended` decides (`apply`, the one definition of the policy,
  which the daily reconciliation uses too): `capture` and `cancel` go through the payment service,
  exactly as the POS's payment.capture and payment.cancel would (committed to the outbox before
  anything is sent, under the payment's one capture or cancel key: a restart never repeats them);
  `report` only tells. Each is a journal entry with its MESSAGE_ID and a `payment.unattended` event.

A PaymentIntent Stripe could not be asked about is still settled by the policy: the outbox's
capture or cancel learns the truth when Stripe answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from readerhost.daemon.journal import MessageId

from .events import Event, EventHub, Topic
from .ledger import journal_fields
from .model import Payment, RequestRefused, State, Unattended, rfc3339
from .outcomes import IntentView, Outcome, Succeeded
from .service import PaymentService
from .store import Store

logger = logging.getLogger(__name__)

_MESSAGE_IDS = {
    Unattended.CAPTURE: MessageId.UNATTENDED_CAPTURE,
    Unattended.CANCEL: MessageId.UNATTENDED_CANCEL,
    Unattended.REPORT: MessageId.UNATTENDED_REPORT,
}


class Trigger(enum.StrEnum):
    """What made the autopilot look at a payment."""

    DEADLINE = "deadline"  # [reconcile] lead_s before its capture_before
    DAILY = "daily"  # the daily reconciliation (readerhostctl reconcile --unattended)


@dataclass(frozen=True)
class AutopilotSettings:
    policy: Unattended = Unattended.REPORT
    lead_s: float = 3_600.0  # acts this long before capture_before: time for the outbox to reach Stripe
    reread_s: float = 900.0  # near its deadline, a payment's PaymentIntent is read at most this often


@dataclass(frozen=True)
class Applied:
    """What the policy did with one payment: `done` is False when it could not (the reason says why)."""

    policy: Unattended
    done: bool
    reason: str


class Autopilot:
    def __init__(
        self,
        store: Store,
        service: PaymentService,
        events: EventHub,
        read_intent: Callable[[str], Outcome],
        stripe_turn: Callable[[], Awaitable[None]],
        settings: AutopilotSettings = AutopilotSettings(),
        clock: Callable[[], float] = time.time,
        recheck_s: float = 60.0,
    ) -> None:
        self._store = store
        self._service = service
        self._events = events
        self._read_intent = read_intent  # blocking: called in a thread
        self._stripe_turn = stripe_turn  # the daemon's one pace for its own requests to Stripe
        self.settings = settings
        self._clock = clock
        self._recheck_s = recheck_s  # the wall clock of a Pi without a real-time clock may jump
        self._read_at: dict[str, float] = {}  # payment -> monotonic time its PaymentIntent was last read
        self._reported: set[str] = set()  # payments reported (policy `report`) in this run of the daemon
        self._left_alone: set[str] = set()  # payments Stripe holds otherwise (captured elsewhere), told once
        self._wake = asyncio.Event()
        events.subscribe(self._on_event)

    def _on_event(self, event: Event) -> None:
        if event.type == "payment.state" and event.data.get("state") == State.AUTHORIZED:
            self._wake.set()  # a new deadline

    async def run(self) -> None:
        while True:
            self._wake.clear()
            delay = await self.tend()
            # asyncio.timeout, not wait_for: Python 3.11's wait_for swallows a cancel that arrives as
            # the wake-up does, and the daemon's stop would then wait for this loop for ever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(min(delay, self._recheck_s), 0.0)):
                    await self._wake.wait()

    async def tend(self) -> float:
        """Look at every authorised payment near or past its deadline; return the seconds until the
        next one is due."""
        next_in = float("inf")
        authorised = self._store.payments(states=(State.AUTHORIZED,), limit=10_000)
        waiting = {payment.payment_id for payment in authorised}
        self._reported &= waiting  # what this run remembers, only of payments still waiting
        self._left_alone &= waiting
        self._read_at = {payment_id: at for payment_id, at in self._read_at.items() if payment_id in waiting}
        for payment in authorised:
            deadline = payment.capture_before
            if deadline is None:
                continue
            due_in = deadline - self.settings.lead_s - self._clock()
            if due_in > 0:
                next_in = min(next_in, due_in)
                continue
            read_in = self._read_due_in(payment.payment_id)
            if read_in > 0:
                next_in = min(next_in, read_in)
                continue
            try:
                await self._look_at(payment)
            except Exception:  # one payment's trouble must not stop the others' deadlines
                logger.exception("autopilot: payment %s could not be looked at", payment.payment_id)
            next_in = min(next_in, self.settings.reread_s)
        return next_in

    def _read_due_in(self, payment_id: str) -> float:
        read_at = self._read_at.get(payment_id)
        return 0.0 if read_at is None else read_at + self.settings.reread_s - time.monotonic()

    async def _look_at(self, payment: Payment) -> None:
        """The truth first: what Stripe holds now decides whether the policy still has anything to do."""
        assert payment.payment_intent is not None, f"authorised payment {payment.payment_id} without a PaymentIntent"
        self._read_at[payment.payment_id] = time.monotonic()
        await self._stripe_turn()
        read = await asyncio.to_thread(self._read_intent, payment.payment_intent)
        intent = read.intent if isinstance(read, Succeeded) else None
        if intent is not None and intent.status == "canceled":
            self._ended_at_stripe(payment.payment_id, intent)
            return
        if intent is not None and intent.status != "requires_capture":
            if payment.payment_id in self._left_alone:
                return
            self._left_alone.add(payment.payment_id)
            logger.warning(
                "autopilot: payment %s is authorized here but its PaymentIntent %s is %s at Stripe: left alone",
                payment.payment_id, intent.id, intent.status,
                extra={"journal": journal_fields(payment, payment)},
            )  # fmt: skip
            return
        current = self._store.payment(payment.payment_id)  # the POS may have acted while Stripe was asked
        if current is None or current.state is not State.AUTHORIZED:
            return
        applied = await self.apply(current, Trigger.DEADLINE)
        if not applied.done:
            logger.info("autopilot: payment %s left as it is: %s", payment.payment_id, applied.reason)

    def _ended_at_stripe(self, payment_id: str, intent: IntentView) -> None:
        failed = self._service.authorisation_ended(payment_id, intent)
        if failed is None or failed.error is None:
            return
        self._read_at.pop(payment_id, None)
        deadline = f" (its deadline was {rfc3339(failed.capture_before)})" if failed.capture_before else ""
        fields = {**journal_fields(failed, failed), "MESSAGE_ID": MessageId.AUTHORIZATION_EXPIRED}
        fields["REASON"] = failed.error.reason.value
        logger.error(
            "payment %s (order %s) was never captured and Stripe canceled its authorisation%s: the money "
            "was not taken (%s)",
            failed.payment_id, failed.order_id, deadline, failed.error.reason.value,
            extra={"journal": fields},
        )  # fmt: skip

    async def apply(self, payment: Payment, trigger: Trigger) -> Applied:
        """The policy for a payment its POS left `authorized`: capture it, cancel it, or report it."""
        policy = self.settings.policy
        why = f"[reconcile] unattended = {policy.value} ({trigger.value})"
        if policy is Unattended.REPORT:
            if trigger is Trigger.DEADLINE and payment.payment_id in self._reported:
                return Applied(policy, True, "reported already")
            self._reported.add(payment.payment_id)
        else:
            try:
                if policy is Unattended.CAPTURE:
                    payment = await self._service.capture(payment.payment_id, why=why)
                else:
                    payment = await self._service.cancel(payment.payment_id, "abandoned", why=why)
            except RequestRefused as refused:  # the POS acted first (INVALID_STATE), or the store failed
                return Applied(policy, False, refused.message)
        self._tell(payment, policy, trigger)
        done = {Unattended.CAPTURE: "capture queued", Unattended.CANCEL: "cancel queued"}
        return Applied(policy, True, done.get(policy, "reported: nothing done"))

    def _tell(self, payment: Payment, policy: Unattended, trigger: Trigger) -> None:
        deadline = payment.capture_before
        due = rfc3339(deadline) if deadline is not None else "an unknown time"
        fields: dict[str, str | int] = {
            **journal_fields(payment, payment),
            "MESSAGE_ID": _MESSAGE_IDS[policy],
            "POLICY": policy.value,
            "TRIGGER": trigger.value,
        }
        if deadline is not None:
            fields["CAPTURE_BEFORE_UNIX"] = deadline
        money = f"{payment.authorised_amount} {payment.request.currency}"
        if policy is Unattended.REPORT:
            logger.warning(
                "payment %s (order %s) was left authorised by its POS (%s): nothing done ([reconcile] "
                "unattended = report); Stripe cancels it at %s unless it is captured",
                payment.payment_id, payment.order_id, money, due, extra={"journal": fields},
            )  # fmt: skip
        else:
            verb = "capturing" if policy is Unattended.CAPTURE else "canceling"
            logger.warning(
                "payment %s (order %s) was left authorised by its POS: %s it (%s) by [reconcile] unattended = %s "
                "before its deadline %s",
                payment.payment_id, payment.order_id, verb, money, policy.value, due, extra={"journal": fields},
            )  # fmt: skip
        data = {
            "payment_id": payment.payment_id,
            "order_id": payment.order_id,
            "payment_intent": payment.payment_intent,
            "policy": policy.value,
            "trigger": trigger.value,
            "amount": payment.authorised_amount,
            "currency": payment.request.currency,
            "capture_before": None if deadline is None else rfc3339(deadline),
            "state": payment.state.value,
        }
        self._events.publish(Event(Topic.PAYMENT, "payment.unattended", data))
