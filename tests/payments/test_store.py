"""The store on real SQLite files: its settings, what it keeps, and the files it refuses to touch."""

from __future__ import annotations

import json
import os
import random
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from readerhost.daemon.payments.model import (
    CaptureMode,
    Card,
    Decline,
    Increment,
    IncrementRequest,
    IncrementState,
    OfflineMode,
    OpStatus,
    OrderClosure,
    PaidBy,
    Payment,
    PaymentError,
    PaymentRequest,
    Reason,
    Receipt,
    Refund,
    RefundRequest,
    RefundState,
    State,
)
from readerhost.daemon.payments.store import CACHE_KIB, MIGRATIONS, QueueStats, StorageError, Store

T0 = 1_700_000_000.0


def make_payment(
    payment_id: str = "pay_1",
    order_id: str = "A-1",
    *,
    state: State = State.CREATING,
    created_at: float = T0,
    amount: int = 1000,
    currency: str = "usd",
    **changes: Any,
) -> Payment:
    request = PaymentRequest(order_id=order_id, amount=amount, currency=currency)
    return replace(Payment(payment_id, request, state, created_at=created_at, updated_at=created_at), **changes)


def full_payment() -> Payment:
    """A payment with every optional field set, none at its default."""
    request = PaymentRequest(
        order_id="K-7.locker_12:b",
        amount=2_499,
        currency="eur",
        description="Locker 12, two hours — café",
        metadata={"locker": "12", "site": "Gare du Nord", "note": "ünïcode ✓"},
        capture=CaptureMode.AUTOMATIC,
        confirm=True,
        offline=OfflineMode.PREFER_ONLINE,
        payment_intent_client_secret="pi_3Abc_secret_XyZ123",
        tipping=2_000,
    )
    return Payment(
        payment_id="pay_full",
        request=request,
        state=State.DECLINED,
        created_at=T0 + 0.123456,
        updated_at=T0 + 9.875,
        payment_intent="pi_3Abc",
        card=Card(brand="visa", last4="4242", read_method="contactless_emv", wallet="google_pay", network="visa"),
        decline=Decline(
            code="card_declined", decline_code="insufficient_funds", message="Your card has insufficient funds."
        ),
        error=PaymentError(reason=Reason.STRIPE_REFUSED, message="declined twice"),
        captured_amount=17,
        capture_amount=2_000,
        capture_before=1_700_172_800,
        offline=True,
        attempts=3,
        receipt=Receipt(brand="visa", last4="4242", read_method="contactless_emv", authorization_code="123456"),
        tip=300,
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / "store.db")
    yield opened
    opened.close()


def insert(store: Store, payment: Payment, detail: str = "payment.start") -> Payment:
    with store.transaction():
        store.insert_payment(payment, detail)
    return payment


def move(store: Store, payment: Payment, state: State, at: float, detail: str, **changes: Any) -> Payment:
    after = payment.moved_to(state, at, **changes)
    with store.transaction():
        store.save_payment(payment, after, detail)
    return after


