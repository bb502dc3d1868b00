"""The invariant checker: the daemon's store, what the POS clients were told and asked, and what
Stripe (the emulator's journal of executed mutations) did, compared with each other.

The rules (docs/reliability.md, "The invariants"):

- `one_intent_per_attempt`: at most one PaymentIntent created per payment (an attempt of its order).
- `one_success_per_order`: at most one PaymentIntent of an order is ever captured, and once settled at
  most one holds an authorisation or a capture; the store never has two successful attempts of an
  order (authorized, capturing or captured) nor two live ones.
- `capture_once`: a payment whose capture the POS asked for is captured exactly once, for the
  amount asked (once settled; never more than once at any time).
- `no_unasked_capture`: nothing is captured that the POS did not ask to capture.
- `no_capture_after_cancel`: nothing captured after a cancel (the POS's or Stripe's).
- `settled`: once faults have stopped and the queue has drained, every payment is terminal or
  `authorized` (awaiting its POS), nothing is left in the outbox, and the store agrees with Stripe.
- `told_in_store`: every state a POS was told about is in the store's history (a refund's in its own).
- `refund_within_captured`: what Stripe refunded of a payment never exceeds what it captured.
- `one_refund_per_refund_id`: Stripe holds at most one refund per refund_id, and only for one a POS asked.
- `refund_settled`: once settled, no refund is pending, and each refund agrees with Stripe: succeeded
  with Stripe's refund for its amount, failed or canceled with none.
- `increment_settled`: once settled, no increment is pending, and each agrees with Stripe: succeeded
  with the hold raised to its amount once, declined or failed with the hold never raised to it; no
  hold is raised to an amount no increment of its payment asked for.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from readerhost.daemon.payments.model import ATTEMPT_OVER, SUCCESSFUL, TERMINAL, State
from reliability.pos import PosRecord

# Where every payment must be once the faults stop: done, or authorised and waiting for its POS.
AT_REST = TERMINAL | {State.AUTHORIZED}


class JournalLike(Protocol):
    """One executed mutation, as the emulator's journal gives it."""

    @property
    def seq(self) -> int: ...
    @property
    def op(self) -> str: ...
    @property
    def object(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def amount(self) -> int | None: ...
    @property
    def metadata(self) -> dict[str, str]: ...


@dataclass(frozen=True)
class Violation:
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.detail}"


@dataclass(frozen=True)
class StoredPayment:
    payment_id: str
    order_id: str
    state: str
    payment_intent: str | None
    captured_amount: int
    error_reason: str | None


@dataclass(frozen=True)
class StoredRefund:
    refund_id: str
    payment_id: str
    state: str
    amount: int
    stripe_refund: str | None


@dataclass(frozen=True)
class StoredIncrement:
    increment_id: str
    payment_id: str
    state: str
    amount: int


@dataclass
class StoreView:
    payments: dict[str, StoredPayment] = field(default_factory=dict)
    history: dict[str, set[str]] = field(default_factory=dict)  # payment_id -> every state it was in
    pending_operations: int = 0
    refunds: dict[str, StoredRefund] = field(default_factory=dict)
    refund_history: dict[str, set[str]] = field(default_factory=dict)  # refund_id -> every state it was in
    increments: dict[str, StoredIncrement] = field(default_factory=dict)


def read_store(path: Path) -> StoreView:
    """The store as it is on disk, read through SQLite read-only (the daemon may be running)."""
    import json

    view = StoreView()
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10.0)
    try:
        for payment_id, order_id, state, intent, captured, error in db.execute(
            "SELECT payment_id, order_id, state, payment_intent, captured_amount, error FROM payments"
        ):
            reason = json.loads(error).get("reason") if error else None
            view.payments[payment_id] = StoredPayment(payment_id, order_id, state, intent, captured, reason)
        for payment_id, state in db.execute("SELECT payment_id, to_state FROM history"):
            view.history.setdefault(payment_id, set()).add(state)
        view.pending_operations = db.execute("SELECT count(*) FROM operations WHERE status='pending'").fetchone()[0]
        if db.execute("SELECT count(*) FROM sqlite_master WHERE name='refunds'").fetchone()[0]:
            for refund_id, payment_id, state, amount, stripe_refund in db.execute(
                "SELECT refund_id, payment_id, state, amount, stripe_refund FROM refunds"
            ):
                view.refunds[refund_id] = StoredRefund(refund_id, payment_id, state, amount, stripe_refund)
            for refund_id, state in db.execute("SELECT refund_id, to_state FROM refund_history"):
                view.refund_history.setdefault(refund_id, set()).add(state)
        if db.execute("SELECT count(*) FROM sqlite_master WHERE name='increments'").fetchone()[0]:
            for increment_id, payment_id, state, amount in db.execute(
                "SELECT increment_id, payment_id, state, amount FROM increments"
            ):
                view.increments[increment_id] = StoredIncrement(increment_id, payment_id, state, amount)
    finally:
        db.close()
    return view


