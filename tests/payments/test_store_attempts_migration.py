"""The migration to orders paid again: a store made by the schema before it, with a payment in every
state (and their outbox, history, refunds and a registered reader), is rebuilt in place keeping every
row and every value; each payment becomes attempt 1 of its order; the new rules hold afterwards."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from readerhost.daemon.payments.model import OrderClosure, PaidBy, Payment, PaymentRequest, State
from readerhost.daemon.payments.store import MIGRATIONS, StorageError, Store

T0 = 1_800_000_000.0
# The schema before orders paid again: every migration before the one that made order_closures.
BEFORE = next(number for number, script in enumerate(MIGRATIONS) if "CREATE TABLE order_closures" in script)
REFUND_REQUEST = {"refund_id": "R-1", "payment_id": "pay_8", "amount": 100, "reason": None, "at_reader": False}
TABLES = ("payments", "operations", "history", "refunds", "refund_history", "readers")


def request(order_id: str) -> str:
    return json.dumps(
        {
            "order_id": order_id, "amount": 1200, "currency": "usd", "description": "locker", "metadata": {"k": "v"},
            "capture": "manual", "confirm": False, "offline": "prefer_online", "payment_intent_client_secret": None,
            "tipping": None,
        },
        sort_keys=True,
    )  # fmt: skip


def old_store(path: Path) -> None:
    """A store as the previous readerhost left it: one payment per order, in every state."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript("".join(MIGRATIONS[:BEFORE]) + f"\nPRAGMA user_version={BEFORE};")
        card = json.dumps({"brand": "visa", "last4": "4242", "read_method": "contact_emv"})
        receipt = json.dumps({"brand": "visa", "last4": "4242", "authorization_code": "123456"})
        error = json.dumps({"reason": "STRIPE_REFUSED", "message": "no"})
        for number, state in enumerate(State):
            pid, order_id = f"pay_{number}", f"OLD-{number}"
            db.execute(
                "INSERT INTO payments (payment_id, order_id, request, state, payment_intent, card, decline, error,"
                " captured_amount, capture_amount, capture_before, offline, attempts, created_at, updated_at,"
                " receipt, tip) VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (pid, order_id, request(order_id), state.value, f"pi_{number}", card,
                 error if state is State.FAILED else None, 1200 if state is State.CAPTURED else 0,
                 1200 if state in (State.CAPTURING, State.CAPTURED) else None, int(T0) + 86_400,
                 int(state is State.QUEUED_OFFLINE), number % 3, T0 + number, T0 + number + 0.5, receipt, number),
            )  # fmt: skip
            db.execute(
                "INSERT INTO history (payment_id, at, from_state, to_state, detail) VALUES (?, ?, NULL, ?, 'start')",
                (pid, T0 + number, state.value),
            )
            db.execute(
                "INSERT INTO operations (payment_id, kind, idempotency_key, params, status, next_attempt_at,"
                " created_at, updated_at) VALUES (?, 'create', ?, '{}', ?, ?, ?, ?)",
                (pid, f"readerhost:k:{order_id}:create", "pending" if number % 2 else "done", T0, T0, T0),
            )
        db.execute(
            "INSERT INTO refunds (refund_id, payment_id, request, amount, state, at_reader, created_at, updated_at)"
            " VALUES ('R-1', 'pay_8', ?, 100, 'succeeded', 0, ?, ?)",
            (json.dumps(REFUND_REQUEST), T0, T0),
        )
        db.execute(
            "INSERT INTO refund_history (refund_id, at, to_state, detail) VALUES ('R-1', ?, 'succeeded', 'x')", (T0,)
        )
        db.execute(
            "INSERT INTO readers (driver, reader_id, registered_at) VALUES ('stripe_terminal', 'tmr_1', ?)", (T0,)
        )
    finally:
        db.close()


def contents(path: Path) -> dict[str, list[dict[str, Any]]]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        return {table: [dict(row) for row in db.execute(f"SELECT * FROM {table} ORDER BY rowid")] for table in TABLES}
    finally:
        db.close()


def test_a_store_of_the_previous_schema_keeps_every_row_and_value_and_each_payment_is_attempt_1(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.db"
    old_store(path)
    before = contents(path)
    assert len(before["payments"]) == len(State)
    store = Store.open(path)
    try:
        assert store.pragma("user_version") == len(MIGRATIONS)
        assert store.pragma("foreign_keys") == 1  # on again after the rebuild
        after = contents(path)
        # Columns later migrations add (after this rebuild) are empty in every kept row.
        later = {"incremented_to": None, "card_support": None}
        assert after["payments"] == [{**row, "order_attempt": 1, **later} for row in before["payments"]]
        for table in TABLES[1:]:
            assert after[table] == before[table], table
        for number, state in enumerate(State):
            payment = store.payment(f"pay_{number}")
            assert payment is not None
            assert (payment.state, payment.order_attempt, payment.closed_by) == (state, 1, None)
            assert store.payment_by_order(f"OLD-{number}") == payment
        assert [r.refund_id for r in store.payment("pay_8").refunds] == ["R-1"]  # type: ignore[union-attr]
        # Every reference to a payment (outbox, history, refunds) still finds it in the rebuilt table.
        check = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            assert check.execute("PRAGMA foreign_key_check").fetchall() == []
        finally:
            check.close()

        # The new rules: an order whose attempt is over takes a second; one with a live attempt does not.
        canceled = store.payment_by_order(f"OLD-{list(State).index(State.CANCELED)}")
        authorised = store.payment_by_order(f"OLD-{list(State).index(State.AUTHORIZED)}")
        assert canceled is not None
        assert authorised is not None
        with store.transaction():
            store.insert_payment(attempt_after(canceled), "payment.start")
        with pytest.raises(StorageError, match="UNIQUE"), store.transaction():
            store.insert_payment(attempt_after(authorised), "payment.start")
        with pytest.raises(StorageError, match="live or successful attempt"), store.transaction():
            store.close_order(OrderClosure(authorised.order_id, PaidBy.OTHER, T0))
    finally:
        store.close()


def attempt_after(previous: Payment) -> Payment:
    request = PaymentRequest(previous.order_id, 1200, "usd")
    return Payment(f"{previous.payment_id}_2", request, State.CREATING, T0, T0, order_attempt=2)
