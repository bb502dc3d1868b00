"""The worker: the only sender of queued Stripe mutations.

It takes each payment's oldest pending operation when it is due, commits the attempt (its key,
its count) before sending, sends it in a thread, and hands the outcome to the payment service,
which commits the result before anyone is told. Failures back off exponentially with jitter up
to a cap; requests are paced below a configured rate and pause on 429s. A key that may have
expired, a replayed 5xx or a key conflict first makes the worker learn the truth from Stripe.
It sleeps until the next operation is due or new work arrives: no polling while idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from readerhost.daemon.journal import MessageId

from .events import Event, EventHub, Topic
from .keys import next_generation
from .model import OpStatus, Payment, StripeState
from .operations import ABANDONED, KEY_SPENT, Gateway, Verdict, judge, learn_truth, send
from .outcomes import KeyConflict, NotFound, Outcome, Refunded, Refused, Succeeded, Unknown, WrongState
from .pacing import Pacer
from .store import Operation, Store

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerSettings:
    concurrency: int = 4  # operations in flight at once (never two of one payment)
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 60.0
    requests_per_second: float = 20.0  # below Stripe's test-mode 25/s
    rate_limit_pause_s: float = 2.0  # the first pause after a 429; doubles while 429s go on
    key_max_age_s: float = 23 * 3600  # Stripe keeps keys >= 24 h: older ones may be gone
    authentication_retry_s: float = 300.0  # a refused API key is retried (a technician may fix it)
    unreachable_after: int = 3  # consecutive failures before Stripe counts as unreachable
    probe_interval_s: float = 15.0  # while unreachable with nothing queued, look every so often


@dataclass
class StripeHealth:
    reachable: bool = True  # False only once Stripe is known unreachable: offline payments go by it
    consecutive_failures: int = 0
    last_ok_at: float | None = None
    authentication_failed: bool = False
    rate_limited: int = 0  # Stripe's 429s since the daemon started

    @property
    def state(self) -> StripeState:
        if not self.reachable:
            return StripeState.UNREACHABLE
        if self.last_ok_at is None:
            return StripeState.UNKNOWN
        return StripeState.KEY_REFUSED if self.authentication_failed else StripeState.REACHABLE


Settle = Callable[[Operation, Outcome], None]
Hold = Callable[[Operation, Unknown], None]
Waits = Callable[[Operation], bool]


class Worker:
    def __init__(
        self,
        store: Store,
        gateway: Gateway,
        events: EventHub,
        settings: WorkerSettings = WorkerSettings(),
        clock: Callable[[], float] = time.time,
        pacer: Pacer | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        jitter: random.Random | None = None,
    ) -> None:
        """`monotonic` and `jitter` are the process's own unless a simulation supplies its clock and seed."""
        self._store = store
        self._gateway = gateway
        self._events = events
        self._settings = settings
        self._clock = clock
        self._monotonic = monotonic
        self._jitter = jitter or random.Random()
        # Shared with whatever else asks Stripe on its own (a smart reader's health checks).
        self._pacer = pacer or Pacer(settings.requests_per_second)
        self._settle: Settle | None = None
        self._hold: Hold | None = None
        self._waits: Waits = lambda op: False
        self._wake = asyncio.Event()
        self._busy: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        # In-memory timers run on the monotonic clock: the wall clock of a Pi without a real-time
        # clock jumps at boot and again when NTP syncs, by days, either way.
        self._paused_until = 0.0  # monotonic
        self._rate_limit_pause = settings.rate_limit_pause_s
        self._next_probe_at = 0.0  # monotonic
        self._first_sent: dict[str, float] = {}  # idempotency key -> monotonic time this process first sent it
        # Operations whose first attempt was committed with the change that queued them, not sent yet.
        self._attempt_ahead: set[int] = set()
        # Operations whose truth could not be told yet, and how many looks in a row said so: each
        # look costs requests (a search, pages of a list), so the next waits longer, as a retry would.
        self._inconclusive_looks: dict[int, int] = {}
        self._stopping = False
        self.health = StripeHealth()

    def attach(self, settle: Settle, hold: Hold, waits: Waits | None = None) -> None:
        """Connect the payment service: `settle` applies an answer, `hold` a retry after no answer;
        `waits(op)` says an operation is not ready yet (the service wakes the worker when it is)."""
        self._settle, self._hold = settle, hold
        if waits is not None:
            self._waits = waits

    def attempt_committed(self, op_id: int) -> None:
        """The ledger committed this operation's first attempt with the change that queued it (one
        synced write instead of two): its send uses that attempt instead of committing another."""
        self._attempt_ahead.add(op_id)

    def may_have_sent(self, op: Operation) -> bool:
        """Whether `op` may have reached Stripe: an attempt is on record, and it is not one committed
        ahead of a send this process has not made (after a restart, every recorded attempt counts)."""
        return op.attempts > 0 and op.op_id not in self._attempt_ahead

    @property
    def in_flight(self) -> frozenset[str]:
        """The payments whose operation is being carried out right now."""
        return frozenset(self._busy)

    def wake(self) -> None:
        """New or rescheduled work: look at the outbox again."""
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            delay = self._start_due_operations()
            if self.health.state in (StripeState.UNKNOWN, StripeState.UNREACHABLE) and not self._busy:
                # Nothing in flight would tell us whether Stripe answers (at start) or is back: look
                # now and then.
                now = self._monotonic()
                if now >= self._next_probe_at:
                    self._next_probe_at = now + self._settings.probe_interval_s
                    self._start(self._probe())
                until_probe = self._next_probe_at - now
                delay = until_probe if delay is None else min(delay, until_probe)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)

    async def stop(self) -> None:
        """Finish the operations in flight (their results are committed), start no more."""
        self._stopping = True
        self._wake.set()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _start_due_operations(self) -> float | None:
        """Start what is due; return the seconds until the next operation is due (None: nothing waits)."""
        now = self._clock()
        paused = self._paused_until - self._monotonic()
        waits: list[float] = []
        operations = self._store.next_operations()
        # An attempt committed ahead belongs to an operation first in its payment's line until it is
        # sent or ended: forget those that ended unsent (dropped by a cancel).
        self._attempt_ahead.intersection_update(op.op_id for op in operations)
        for op in operations:
            if op.payment_id in self._busy or self._waits(op):
                continue
            wait = max(self._wait_for(op, now), paused)
            if wait > 0:
                waits.append(wait)
            elif len(self._busy) < self._settings.concurrency:
                self._busy.add(op.payment_id)
                self._start(self._execute(op))
        return min(waits) if waits else None

    def _wait_for(self, op: Operation, now: float) -> float:
        """Seconds until `op` is due. Its time is stored on the wall clock (it must survive a
        restart); one further ahead than the worker ever schedules means the wall clock went back
        since: the operation is due now rather than days from now."""
        wait = op.next_attempt_at - now
        longest = max(self._settings.backoff_cap_s, self._settings.authentication_retry_s)
        return 0.0 if wait > longest else wait

    def _key_may_be_gone(self, op: Operation, now: float) -> bool:
        """Whether Stripe may have forgotten the key. Its age is the longer of the wall-clock age
        (what survives restarts) and the monotonic age (what this process saw); a wall clock now
        earlier than the first send means the age is unknown: treat the key as possibly gone."""
        if op.key_first_sent_at is None:
            return False
        age = now - op.key_first_sent_at
        if age < 0:
            return True
        first = self._first_sent.get(op.idempotency_key)
        if first is not None:
            age = max(age, self._monotonic() - first)
        return age > self._settings.key_max_age_s

    def _start(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _execute(self, op: Operation) -> None:
        try:
            await self._attempt(op)
        except Exception:
            # A bug must not stop the queue: log it, and try this operation again later.
            logger.exception("operation %s (%s of %s) failed unexpectedly", op.op_id, op.kind, op.payment_id)
            with contextlib.suppress(Exception):
                current = self._store.operation(op.op_id)
                if current is not None and current.status == OpStatus.PENDING:
                    later = self._clock() + self._settings.backoff_cap_s
                    with self._store.transaction():
                        self._store.save_operation(current.but(next_attempt_at=later, updated_at=self._clock()))
        finally:
            self._busy.discard(op.payment_id)
            self._wake.set()

    async def _attempt(self, op: Operation) -> None:
        now = self._clock()
        if op.needs_truth or self._key_may_be_gone(op, now):
            payment = self._store.payment(op.payment_id)
            assert payment is not None, f"operation {op.op_id} without its payment"
            if await self._learn_truth(op, payment) is None:
                return
        await self._pacer.turn()
        # Read again after waiting: the service may have dropped this operation meanwhile (a cancel
        # before its first try), and a stale copy must never be written back over that.
        current = self._store.operation(op.op_id)
        payment = self._store.payment(op.payment_id)
        if current is None or current.status != OpStatus.PENDING or payment is None:
            return
        if current.op_id in self._attempt_ahead:  # committed with the change that queued it
            self._attempt_ahead.discard(current.op_id)
            op = current
        else:
            now = self._clock()
            op = current.but(
                attempts=current.attempts + 1, key_first_sent_at=current.key_first_sent_at or now, updated_at=now
            )
            with self._store.transaction():
                self._store.save_operation(op)  # commit the attempt before sending it
        self._first_sent.setdefault(op.idempotency_key, self._monotonic())
        logger.debug(
            "sending %s for %s under key %s (attempt %d)", op.kind, op.payment_id, op.idempotency_key, op.attempts
        )
        outcome = await asyncio.to_thread(send, self._gateway, op.kind, op.idempotency_key, op.params, payment)
        self._handle(op, outcome)

    async def _learn_truth(self, op: Operation, payment: Payment) -> Operation | None:
        """Ask Stripe what it holds; settle the operation, or return it re-keyed to send anew."""
        await self._pacer.turn()
        truth = await asyncio.to_thread(learn_truth, self._gateway, op.kind, payment, self._clock(), op.params)
        self._note_health(truth)
        verdict = judge(op.kind, truth, op.params)
        now = self._clock()
        logger.info("learned the truth for %s of %s: %s", op.kind, op.payment_id, verdict.value)
        if verdict is Verdict.DONE and isinstance(truth, Refunded):
            self._settle_with(op, Refunded(truth.refund, replayed=True))
            return None
        if verdict is Verdict.DONE:
            assert isinstance(truth, Succeeded | WrongState)
            assert truth.intent is not None
            self._settle_with(op, Succeeded(truth.intent, replayed=True))
            return None
        if verdict is Verdict.CONCLUSIVE:
            intent = truth.intent if isinstance(truth, Succeeded | WrongState) else None
            self._settle_with(
                op, WrongState(f"Stripe holds the PaymentIntent as {intent.status if intent else 'missing'}", intent)
            )
            return None
        if verdict is Verdict.WAIT:
            reason = truth.message if isinstance(truth, Unknown | Refused) else "Stripe is still processing"
            looks = self._inconclusive_looks[op.op_id] = self._inconclusive_looks.get(op.op_id, 0) + 1
            self._reschedule(op, Unknown(reason), now, backed_off=looks)
            return None
        self._inconclusive_looks.pop(op.op_id, None)
        current = self._store.operation(op.op_id)
        if current is None or current.status != OpStatus.PENDING:
            return None  # settled or dropped while Stripe was asked
        if current.params.get(ABANDONED):
            return self._carry_abandoned(current, truth, now)
        if not current.needs_truth:
            # Asked only because the key may be forgotten (over a day old, or of unknown age after
            # the wall clock stepped back). Under its own key Stripe replays, or answers 409 while
            # a request with it still runs; forgotten, the key is as new to Stripe as a fresh one.
            # A new key would make the operation twice if that request is still running and
            # completes (docs/model.md, Findings). Only a key that can never succeed is replaced.
            return current
        fresh = current.but(
            idempotency_key=next_generation(current.idempotency_key),
            key_first_sent_at=None,
            needs_truth=False,
            updated_at=now,
        )
        with self._store.transaction():
            self._store.save_operation(fresh)  # the new key is durable before it is used
        self._first_sent.pop(current.idempotency_key, None)
        return fresh

    def _carry_abandoned(self, op: Operation, truth: Outcome, now: float) -> Operation | None:
        """An operation whose payment stopped waiting is never sent under a new key: under its own
        key Stripe replays what it did, or does it now once (a cancel behind it ends that). Only
        once nothing can be in flight under the key any more -- it may be gone (a day later), or
        Stripe replayed a saved 5xx for it (the request ended, and can never succeed) -- is the
        truth final."""
        if self._key_may_be_gone(op, now) or op.params.get(KEY_SPENT):
            intent = truth.intent if isinstance(truth, Succeeded | WrongState) else None
            self._settle_with(op, WrongState("Stripe holds nothing of this operation", intent))
            return None
        carried = op.but(needs_truth=False, updated_at=now)
        with self._store.transaction():
            self._store.save_operation(carried)
        return carried

    def _handle(self, op: Operation, outcome: Outcome) -> None:
        self._note_health(outcome)
        now = self._clock()
        if isinstance(outcome, Unknown):
            if outcome.rate_limited and self._monotonic() >= self._paused_until:
                # A new burst of 429s: pause the queue, longer each time. The other requests that
                # were in flight with this one are answered 429 too; they belong to the same burst
                # and must not double the pause again (they used to stall the queue for 60 s).
                self._paused_until = self._monotonic() + self._rate_limit_pause
                self._rate_limit_pause = min(self._rate_limit_pause * 2, self._settings.backoff_cap_s)
            assert self._hold is not None
            self._hold(op, outcome)
            spent = outcome.replayed_server_error and bool(op.params.get(ABANDONED))
            self._reschedule(op, outcome, now, needs_truth=outcome.replayed_server_error, key_spent=spent)
            return
        self._rate_limit_pause = self._settings.rate_limit_pause_s
        if isinstance(outcome, KeyConflict):
            # The first request still holds the key; an abandoned one waits for it, with backoff.
            soon = not op.params.get(ABANDONED)
            self._reschedule(op, Unknown(outcome.message), now, needs_truth=True, soon=soon)
            return
        if isinstance(outcome, Refused) and outcome.authentication:
            logger.error(
                "Stripe refused the API key: %s; retrying in %.0f s",
                outcome.message,
                self._settings.authentication_retry_s,
            )
            with self._store.transaction():
                self._store.save_operation(
                    op.but(
                        next_attempt_at=now + self._settings.authentication_retry_s,
                        last_error=outcome.message,
                        updated_at=now,
                    )
                )
            return
        self._settle_with(op, outcome)

    def _settle_with(self, op: Operation, outcome: Outcome) -> None:
        assert self._settle is not None
        self._inconclusive_looks.pop(op.op_id, None)
        self._settle(op, outcome)
        self._first_sent.pop(op.idempotency_key, None)  # a settled operation's key is never sent again

    def _reschedule(
        self,
        op: Operation,
        outcome: Unknown,
        now: float,
        *,
        needs_truth: bool = False,
        soon: bool = False,
        backed_off: int = 0,
        key_spent: bool = False,
    ) -> None:
        """Try `op` again after the backoff of its attempts, plus `backed_off` doublings (the looks
        at the truth that could not tell it, which send nothing and so count no attempt);
        `key_spent` marks an abandoned operation's key as one Stripe replayed a saved 5xx for."""
        exponent = min(max(op.attempts - 1, 0) + backed_off, 32)  # 2**32 s is past any cap
        delay = min(self._settings.backoff_cap_s, self._settings.backoff_base_s * 2**exponent)
        delay *= self._jitter.uniform(0.5, 1.0)  # jitter: kiosks recovering together do not stampede
        current = self._store.operation(op.op_id)
        if current is None or current.status != OpStatus.PENDING:
            return  # settled meanwhile (e.g. by the service's hold)
        with self._store.transaction():
            self._store.save_operation(
                current.but(
                    next_attempt_at=now + (0.0 if soon else delay),
                    needs_truth=current.needs_truth or needs_truth,
                    params={**current.params, KEY_SPENT: True} if key_spent else current.params,
                    last_error=outcome.message,
                    updated_at=now,
                )
            )

    def _note_health(self, outcome: Outcome) -> None:
        """Count answers and silences: a 429 is an answer, a reset, timeout, 409 or 5xx is not."""
        answered = not isinstance(outcome, Unknown) or outcome.rate_limited
        health = self.health
        if isinstance(outcome, Unknown) and outcome.rate_limited:
            health.rate_limited += 1
        was_reachable, was = health.reachable, health.state
        if answered:
            health.consecutive_failures = 0
            health.reachable = True
            health.last_ok_at = self._clock()
            health.authentication_failed = isinstance(outcome, Refused) and outcome.authentication
        else:
            health.consecutive_failures += 1
            if health.consecutive_failures >= self._settings.unreachable_after:
                health.reachable = False
        if health.reachable != was_reachable:
            message_id = MessageId.STRIPE_BACK if health.reachable else MessageId.STRIPE_UNREACHABLE
            fields = {"MESSAGE_ID": message_id, "QUEUE_DEPTH": self._store.queue_stats().pending}
            logger.log(
                logging.INFO if health.reachable else logging.WARNING,
                "Stripe is %s", "reachable again" if health.reachable else "unreachable",
                extra={"journal": fields},
            )  # fmt: skip
            if health.reachable:
                self._bring_forward()
        if was is StripeState.UNKNOWN and health.reachable and health.state is not StripeState.UNKNOWN:
            logger.info("Stripe answered (%s)", health.state.value)  # the first time since the start
        if health.state != was:  # the first answer too: a kiosk may wait for it to say it is ready
            self._events.publish(
                Event(
                    Topic.SYSTEM,
                    "system.stripe",
                    {
                        "state": health.state.value,
                        "reachable": health.reachable,
                        "consecutive_failures": health.consecutive_failures,
                    },
                )
            )

    def _bring_forward(self) -> None:
        """Stripe is back: what waits for a retry goes now, not at the end of its backoff."""
        now = self._clock()
        with self._store.transaction():
            for op in self._store.next_operations():
                if op.next_attempt_at > now:
                    self._store.save_operation(op.but(next_attempt_at=now, updated_at=now))
        self._wake.set()

    async def _probe(self) -> None:
        """Ask Stripe for an empty page of PaymentIntents: any answer means it is reachable."""
        far = int(self._clock()) + 10 * 365 * 86400
        answer = await asyncio.to_thread(self._gateway.list_intents, created_gte=far, created_lt=far + 1, page_size=1)
        self._note_health(answer if isinstance(answer, Unknown | Refused) else NotFound("probe answered"))