def files_in(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


# -- settings and schema --------------------------------------------------------------------


def test_a_fresh_store_is_at_the_latest_schema_in_wal_with_full_sync(tmp_path: Path) -> None:
    path = tmp_path / "state" / "readerhost" / "store.db"
    store = Store.open(path)
    try:
        assert path.is_file()
        assert path.parent.stat().st_mode & 0o077 == 0  # created for the daemon's user only
        assert store.pragma("user_version") == len(MIGRATIONS)
        assert store.pragma("journal_mode") == "wal"
        assert store.pragma("synchronous") == 2  # FULL: a commit is on the disk when it returns
        assert store.pragma("foreign_keys") == 1
        assert store.pragma("cache_size") == -CACHE_KIB  # bounded: SQLite's default is twice that
    finally:
        store.close()
    # What is recorded in the file itself, seen by another connection.
    other = sqlite3.connect(path)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert other.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    finally:
        other.close()


@pytest.mark.parametrize("name", ["synchronous=OFF", "journal_mode=DELETE", "user_version=0", "wal_checkpoint", ""])
def test_pragma_reads_only_a_few_settings_and_changes_nothing(store: Store, name: str) -> None:
    with pytest.raises(ValueError, match="not a readable pragma"):
        store.pragma(name)
    assert store.pragma("synchronous") == 2
    assert store.pragma("journal_mode") == "wal"
    assert store.pragma("user_version") == len(MIGRATIONS)


def test_the_schema_has_its_tables_and_whole_history_triggers(store: Store) -> None:
    other = sqlite3.connect(store.path)
    try:
        objects = dict(other.execute("SELECT name, type FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").fetchall())
        triggers = dict(other.execute("SELECT name, sql FROM sqlite_master WHERE type='trigger'").fetchall())
    finally:
        other.close()
    assert {name for name, kind in objects.items() if kind == "table"} == {
        "payments", "operations", "history", "readers", "refunds", "refund_history", "order_closures", "increments",
    }  # fmt: skip
    history = {
        "history_is_append_only_u", "history_is_append_only_d",
        "refund_history_is_append_only_u", "refund_history_is_append_only_d",
    }  # fmt: skip
    orders = {
        "no_attempt_of_a_closed_order", "no_closing_an_order_with_a_live_attempt",
        "order_closures_are_kept_u", "order_closures_are_kept_d",
    }  # fmt: skip
    assert set(triggers) == history | orders
    for name, sql in triggers.items():
        # Each trigger was created from its whole text, inner semicolon included.
        assert name in orders or "RAISE(ABORT, 'history is append-only');" in sql
        assert sql.rstrip().endswith("END")


def test_refund_history_is_append_only(store: Store) -> None:
    other = sqlite3.connect(store.path)
    try:
        other.execute("INSERT INTO payments (payment_id, order_id, request, state, created_at, updated_at)"
                      " VALUES ('pay_1', 'A', '{}', 'captured', 0, 0)")  # fmt: skip
        other.execute("INSERT INTO refunds (refund_id, payment_id, request, amount, state, at_reader, created_at,"
                      " updated_at) VALUES ('R-1', 'pay_1', '{}', 1, 'pending', 0, 0, 0)")  # fmt: skip
        other.execute("INSERT INTO refund_history (refund_id, at, to_state, detail) VALUES ('R-1', 0, 'pending', 'x')")
        for statement in ("UPDATE refund_history SET detail='y'", "DELETE FROM refund_history"):
            with pytest.raises(sqlite3.IntegrityError, match="history is append-only"):
                other.execute(statement)
    finally:
        other.close()


def test_payments_table_has_no_column_for_card_data(store: Store) -> None:
    other = sqlite3.connect(store.path)
    try:
        columns = [row[1] for row in other.execute("PRAGMA table_info(payments)")]
    finally:
        other.close()
    assert columns == [
        "payment_id", "order_id", "request", "state", "payment_intent", "card", "decline", "error",
        "captured_amount", "capture_amount", "capture_before", "offline", "attempts", "created_at", "updated_at",
        "receipt",  # what a receipt shows: last4 at most, never a card number
        "tip",
        "order_attempt",
        "incremented_to", "card_support",  # the raised hold, and what Stripe said the card allows
    ]  # fmt: skip


# -- payments -------------------------------------------------------------------------------


def test_every_field_of_a_payment_survives_insert_save_and_get(store: Store) -> None:
    payment = insert(store, full_payment())
    assert store.payment("pay_full") == payment
    assert store.payment_by_order("K-7.locker_12:b") == payment

    collecting = move(store, payment, State.COLLECTING, T0 + 20.5, "payment.collect_again", attempts=4, error=None)
    stored = store.payment("pay_full")
    assert stored == collecting
    assert stored is not None
    assert stored.error is None
    assert stored.request.metadata == {"locker": "12", "site": "Gare du Nord", "note": "ünïcode ✓"}

    # The card is kept as brand, last4, read method, wallet and network: nothing else reaches the file.
    other = sqlite3.connect(store.path)
    try:
        (card,) = other.execute("SELECT card FROM payments WHERE payment_id='pay_full'").fetchone()
    finally:
        other.close()
    assert json.loads(card) == {
        "brand": "visa",
        "last4": "4242",
        "read_method": "contactless_emv",
        "wallet": "google_pay",
        "network": "visa",
    }


def test_a_card_stored_before_wallet_and_network_were_kept_reads_back_without_them(store: Store) -> None:
    insert(store, full_payment())
    old_card = json.dumps({"brand": "visa", "last4": "4242", "read_method": "contact_emv"})
    other = sqlite3.connect(store.path)
    try:
        with other:
            other.execute("UPDATE payments SET card=? WHERE payment_id='pay_full'", (old_card,))
    finally:
        other.close()
    stored = store.payment("pay_full")
    assert stored is not None
    assert stored.card == Card("visa", "4242", "contact_emv")
    assert stored.to_json()["card"] == {
        "brand": "visa",
        "last4": "4242",
        "read_method": "contact_emv",
        "wallet": None,
        "network": None,
    }


def test_a_payment_with_no_optional_fields_survives_as_it_is(store: Store) -> None:
    payment = insert(store, make_payment())
    assert store.payment("pay_1") == payment
    assert store.payment("pay_unknown") is None
    assert store.payment_by_order("no-such-order") is None


def test_save_payment_refuses_when_the_stored_state_is_not_before(store: Store) -> None:
    created = insert(store, make_payment())
    collecting = move(store, created, State.COLLECTING, T0 + 1, "created")
    with pytest.raises(StorageError, match="changed underneath"), store.transaction():
        store.save_payment(created, created.moved_to(State.CANCELED, T0 + 2), "stale cancel")
    assert store.payment("pay_1") == collecting
    assert [h.to_state for h in store.history("pay_1")] == ["creating", "collecting"]


def test_save_payment_refuses_a_payment_that_is_not_stored(store: Store) -> None:
    ghost = make_payment("pay_ghost", "G-1")
    with pytest.raises(StorageError, match="pay_ghost"), store.transaction():
        store.save_payment(ghost, ghost.moved_to(State.COLLECTING, T0 + 1), "ghost")
    assert store.payment("pay_ghost") is None
    assert store.history("pay_ghost") == []


def test_a_second_payment_for_the_same_order_is_refused_and_nothing_is_written(store: Store) -> None:
    first = insert(store, make_payment("pay_1", "A-1"))
    with pytest.raises(StorageError, match="cannot be written"):
        insert(store, make_payment("pay_2", "A-1"))
    assert store.payment_by_order("A-1") == first
    assert store.payment("pay_2") is None
    assert store.history("pay_2") == []


def test_history_records_each_change_of_state_in_order(store: Store) -> None:
    payment = insert(store, make_payment(), "payment.start (1000 usd)")
    payment = move(store, payment, State.COLLECTING, T0 + 1, "PaymentIntent pi_1 created")
    payment = move(store, payment, State.PROCESSING, T0 + 2, "card presented", attempts=1)
    # A save that changes no state is not a history entry.
    payment = move(store, payment, State.PROCESSING, T0 + 3, "retrying", attempts=2)
    payment = move(store, payment, State.AUTHORIZED, T0 + 4, "requires_capture")
    insert(store, make_payment("pay_2", "A-2", created_at=T0 + 5))

    history = store.history("pay_1")
    assert [(h.from_state, h.to_state, h.at, h.detail) for h in history] == [
        (None, "creating", T0, "payment.start (1000 usd)"),
        ("creating", "collecting", T0 + 1, "PaymentIntent pi_1 created"),
        ("collecting", "processing", T0 + 2, "card presented"),
        ("processing", "authorized", T0 + 4, "requires_capture"),
    ]
    assert {h.payment_id for h in history} == {"pay_1"}
    seqs = [h.seq for h in history]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
    assert [h.to_state for h in store.history("pay_2")] == ["creating"]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE history SET to_state='captured'",
        "UPDATE history SET detail='rewritten' WHERE seq=1",
        "DELETE FROM history",
        "DELETE FROM history WHERE seq=2",
    ],
)
def test_history_is_append_only_even_for_another_connection(store: Store, statement: str) -> None:
    payment = insert(store, make_payment())
    move(store, payment, State.COLLECTING, T0 + 1, "created")
    before = store.history("pay_1")
    other = sqlite3.connect(store.path)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            other.execute(statement)
        other.rollback()
    finally:
        other.close()
    assert store.history("pay_1") == before


