"""Capture deadlines announced ahead of time.

An authorisation Stripe holds for a payment lapses at its `capture_before`: the money can then no
longer be taken. At each configured lead before it ([payments] deadline_leads_s, 24 h and 2 h by
default) the watch publishes `payment.deadline` and writes a journal entry (CAPTURE_DEADLINE_NEAR)
for each payment still `authorized` or `capturing`. Each lead is announced once per run of the
daemon; after a restart, the nearest lead already passed is announced again, once (the POS may have
missed it while the daemon was down). A deadline already past is not announced here: the payment's
capture, or the autopilot (autopilot.py), finds out what Stripe did.

The watch reads the deadlines from the store and sleeps until the next one is due, waking on every
payment that becomes authorised, and at least every `recheck_s` (the wall clock of a Pi without a
real-time clock may jump).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from readerhost.daemon.journal import MessageId

from .events import Event, EventHub, Topic
from .model import State, rfc3339
from .store import Store

logger = logging.getLogger(__name__)

# The states whose authorisation Stripe still holds, waiting for a capture to reach it.
HAS_DEADLINE = (State.AUTHORIZED, State.CAPTURING)


@dataclass(frozen=True)
class Deadline:
    """The nearest capture deadline among the payments that have one (status and the technician's screen)."""

    payment_id: str
    order_id: str
    capture_before: int

    def to_json(self) -> dict[str, str]:
        moment = rfc3339(self.capture_before)
        return {"payment_id": self.payment_id, "order_id": self.order_id, "capture_before": moment}


def nearest_deadline(store: Store) -> Deadline | None:
    """The payment whose authorisation lapses first, among those still waiting for a capture."""
    dated = [p for p in store.payments(states=HAS_DEADLINE, limit=10_000) if p.capture_before is not None]
    if not dated:
        return None
    first = min(dated, key=lambda p: (p.capture_before or 0, p.payment_id))
    assert first.capture_before is not None
    return Deadline(first.payment_id, first.order_id, first.capture_before)


class DeadlineWatch:
    def __init__(
        self,
        store: Store,
        events: EventHub,
        leads_s: Sequence[float],
        clock: Callable[[], float] = time.time,
        recheck_s: float = 60.0,
    ) -> None:
        self._store = store
        self._events = events
        self._leads = tuple(sorted(leads_s, reverse=True))
        self._clock = clock
        self._recheck_s = recheck_s
        self._announced: set[tuple[str, float]] = set()  # (payment, lead) told in this run
        self._wake = asyncio.Event()
        events.subscribe(self._on_event)

    def _on_event(self, event: Event) -> None:
        if event.type == "payment.state" and event.data.get("state") == State.AUTHORIZED:
            self._wake.set()  # a new deadline

    async def run(self) -> None:
        while True:
            self._wake.clear()
            delay = min(self.announce_due(), self._recheck_s)
            # asyncio.timeout, not wait_for: Python 3.11's wait_for swallows a cancel that arrives as
            # the wake-up does, and the daemon's stop would then wait for this loop for ever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(delay, 0.0)):
                    await self._wake.wait()

    def announce_due(self) -> float:
        """Announce every lead that has come; return the seconds until the next one is due."""
        now = self._clock()
        next_in = float("inf")
        for payment in self._store.payments(states=HAS_DEADLINE, limit=10_000):
            deadline = payment.capture_before
            if deadline is None or deadline <= now:
                continue
            come = [lead for lead in self._leads if deadline - lead <= now]
            if come and (payment.payment_id, come[-1]) not in self._announced:
                # Only the nearest lead that has come is told; the earlier ones are then moot.
                self._announced.update((payment.payment_id, lead) for lead in come)
                self._announce(payment.payment_id, payment.order_id, payment.state, deadline, come[-1], now)
            next_in = min([next_in] + [deadline - lead - now for lead in self._leads if deadline - lead > now])
        return next_in

    def _announce(self, payment_id: str, order_id: str, state: State, deadline: int, lead: float, now: float) -> None:
        payment = self._store.payment(payment_id)
        intent = payment.payment_intent if payment else None
        remaining = deadline - now
        data = {
            "payment_id": payment_id,
            "order_id": order_id,
            "state": state.value,
            "payment_intent": intent,
            "capture_before": rfc3339(deadline),
            "lead_s": int(lead) if lead.is_integer() else lead,
            "remaining_s": round(remaining, 1),
        }
        fields: dict[str, str | int] = {
            "MESSAGE_ID": MessageId.CAPTURE_DEADLINE_NEAR,
            "PAYMENT_ID": payment_id,
            "ORDER_ID": order_id,
            "CAPTURE_BEFORE": rfc3339(deadline),
            "CAPTURE_BEFORE_UNIX": deadline,
            "LEAD_S": int(lead),
        }
        if intent:
            fields["PAYMENT_INTENT"] = intent
        logger.warning(
            "payment %s (order %s) is %s and must be captured before %s (in %s), or its authorisation lapses",
            payment_id, order_id, state.value, rfc3339(deadline), _duration(remaining),
            extra={"journal": fields},
        )  # fmt: skip
        self._events.publish(Event(Topic.PAYMENT, "payment.deadline", data))


def _duration(seconds: float) -> str:
    """A short human duration: 23 h 59 min, 1 h 5 min, 4 min."""
    minutes = int(seconds // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"