def check(
    store: StoreView,
    journal: Iterable[JournalLike],
    pos: PosRecord,
    *,
    terminal_id: str,
    settled: bool,
) -> list[Violation]:
    """Every violation found; `settled`: faults have stopped and the daemon had time to finish."""
    # A reader's SDK that forwarded a payment it stored offline made that PaymentIntent itself (its
    # metadata's offline_ref; the order metadata on it is the bridge's word): it is this terminal's
    # through the payment the store links it to.
    forwarded = {p.payment_intent: p for p in store.payments.values() if p.payment_intent is not None}
    journal = list(journal)
    made_by_sdk = {
        e.object for e in journal
        if e.op == "payment_intent.create" and "offline_ref" in e.metadata and e.object in forwarded
    }  # fmt: skip
    entries = [e for e in journal if e.metadata.get("terminal_id") == terminal_id or e.object in made_by_sdk]
    # Before such a payment was stored offline its create may have reached Stripe unanswered: that
    # PaymentIntent never had a card (the reader collected offline), so it can hold no money. It is
    # left out, but only while nothing but its create (and a cancel) ever happened to it.
    sdk_payments = {forwarded[intent].payment_id for intent in made_by_sdk}
    ops_of: dict[str, set[str]] = defaultdict(set)
    for entry in entries:
        ops_of[entry.object].add(entry.op)
    inert = {
        e.object for e in entries
        if e.op == "payment_intent.create" and e.object not in made_by_sdk
        and e.metadata.get("payment_id") in sdk_payments
        and ops_of[e.object] <= {"payment_intent.create", "payment_intent.update", "payment_intent.cancel"}
    }  # fmt: skip
    entries = [e for e in entries if e.object not in inert]
    found: list[Violation] = []
    payment_of = {e.object: e.metadata.get("payment_id", "") for e in entries if e.op == "payment_intent.create"}
    payment_of.update({intent: forwarded[intent].payment_id for intent in made_by_sdk})
    found += _one_intent_per_attempt(entries, payment_of)
    by_object: dict[str, list[JournalLike]] = defaultdict(list)
    for entry in sorted(entries, key=lambda e: e.seq):
        by_object[entry.object].append(entry)
    order_of = {e.object: e.metadata.get("order_id", "") for e in entries if e.op == "payment_intent.create"}
    order_of.update({intent: forwarded[intent].order_id for intent in made_by_sdk})
    found += _one_success_per_order(by_object, order_of, store, settled)
    found += _captures(by_object, payment_of, store, pos, settled)
    found += _told_in_store(store, pos)
    found += _refunds(entries, store, pos, settled)
    found += _increments(by_object, store, settled)
    if settled:
        found += _settled(store, by_object, payment_of)
    return found


def _one_intent_per_attempt(entries: Sequence[JournalLike], payment_of: dict[str, str]) -> list[Violation]:
    intents: dict[str, set[str]] = defaultdict(set)
    for entry in entries:
        if entry.op == "payment_intent.create":
            intents[payment_of.get(entry.object) or "?"].add(entry.object)
    return [
        Violation("one_intent_per_attempt", f"payment {payment} has {len(objects)} PaymentIntents: {sorted(objects)}")
        for payment, objects in sorted(intents.items())
        if len(objects) > 1
    ]


def _one_success_per_order(
    by_object: dict[str, list[JournalLike]], order_of: dict[str, str], store: StoreView, settled: bool
) -> list[Violation]:
    """An order paid again has several attempts, each its own PaymentIntent: at most one of them pays."""
    captured: dict[str, set[str]] = defaultdict(set)
    holding: dict[str, set[str]] = defaultdict(set)
    for intent, history in by_object.items():
        if not history[0].op.startswith("payment_intent."):
            continue  # a refund
        order = order_of.get(intent) or history[-1].metadata.get("order_id") or "?"
        if any(_captures_money(e) for e in history):
            captured[order].add(intent)
        if history[-1].status in ("requires_capture", "succeeded"):
            holding[order].add(intent)
    found = [
        Violation("one_success_per_order", f"order {order}: {len(intents)} PaymentIntents captured: {sorted(intents)}")
        for order, intents in sorted(captured.items())
        if len(intents) > 1
    ]
    if settled:
        found += [
            Violation("one_success_per_order", f"order {order}: {len(intents)} PaymentIntents hold money: {intents}")
            for order, intents in sorted((order, sorted(intents)) for order, intents in holding.items())
            if len(intents) > 1
        ]
    successful: dict[str, list[str]] = defaultdict(list)
    live: dict[str, list[str]] = defaultdict(list)
    for payment in store.payments.values():
        if State(payment.state) in SUCCESSFUL:
            successful[payment.order_id].append(payment.payment_id)
        if State(payment.state) not in ATTEMPT_OVER:
            live[payment.order_id].append(payment.payment_id)
    for what, of_order in (("successful", successful), ("live", live)):
        found += [
            Violation("one_success_per_order", f"order {order} has {len(ids)} {what} attempts: {sorted(ids)}")
            for order, ids in sorted(of_order.items())
            if len(ids) > 1
        ]
    return found