# -- the operations outbox ------------------------------------------------------------------


def test_an_operation_survives_add_save_and_get(store: Store) -> None:
    insert(store, make_payment())
    with store.transaction():
        op = store.add_operation("pay_1", "create", "readerhost:kiosk-1:A-1:create", {"metadata": {"a": "b"}}, T0)
    assert store.operation(op.op_id) == op
    assert (op.status, op.attempts, op.next_attempt_at, op.needs_truth) == (OpStatus.PENDING, 0, T0, False)

    sent = op.but(
        attempts=2,
        next_attempt_at=T0 + 30,
        key_first_sent_at=T0 + 1,
        needs_truth=True,
        last_error="timeout after 5 s",
        params={"metadata": {"a": "b"}, "amount": 1000},
        updated_at=T0 + 2,
    )
    with store.transaction():
        store.save_operation(sent)
    assert store.operation(op.op_id) == sent
    assert store.operations_of("pay_1") == [sent]
    assert store.operation(op.op_id + 1000) is None


def test_an_idempotency_key_is_stored_once_and_an_operation_needs_its_payment(store: Store) -> None:
    insert(store, make_payment())
    with store.transaction():
        first = store.add_operation("pay_1", "create", "key-1", {}, T0)
    with pytest.raises(StorageError), store.transaction():
        store.add_operation("pay_1", "create", "key-1", {}, T0 + 1)
    with pytest.raises(StorageError), store.transaction():
        store.add_operation("pay_unknown", "create", "key-2", {}, T0 + 1)
    assert store.operations_of("pay_1") == [first]
    assert store.operations_of("pay_unknown") == []


