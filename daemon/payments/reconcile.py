"""End-of-day reconciliation: every authorisation this terminal left uncaptured is captured or canceled.

Stripe's rule (https://docs.stripe.com/terminal/payments/collect-card-payment, "Capture the
PaymentIntent"; docs/payments.md, Reconciliation): a PaymentIntent still `requires_capture` is either a
lost capture (its order completed and was not paid otherwise: capture it) or an abandoned
checkout (cancel it). The list endpoint is read, filtered to this terminal's metadata (search
lags and must not be trusted for this). A dry run — the default — only reports; applying
queues the captures and cancels in the outbox like any other mutation.

An unattended run (the daily timer's) decides what its POS left `authorized`, with no completed
order to say otherwise, by `[reconcile] unattended` (the autopilot's policy, autopilot.py) instead
of cancelling it as abandoned.

A run lists every PaymentIntent of the account in its window, page by page: its cost at Stripe grows
with the account (the whole fleet's, when kiosks share one). So runs are one at a time, and a few in a
row then one every 5 minutes (RUNS_IN_A_ROW, ONE_MORE_EVERY_S); a run asked beyond that is refused, `BUSY` and
retryable, before anything is sent: a local client calling in a loop cannot make the daemon hammer
Stripe, spend the account's rate limit, or fall behind its payments.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from readerhost.daemon.journal import MessageId

from .autopilot import Autopilot, Trigger
from .model import SUCCESSFUL, Payment, Reason, RequestRefused, State, Unattended, rfc3339
from .operations import Gateway
from .outcomes import IntentView, Succeeded
from .pacing import Allowance
from .service import PaymentService
from .store import Store

logger = logging.getLogger(__name__)

DEFAULT_WINDOW_S = 7 * 86400  # longer than any card-present authorisation lives
DEADLINE_WARNING_S = 24 * 3600
RUNS_IN_A_ROW = 5  # a dry run, its application, and a few more, as a person or a POS checks
ONE_MORE_EVERY_S = 300.0  # then: a run of a busy account's week costs tens of pages; the daily timer needs one a day
IN_PROGRESS = (
    State.CREATING, State.COLLECTING, State.AWAITING_CONFIRMATION, State.PROCESSING, State.QUEUED_OFFLINE,
)  # fmt: skip


@dataclass(frozen=True)
class Finding:
    payment_intent: str
    payment_id: str | None
    order_id: str | None
    amount: int
    currency: str
    capture_before: int | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Report:
    dry_run: bool
    checked: int = 0
    to_capture: list[Finding] = field(default_factory=list)
    to_cancel: list[Finding] = field(default_factory=list)
    done: list[Finding] = field(default_factory=list)
    skipped: list[Finding] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unattended: Unattended | None = None  # the policy an unattended run applied
    reported: list[Finding] = field(default_factory=list)  # left authorised, only told (policy `report`)

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "unattended": self.unattended.value if self.unattended else None,
            "reported": [f.to_json() for f in self.reported],
            "checked": self.checked,
            "to_capture": [f.to_json() for f in self.to_capture],
            "to_cancel": [f.to_json() for f in self.to_cancel],
            "done": [f.to_json() for f in self.done],
            "skipped": [f.to_json() for f in self.skipped],
            "warnings": list(self.warnings),
        }


class Reconciler:
    def __init__(
        self,
        store: Store,
        gateway: Gateway,
        service: PaymentService,
        terminal_id: str,
        *,
        grace_s: float = 600.0,
        clock: Callable[[], float] = time.time,
        autopilot: Autopilot | None = None,
        allowance: Allowance | None = None,
    ) -> None:
        self._store = store
        self._gateway = gateway
        self._service = service
        self._terminal_id = terminal_id
        self.grace_s = grace_s  # an authorisation this fresh may still be captured by its POS
        self._clock = clock
        self._autopilot = autopilot
        self._allowance = allowance or Allowance(RUNS_IN_A_ROW, ONE_MORE_EVERY_S)
        self._running = False

    async def run(
        self,
        *,
        completed_order_ids: Iterable[str] = (),
        since: float | None = None,
        until: float | None = None,
        dry_run: bool = True,
        unattended: bool = False,
    ) -> Report:
        if unattended and self._autopilot is None:
            raise RequestRefused(Reason.UNSUPPORTED, "this daemon has no unattended policy")
        if self._running:
            message = "a reconciliation is running: ask again once it has ended"
            raise RequestRefused(Reason.BUSY, message, retryable=True)
        wait_s = self._allowance.take()
        if wait_s > 0:
            message = (
                f"too many reconciliations: {self._allowance.burst} in a row, then one every "
                f"{self._allowance.every_s:.0f} s (each lists the account's PaymentIntents at Stripe); "
                f"the next in {math.ceil(wait_s)} s"
            )
            raise RequestRefused(Reason.BUSY, message, retryable=True)
        self._running = True
        try:
            return await self._run(completed_order_ids, since, until, dry_run, unattended)
        finally:
            self._running = False

    async def _run(
        self,
        completed_order_ids: Iterable[str],
        since: float | None,
        until: float | None,
        dry_run: bool,
        unattended: bool,
    ) -> Report:
        now = self._clock()
        autopilot = self._autopilot if unattended else None
        start = int(since if since is not None else now - DEFAULT_WINDOW_S)
        end = int(until if until is not None else now) + 1
        # The window may hold thousands of PaymentIntents (a POS may ask for months): list them without
        # their charges (a third of the answer, and of the objects built from it), and keep only what
        # is judged (ours still authorised) and the orders ours paid, never the whole list.
        authorised: list[IntentView] = []
        paid_orders: set[str | None] = set()
        checked = 0

        def note(intent: IntentView) -> None:
            nonlocal checked
            if intent.metadata.get("terminal_id") != self._terminal_id:
                return
            checked += 1
            if intent.status == "requires_capture":
                authorised.append(intent)
            elif intent.status == "succeeded":
                paid_orders.add(intent.metadata.get("order_id"))

        failed = await asyncio.to_thread(
            self._gateway.each_intent, created_gte=start, created_lt=end, visit=note, charges=False
        )
        if failed is not None:
            message = f"cannot list PaymentIntents: {failed.message}"
            raise RequestRefused(Reason.STRIPE_UNAVAILABLE, message, retryable=True)
        authorised = await self._with_charges(authorised, paid_orders)
        report = Report(dry_run=dry_run, checked=checked, unattended=autopilot.settings.policy if autopilot else None)
        completed = set(completed_order_ids)
        for intent in authorised:
            payment = self._payment_of(intent)
            finding = _finding(intent, payment)
            if intent.capture_before is not None and intent.capture_before - now < DEADLINE_WARNING_S:
                warning = (
                    f"{intent.id} (order {finding.order_id}) must be captured before {rfc3339(intent.capture_before)}"
                )
                report.warnings.append(warning)
                fields = {"MESSAGE_ID": MessageId.CAPTURE_DEADLINE_NEAR, "PAYMENT_INTENT": intent.id,
                          "ORDER_ID": finding.order_id, "PAYMENT_ID": finding.payment_id}  # fmt: skip
                logger.warning("capture deadline near: %s", warning, extra={"journal": fields})
            if payment is not None and payment.state in IN_PROGRESS:
                report.skipped.append(_because(finding, f"payment is {payment.state}: still in progress"))
                continue
            if payment is not None and payment.state is State.AUTHORIZED and now - payment.updated_at < self.grace_s:
                report.skipped.append(_because(finding, "authorised minutes ago: its POS may still capture it"))
                continue
            asked = payment is not None and payment.capture_amount is not None
            order_done = asked or finding.order_id in completed
            paid_otherwise = self._paid_otherwise(finding, paid_orders)
            if order_done and paid_otherwise is None:
                amount = payment.capture_amount if payment and payment.capture_amount else intent.amount_capturable
                report.to_capture.append(_because(finding, f"order completed: capture {amount}"))
                if not dry_run:
                    await self._capture(report, finding, payment, amount)
            elif (autopilot is not None and not order_done and paid_otherwise is None and payment is not None
                  and payment.state is State.AUTHORIZED):  # fmt: skip
                await self._unattended(report, finding, payment, autopilot, dry_run)
            else:
                why = paid_otherwise or "no completed order: abandoned"
                report.to_cancel.append(_because(finding, why))
                if not dry_run:
                    await self._cancel(report, finding, payment)
        return report

    async def _with_charges(self, listed: list[IntentView], paid_orders: set[str | None]) -> list[IntentView]:
        """The listed authorisations read again with their charge (the capture deadline), all before any
        is judged; one captured meanwhile counts as its order's payment. A few a day, where expanding
        every charge of the window would be thousands."""
        read: list[IntentView] = []
        for intent in listed:
            outcome = await asyncio.to_thread(self._gateway.retrieve_intent, intent.id)
            if not isinstance(outcome, Succeeded):
                message = f"cannot read {intent.id} again: {type(outcome).__name__}"
                raise RequestRefused(Reason.STRIPE_UNAVAILABLE, message, retryable=True)
            if outcome.intent.status == "requires_capture":
                read.append(outcome.intent)
            elif outcome.intent.status == "succeeded":
                paid_orders.add(outcome.intent.metadata.get("order_id"))
        return read

    def _paid_otherwise(self, finding: Finding, paid_orders: set[str | None]) -> str | None:
        """Why the finding's order is paid without this authorisation, if it is: closed as paid another
        way (payment.close), or another attempt of the order succeeded (attempts.py)."""
        if finding.order_id is None:
            return None
        closure = self._store.order_closure(finding.order_id)
        if closure is not None:
            return f"order closed as paid {closure.paid_by} (payment.close)"
        if finding.order_id in paid_orders:
            return "order paid by another payment"
        for other in self._store.order_payments(finding.order_id):
            if other.payment_id != finding.payment_id and other.state in SUCCESSFUL:
                return f"order paid by its attempt {other.order_attempt} ({other.payment_id}, {other.state})"
        return None

    async def _unattended(
        self, report: Report, finding: Finding, payment: Payment, autopilot: Autopilot, dry_run: bool
    ) -> None:
        """A payment its POS left authorised, decided by the policy (the autopilot's, applied as it applies it)."""
        policy = autopilot.settings.policy
        left = _because(finding, f"left authorised by its POS: [reconcile] unattended = {policy.value}")
        {Unattended.CAPTURE: report.to_capture, Unattended.CANCEL: report.to_cancel}.get(
            policy, report.reported
        ).append(left)
        if dry_run:
            return
        applied = await autopilot.apply(payment, Trigger.DAILY)
        if policy is not Unattended.REPORT:
            (report.done if applied.done else report.skipped).append(_because(finding, applied.reason))

    def _payment_of(self, intent: IntentView) -> Payment | None:
        payment_id = intent.metadata.get("payment_id")
        payment = self._store.payment(payment_id) if payment_id else None
        return payment if payment is not None and payment.payment_intent in (None, intent.id) else None

    async def _capture(self, report: Report, finding: Finding, payment: Payment | None, amount: int) -> None:
        if payment is None:
            report.skipped.append(_because(finding, "not in this daemon's store: capture it from the Dashboard"))
            return
        if payment.state is State.CAPTURING:
            report.done.append(_because(finding, "capture already queued"))
            return
        try:
            await self._service.capture(payment.payment_id, amount)
        except RequestRefused as refused:
            report.skipped.append(_because(finding, refused.message))
            return
        report.done.append(_because(finding, f"capture of {amount} queued"))

    async def _cancel(self, report: Report, finding: Finding, payment: Payment | None) -> None:
        if payment is None:
            report.skipped.append(_because(finding, "not in this daemon's store: cancel it from the Dashboard"))
            return
        try:
            await self._service.cancel_at_stripe(payment.payment_id, "abandoned")
        except RequestRefused as refused:
            report.skipped.append(_because(finding, refused.message))
            return
        report.done.append(_because(finding, "cancel queued (abandoned)"))


def _finding(intent: IntentView, payment: Payment | None) -> Finding:
    return Finding(
        payment_intent=intent.id,
        payment_id=payment.payment_id if payment else intent.metadata.get("payment_id"),
        order_id=intent.metadata.get("order_id"),
        amount=intent.amount_capturable,
        currency=intent.currency,
        capture_before=intent.capture_before,
        reason="",
    )


def _because(finding: Finding, reason: str) -> Finding:
    return Finding(**{**asdict(finding), "reason": reason})