def _captures_money(entry: JournalLike) -> bool:
    return entry.op == "payment_intent.capture" or (
        entry.op == "payment_intent.confirm" and entry.status == "succeeded"
    )


def _captures(
    by_object: dict[str, list[JournalLike]],
    payment_of: dict[str, str],
    store: StoreView,
    pos: PosRecord,
    settled: bool,
) -> list[Violation]:
    found: list[Violation] = []
    captured: dict[str, list[JournalLike]] = {}
    for intent, history in by_object.items():
        payment_id = payment_of.get(intent, "?")
        captures = [e for e in history if e.op == "payment_intent.capture"]
        if not captures:
            continue
        captured[payment_id] = captures
        if len(captures) > 1:
            found.append(Violation("capture_once", f"{payment_id} ({intent}) captured {len(captures)} times"))
        asked = payment_id in pos.capture_asked or payment_id in pos.capture_maybe or payment_id in pos.automatic
        if not asked:
            found.append(Violation("no_unasked_capture", f"{payment_id} ({intent}) captured, never asked"))
        if payment_id in pos.cancel_accepted:
            found.append(
                Violation("no_capture_after_cancel", f"{payment_id} ({intent}): the POS's cancel was accepted")
            )
        first_capture = captures[0].seq
        if any(e.op in ("payment_intent.cancel", "payment_intent.expire") and e.seq < first_capture for e in history):
            found.append(Violation("no_capture_after_cancel", f"{payment_id} ({intent}) captured after its cancel"))
        wanted = pos.capture_asked.get(payment_id)
        if wanted is not None and captures[0].amount != wanted:
            found.append(
                Violation("capture_once", f"{payment_id} captured {captures[0].amount}, the POS asked {wanted}")
            )
    if settled:
        for payment_id in pos.capture_asked:
            stored = store.payments.get(payment_id)
            expired = stored is not None and stored.state == "failed" and stored.error_reason in _NOT_CAPTURABLE
            if payment_id not in captured and not expired:
                state = stored.state if stored else "missing"
                found.append(Violation("capture_once", f"{payment_id}: capture asked, never captured (store: {state})"))
    return found


# A capture that cannot happen, and the payment failed saying why: Stripe ended the authorisation
# first, or an offline payment whose capture was asked while it waited was declined when forwarded
# (payments.md: the merchant carries that risk; it is logged as an error).
_NOT_CAPTURABLE = frozenset({"AUTHORIZATION_EXPIRED", "PAYMENT_INTENT_CANCELED", "OFFLINE_DECLINED"})