def test_next_operations_gives_each_payments_oldest_pending_op_soonest_due_first(store: Store) -> None:
    for number in (1, 2, 3, 4):
        insert(store, make_payment(f"pay_{number}", f"A-{number}", created_at=T0 + number))
    with store.transaction():
        create_1 = store.add_operation("pay_1", "create", "k1c", {}, T0 + 10)
        capture_1 = store.add_operation("pay_1", "capture", "k1p", {}, T0 + 11)
        create_2 = store.add_operation("pay_2", "create", "k2c", {}, T0 + 5)
        done_3 = store.add_operation("pay_3", "create", "k3c", {}, T0 + 1)
        store.add_operation("pay_4", "create", "k4c", {}, T0 + 20)
    with store.transaction():
        store.save_operation(done_3.but(status=OpStatus.DONE, updated_at=T0 + 2))
        # pay_4's only op is given up: it has nothing to do.
        store.save_operation(store.operations_of("pay_4")[0].but(status=OpStatus.FAILED, updated_at=T0 + 21))

    assert [op.op_id for op in store.next_operations()] == [create_2.op_id, create_1.op_id]

    # A newer op due sooner still waits for its payment's older one.
    with store.transaction():
        store.save_operation(create_1.but(next_attempt_at=T0 + 50))
        store.save_operation(capture_1.but(next_attempt_at=T0))
    assert [op.op_id for op in store.next_operations()] == [create_2.op_id, create_1.op_id]

    with store.transaction():
        store.save_operation(create_1.but(status=OpStatus.DONE, updated_at=T0 + 51))
        store.save_operation(create_2.but(status=OpStatus.DROPPED, updated_at=T0 + 51))
    assert [op.op_id for op in store.next_operations()] == [capture_1.op_id]
    assert store.next_operations()[0].next_attempt_at == T0


def test_queue_stats_counts_pending_ops_and_offline_totals_by_currency(store: Store) -> None:
    assert store.queue_stats() == QueueStats(pending=0, oldest_created_at=None, offline_count=0)
    insert(store, make_payment("pay_1", "A-1", state=State.QUEUED_OFFLINE, amount=1000, currency="usd", offline=True))
    insert(store, make_payment("pay_2", "A-2", state=State.QUEUED_OFFLINE, amount=250, currency="usd", offline=True))
    insert(store, make_payment("pay_3", "A-3", state=State.QUEUED_OFFLINE, amount=700, currency="eur", offline=True))
    # Forwarded already (authorised offline, then online): not queued any more.
    insert(store, make_payment("pay_4", "A-4", state=State.AUTHORIZED, amount=5000, currency="usd", offline=True))
    with store.transaction():
        store.add_operation("pay_1", "forward", "k1", {}, T0 + 30)
        store.add_operation("pay_2", "forward", "k2", {}, T0 + 20)
        done = store.add_operation("pay_4", "create", "k4", {}, T0 + 10)
        store.save_operation(done.but(status=OpStatus.DONE, updated_at=T0 + 11))

    assert store.queue_stats() == QueueStats(
        pending=2,
        oldest_created_at=T0 + 20,
        offline_count=3,
        offline_amount_by_currency={"usd": 1250, "eur": 700},
    )


