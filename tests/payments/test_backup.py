"""Backups of the store: consistent while another process writes, checked, atomic; restores that
never forget work for Stripe unless forced, and never replace a store a daemon holds."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from readerhost.daemon.payments.backup import BackupError, backup, inspect, restore
from readerhost.daemon.payments.model import OpStatus, Payment, PaymentRequest, State
from readerhost.daemon.payments.store import StorageError, Store, StoreInUse

T0 = 1_700_000_000.0


def payment(number: int, state: State = State.CAPTURED) -> Payment:
    request = PaymentRequest(order_id=f"B-{number}", amount=100 + number, currency="usd")
    return Payment(f"pay_{number}", request, state, created_at=T0 + number, updated_at=T0 + number)


def store_with(path: Path, *payments: Payment, pending_op: bool = False) -> None:
    store = Store.open(path)
    try:
        with store.transaction():
            for one in payments:
                store.insert_payment(one, "test")
            if pending_op:
                store.add_operation(payments[0].payment_id, "capture", f"{payments[0].payment_id}:capture", {}, T0)
    finally:
        store.close()


def payment_ids(path: Path) -> set[str]:
    with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as db:
        return {row[0] for row in db.execute("SELECT payment_id FROM payments")}


# -- the lock ----------------------------------------------------------------------------------


def test_a_second_store_on_the_same_file_is_refused_and_the_first_keeps_working(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    first = Store.open(path)
    try:
        with pytest.raises(StoreInUse, match="in use by another process"):
            Store.open(path)
        with first.transaction():
            first.insert_payment(payment(1), "still the writer")
        assert first.payment("pay_1") is not None
    finally:
        first.close()
    Store.open(path).close()  # released with the first


# -- backup ------------------------------------------------------------------------------------


def test_a_backup_holds_what_the_store_held_and_is_one_self_contained_file(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    store_with(path, payment(1), payment(2, State.AUTHORIZED), pending_op=True)
    target = tmp_path / "copy.db"

    summary = backup(path, target)

    assert (summary.payments, summary.unsettled, summary.pending_operations) == (2, 1, 1)
    assert payment_ids(target) == {"pay_1", "pay_2"}
    assert sorted(file.name for file in tmp_path.iterdir()) == ["copy.db", "store.db"]  # no -wal, no partial file
    with sqlite3.connect(target) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    reopened = Store.open(target)  # a backup is a store the daemon can open
    try:
        assert reopened.payment("pay_2") == payment(2, State.AUTHORIZED)
    finally:
        reopened.close()


def _write_payments(path: str, started: multiprocessing.synchronize.Event, count: int) -> None:
    store = Store.open(Path(path))
    try:
        for number in range(count):
            with store.transaction():
                store.insert_payment(payment(1000 + number), "written during the backup")
                store.add_operation(f"pay_{1000 + number}", "capture", f"k{number}", {}, T0)
            started.set()
    finally:
        store.close()


def test_a_backup_taken_while_another_process_writes_is_one_consistent_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    store_with(path, payment(1))
    context = multiprocessing.get_context("spawn")
    started = context.Event()
    writer = context.Process(target=_write_payments, args=(str(path), started, 3000))
    writer.start()
    try:
        assert started.wait(30)
        copies = [backup(path, tmp_path / f"copy-{n}.db") for n in range(5)]
    finally:
        writer.join(60)
    assert writer.exitcode == 0
    for n, summary in enumerate(copies):
        copy = tmp_path / f"copy-{n}.db"
        with sqlite3.connect(copy) as db:
            payments = db.execute("SELECT count(*) FROM payments").fetchone()[0]
            ops = db.execute("SELECT count(*) FROM operations").fetchone()[0]
        # Each payment was written with its operation in one transaction: a snapshot has both or neither.
        assert payments == ops + 1 == summary.payments
    assert copies[-1].payments >= copies[0].payments


def test_a_backup_replaces_an_older_backup_atomically(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    target = tmp_path / "copy.db"
    store_with(path, payment(1))
    backup(path, target)
    store_with(path, payment(2))
    backup(path, target)
    assert payment_ids(target) == {"pay_1", "pay_2"}


@pytest.mark.parametrize(
    ("name", "expected"),
    [("missing.db", "there is no store"), ("store.db", "is the store itself"), ("nowhere/copy.db", "does not exist")],
)
def test_a_backup_that_cannot_be_made_says_why_and_changes_nothing(tmp_path: Path, name: str, expected: str) -> None:
    path = tmp_path / "store.db"
    store_with(path, payment(1))
    source = tmp_path / "missing.db" if name == "missing.db" else path
    target = tmp_path / "copy.db" if name == "missing.db" else tmp_path / name
    before = sorted(file.name for file in tmp_path.iterdir())
    with pytest.raises(BackupError, match=expected):
        backup(source, target)
    assert sorted(file.name for file in tmp_path.iterdir()) == before


def test_a_file_that_is_not_a_store_is_not_taken_for_one(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE notes (text TEXT)")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not sqlite at all" * 300)
    with pytest.raises(BackupError, match="not a readerhost store"):
        inspect(other)
    with pytest.raises(BackupError, match="not a readerhost store"):
        inspect(garbage)


# -- restore -----------------------------------------------------------------------------------


def test_a_restore_over_a_settled_store_puts_the_backup_in_place_and_keeps_the_old_store(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    store_with(path, payment(1))
    backup(path, tmp_path / "copy.db")
    store_with(path, payment(2))  # written after the backup: kept aside by the restore
    path.chmod(0o640)

    restored = restore(tmp_path / "copy.db", path)

    assert payment_ids(path) == {"pay_1"}
    assert restored.kept_as is not None
    assert payment_ids(restored.kept_as) == {"pay_1", "pay_2"}
    assert restored.replaced is not None
    assert restored.replaced.payments == 2
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # the daemon's file mode is kept
    store = Store.open(path)  # and the daemon opens it, in write-ahead-log mode again
    try:
        assert store.pragma("journal_mode") == "wal"
    finally:
        store.close()


def test_a_restore_over_a_store_with_work_for_stripe_is_refused_unless_forced(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    store_with(path, payment(1))
    backup(path, tmp_path / "copy.db")
    store_with(path, payment(2, State.AUTHORIZED), pending_op=True)
    before = {file.name: file.read_bytes() for file in tmp_path.iterdir()}

    with pytest.raises(BackupError, match=r"still has work for Stripe \(2 payments, 1 not settled, 1 operations"):
        restore(tmp_path / "copy.db", path)
    assert {file.name: file.read_bytes() for file in tmp_path.iterdir()} == before

    restored = restore(tmp_path / "copy.db", path, force=True)
    assert payment_ids(path) == {"pay_1"}
    assert restored.kept_as is not None
    assert payment_ids(restored.kept_as) == {"pay_1", "pay_2"}


def test_a_restore_while_a_daemon_holds_the_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    store_with(path, payment(1))
    backup(path, tmp_path / "copy.db")
    holder = Store.open(path)
    try:
        with pytest.raises(StorageError, match="in use by another process"):
            restore(tmp_path / "copy.db", path, force=True)
        assert holder.payment("pay_1") is not None
    finally:
        holder.close()


def test_a_restore_where_there_is_no_store_yet_makes_it(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    store_with(path, replace(payment(1), state=State.CANCELED))
    backup(path, tmp_path / "copy.db")
    fresh = tmp_path / "new" / "store.db"
    restored = restore(tmp_path / "copy.db", fresh)
    assert restored.kept_as is None
    assert payment_ids(fresh) == {"pay_1"}
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600


def test_a_pending_operation_counts_only_while_it_is_pending(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    store_with(path, payment(1), pending_op=True)
    store = Store.open(path)
    try:
        (op,) = store.operations_of("pay_1")
        with store.transaction():
            store.save_operation(op.but(status=OpStatus.DONE))
    finally:
        store.close()
    assert inspect(path).pending_operations == 0
    assert not inspect(path).has_work_for_stripe
    assert os.path.exists(path)


def test_inspecting_a_store_no_daemon_holds_leaves_no_file_beside_it(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    store_with(path, payment(1, State.AUTHORIZED))
    before = sorted(tmp_path.iterdir())

    summary = inspect(path)

    assert (summary.payments, summary.unsettled) == (1, 1)
    assert sorted(tmp_path.iterdir()) == before  # no -wal or -shm left, perhaps owned by root


def test_inspecting_a_store_a_daemon_holds_reads_its_newest_writes_and_leaves_its_files(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    store = Store.open(path)
    try:
        with store.transaction():
            store.insert_payment(payment(1, State.AUTHORIZED), "not yet checkpointed")
        beside = {path.with_name("store.db-wal"), path.with_name("store.db-shm")}
        assert beside <= set(tmp_path.iterdir())

        summary = inspect(path)

        assert (summary.payments, summary.unsettled) == (1, 1)
        assert beside <= set(tmp_path.iterdir())  # the daemon's own
        with store.transaction():
            store.insert_payment(payment(2), "the daemon writes on")
    finally:
        store.close()
    assert inspect(path).payments == 2