def _refunds(entries: Sequence[JournalLike], store: StoreView, pos: PosRecord, settled: bool) -> list[Violation]:
    found: list[Violation] = []
    made = [e for e in entries if e.op == "refund.create"]
    by_refund_id: dict[str, list[JournalLike]] = defaultdict(list)
    refunded: dict[str, int] = defaultdict(int)  # payment_id -> what Stripe refunded of it
    for entry in made:
        by_refund_id[entry.metadata.get("refund_id", "?")].append(entry)
        refunded[entry.metadata.get("payment_id", "?")] += entry.amount or 0
    # A PaymentIntent a reader's SDK made (forwarded offline) is the payment's the store links it to,
    # whatever order metadata the bridge put on it.
    payment_of_intent = {p.payment_intent: p.payment_id for p in store.payments.values() if p.payment_intent}
    captured = {
        e.metadata.get("payment_id") or payment_of_intent.get(e.object or "", "?"): e.amount or 0
        for e in entries
        if e.op == "payment_intent.capture" or (e.op == "payment_intent.confirm" and e.status == "succeeded")
    }
    for payment_id, amount in sorted(refunded.items()):
        taken = captured.get(payment_id, 0)
        if amount > taken:
            found.append(Violation("refund_within_captured", f"{payment_id}: {amount} refunded, {taken} captured"))
    for refund_id, refunds in sorted(by_refund_id.items()):
        if len(refunds) > 1:
            found.append(Violation("one_refund_per_refund_id", f"{refund_id} made {len(refunds)} refunds"))
        if refund_id not in pos.refund_maybe:
            found.append(Violation("one_refund_per_refund_id", f"{refund_id} refunded, never asked"))
    found += [
        Violation("told_in_store", f"refund {refund_id} was reported {state}; the store never had it so")
        for refund_id, state in sorted(pos.refunds_told)
        if state not in store.refund_history.get(refund_id, set())
    ]
    if settled:
        for refund in sorted(store.refunds.values(), key=lambda r: r.refund_id):
            at_stripe = by_refund_id.get(refund.refund_id, [])
            if refund.state in ("pending", "requires_action"):
                found.append(Violation("refund_settled", f"refund {refund.refund_id} is still {refund.state}"))
            elif refund.state == "succeeded" and not (
                len(at_stripe) == 1
                and at_stripe[0].object == refund.stripe_refund
                and at_stripe[0].amount == refund.amount
            ):
                found.append(
                    Violation("refund_settled", f"refund {refund.refund_id} succeeded; Stripe holds {len(at_stripe)}")
                )
            elif refund.state in ("failed", "canceled") and at_stripe:
                found.append(
                    Violation("refund_settled", f"refund {refund.refund_id} is {refund.state}; Stripe made it")
                )
        for refund_id in sorted(pos.refund_asked):
            if refund_id not in store.refunds:
                found.append(Violation("refund_settled", f"refund {refund_id} was accepted; the store lost it"))
    return found


def _increments(by_object: dict[str, list[JournalLike]], store: StoreView, settled: bool) -> list[Violation]:
    found: list[Violation] = []
    asked: dict[str, set[int]] = defaultdict(set)  # payment_id -> the amounts its increments asked
    for increment in store.increments.values():
        asked[increment.payment_id].add(increment.amount)
    for payment in sorted(store.payments.values(), key=lambda p: p.payment_id):
        raised = [
            e.amount
            for e in by_object.get(payment.payment_intent or "", [])
            if e.op == "payment_intent.increment_authorization"
        ]
        found += [
            Violation("increment_settled", f"{payment.payment_id}: hold raised to {amount}, which no increment asked")
            for amount in raised
            if amount not in asked[payment.payment_id]
        ]
        if not settled:
            continue
        for increment in sorted(store.increments.values(), key=lambda i: i.increment_id):
            if increment.payment_id != payment.payment_id:
                continue
            times = raised.count(increment.amount)
            if increment.state == "pending":
                found.append(Violation("increment_settled", f"increment {increment.increment_id} is still pending"))
            elif (increment.state == "succeeded") != (times == 1) or times > 1:
                found.append(
                    Violation(
                        "increment_settled",
                        f"increment {increment.increment_id} is {increment.state}; Stripe raised the hold to "
                        f"{increment.amount} {times} times",
                    )
                )
    return found


def _told_in_store(store: StoreView, pos: PosRecord) -> list[Violation]:
    return [
        Violation("told_in_store", f"{payment_id} was reported {state}; the store never had it so")
        for payment_id, state in sorted(pos.told)
        if state not in store.history.get(payment_id, set())
    ]


def _settled(store: StoreView, by_object: dict[str, list[JournalLike]], payment_of: dict[str, str]) -> list[Violation]:
    found: list[Violation] = []
    if store.pending_operations:
        found.append(Violation("settled", f"{store.pending_operations} operations still pending"))
    final = {intent: history[-1].status for intent, history in by_object.items()}
    intents_of: dict[str, set[str]] = defaultdict(set)
    for intent, payment_id in payment_of.items():
        intents_of[payment_id].add(intent)
    for payment in store.payments.values():
        if payment.state not in AT_REST:
            found.append(Violation("settled", f"{payment.payment_id} is still {payment.state}"))
            continue
        intents = intents_of.get(payment.payment_id, set())
        if payment.payment_intent is not None:
            intents.add(payment.payment_intent)
        for intent in intents:
            at_stripe = final.get(intent)
            if not _agrees(payment, at_stripe):
                found.append(
                    Violation(
                        "settled", f"{payment.payment_id} is {payment.state}; Stripe holds {intent} as {at_stripe}"
                    )
                )
    return found


def _agrees(payment: StoredPayment, at_stripe: str | None) -> bool:
    if payment.state == "captured":
        return at_stripe == "succeeded"
    if payment.state == "authorized":
        return at_stripe == "requires_capture"
    if payment.state == "canceled":
        return at_stripe in (None, "canceled")
    # failed: no money may be held or taken for it
    return at_stripe not in ("requires_capture", "succeeded")