# -- listing --------------------------------------------------------------------------------


def test_payments_lists_newest_first_filtered_by_states_and_since_with_a_limit(store: Store) -> None:
    states = [State.CAPTURED, State.CANCELED, State.AUTHORIZED, State.CAPTURED, State.COLLECTING]
    for number, state in enumerate(states):
        insert(store, make_payment(f"pay_{number}", f"A-{number}", state=state, created_at=T0 + number))
    # Created at the same instant as pay_4, stored after it: listed before it.
    insert(store, make_payment("pay_5", "A-5", state=State.FAILED, created_at=T0 + 4))

    def ids(payments: list[Payment]) -> list[str]:
        return [p.payment_id for p in payments]

    assert ids(store.payments()) == ["pay_5", "pay_4", "pay_3", "pay_2", "pay_1", "pay_0"]
    assert ids(store.payments(limit=2)) == ["pay_5", "pay_4"]
    assert ids(store.payments(states=[State.CAPTURED])) == ["pay_3", "pay_0"]
    assert ids(store.payments(states=[State.CAPTURED, State.CANCELED])) == ["pay_3", "pay_1", "pay_0"]
    assert ids(store.payments(since=T0 + 2)) == ["pay_5", "pay_4", "pay_3", "pay_2"]  # since is inclusive
    assert ids(store.payments(states=[State.CAPTURED], since=T0 + 1)) == ["pay_3"]
    assert ids(store.payments(states=[State.CAPTURED, State.CANCELED, State.FAILED], since=T0 + 1, limit=2)) == [
        "pay_5",
        "pay_3",
    ]
    assert store.payments(states=[State.QUEUED_OFFLINE]) == []
    assert store.payments(since=T0 + 100) == []


def test_every_read_of_a_payment_carries_its_refunds_increments_and_its_orders_closure(store: Store) -> None:
    # A payment with none of them beside ones with each: each read (by id, PaymentIntent, order,
    # order's attempts, list) gives every payment with exactly what is its own.
    plain = insert(store, make_payment("pay_plain", "A-1", state=State.CAPTURED, payment_intent="pi_plain"))
    refunded = insert(store, make_payment("pay_refunded", "A-2", state=State.CAPTURED, payment_intent="pi_refunded"))
    raised = insert(store, make_payment("pay_raised", "A-3", state=State.AUTHORIZED, payment_intent="pi_raised"))
    given_up = insert(store, make_payment("pay_given_up", "A-4", state=State.CANCELED, payment_intent="pi_given_up"))
    refunds = [
        Refund(
            RefundRequest(f"rf_{n}", "pay_refunded", 100, None, False),
            100,
            RefundState.SUCCEEDED,
            T0 + n,
            T0 + n,
            False,
        )
        for n in (1, 2)
    ]
    increment = Increment(IncrementRequest("inc_1", "pay_raised", 1500), IncrementState.SUCCEEDED, T0, T0)
    closure = OrderClosure("A-4", PaidBy.OTHER, T0 + 5)
    with store.transaction():
        for refund in refunds:
            store.insert_refund(refund, "payment.refund")
        store.insert_increment(increment)
        store.close_order(closure)
    expected = {
        "pay_plain": plain,
        "pay_refunded": replace(refunded, refunds=tuple(refunds)),
        "pay_raised": replace(raised, increments=(increment,)),
        "pay_given_up": replace(given_up, closed_by=PaidBy.OTHER),
    }

    for payment_id, payment in expected.items():
        assert store.payment(payment_id) == payment
        assert store.payment_by_intent(payment.payment_intent or "") == payment
        assert store.payment_by_order(payment.order_id) == payment
        assert store.order_payments(payment.order_id) == [payment]
    assert {p.payment_id: p for p in store.payments()} == expected
    assert store.payments(states=[State.CANCELED]) == [expected["pay_given_up"]]
    assert store.payment("pay_none") is None
    assert store.payment_by_intent("pi_none") is None


# -- files it refuses, and files it keeps ---------------------------------------------------


def test_reopening_a_store_keeps_its_data_and_its_settings(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    store = Store.open(path)
    payment = insert(store, full_payment())
    payment = move(store, payment, State.COLLECTING, T0 + 20, "collect again")
    with store.transaction():
        op = store.add_operation("pay_full", "confirm", "pay_full:confirm:2", {"payment_method": "pm_1"}, T0 + 21)
    history = store.history("pay_full")
    store.close()

    again = Store.open(path)
    try:
        assert again.payment("pay_full") == payment
        assert again.operations_of("pay_full") == [op]
        assert again.history("pay_full") == history
        assert again.pragma("user_version") == len(MIGRATIONS)
        assert again.pragma("synchronous") == 2  # set again on every connection, not kept in the file
        assert again.pragma("journal_mode") == "wal"
    finally:
        again.close()


def test_a_store_from_a_newer_readerhost_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    store = Store.open(path)
    insert(store, make_payment())
    store.close()
    newer = sqlite3.connect(path)
    newer.execute("PRAGMA user_version = 99")
    newer.commit()
    newer.close()
    before = files_in(tmp_path)

    with pytest.raises(StorageError, match="newer"):
        Store.open(path)
    assert files_in(tmp_path) == before


def test_a_newer_store_in_rollback_journal_mode_is_left_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    newer = sqlite3.connect(path)
    newer.execute("CREATE TABLE payments_v99 (payment_id TEXT PRIMARY KEY)")
    newer.execute("PRAGMA user_version = 99")
    newer.commit()
    newer.close()
    before = files_in(tmp_path)

    with pytest.raises(StorageError, match="newer"):
        Store.open(path)
    assert files_in(tmp_path) == before


def test_a_truncated_store_is_refused_and_not_started_over(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    path.write_bytes(b"")
    with pytest.raises(StorageError, match="empty"):
        Store.open(path)
    assert files_in(tmp_path) == {"store.db": b""}


def test_a_garbage_file_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    path.write_bytes(random.Random(1234).randbytes(3 * 4096 + 17))
    before = files_in(tmp_path)
    with pytest.raises(StorageError, match="cannot be read"):
        Store.open(path)
    assert files_in(tmp_path) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions, so nothing is read-only to it")
@pytest.mark.parametrize(("file_mode", "directory_mode"), [(0o444, 0o555), (0o444, 0o755), (0o644, 0o555)])
def test_a_read_only_store_is_refused_with_a_clear_error(tmp_path: Path, file_mode: int, directory_mode: int) -> None:
    directory = tmp_path / "state"
    path = directory / "store.db"
    store = Store.open(path)
    insert(store, make_payment())
    store.close()

    def open_and_write() -> None:
        # Opening a read-only store may be refused at once, or only at its first write.
        reopened = Store.open(path)
        try:
            insert(reopened, make_payment("pay_2", "A-2"))
        finally:
            reopened.close()

    path.chmod(file_mode)
    directory.chmod(directory_mode)
    try:
        with pytest.raises(StorageError, match=rf"the store {re.escape(str(path))} cannot be .*readonly"):
            open_and_write()
    finally:
        directory.chmod(0o700)
        path.chmod(0o600)
    again = Store.open(path)
    try:
        assert [p.payment_id for p in again.payments()] == ["pay_1"]
    finally:
        again.close()


def test_a_store_of_the_first_schema_is_migrated_with_its_payments_untipped(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    try:
        old.executescript(MIGRATIONS[0])
        request = {
            "order_id": "OLD-1", "amount": 900, "currency": "usd", "description": None, "metadata": {},
            "capture": "manual", "confirm": False, "offline": "require_online", "payment_intent_client_secret": None,
        }  # fmt: skip
        with old:
            old.execute(
                "INSERT INTO payments (payment_id, order_id, request, state, created_at, updated_at)"
                " VALUES ('pay_old', 'OLD-1', ?, 'authorized', ?, ?)",
                (json.dumps(request), T0, T0),
            )
            old.execute("PRAGMA user_version=1")
    finally:
        old.close()
    store = Store.open(path)
    try:
        assert store.pragma("user_version") == len(MIGRATIONS)
        payment = store.payment("pay_old")
        assert payment is not None
        assert (payment.tip, payment.request.tipping, payment.authorised_amount) == (0, None, 900)
        assert payment.to_json()["tip"] == 0
    finally:
        store.close()
