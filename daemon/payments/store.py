"""The durable record: payments, their refunds, the operations outbox and the history of every state change.

One SQLite file (WAL, synchronous=FULL: a commit is on the disk when it returns), one writer:
the daemon opens one Store and uses it from one thread, holding an exclusive flock(2) on the file
while it is open, so that a second daemon, or a restore, cannot take it over. It also keeps the
reader a driver registered at Stripe (`readers`), so that a restart uses it again. Schema changes
are numbered migrations recorded in `PRAGMA user_version`; a file newer than this code is refused,
never rewritten.
Card numbers and secrets never reach it: a card is brand, last4 and read method, and a payment
method is the reader's opaque reference.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .model import (
    CaptureMode,
    Card,
    CardSupport,
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

MIGRATIONS: tuple[str, ...] = (
    # 1: the first schema
    """
    CREATE TABLE payments (
        payment_id      TEXT PRIMARY KEY,
        order_id        TEXT NOT NULL UNIQUE,
        request         TEXT NOT NULL,
        state           TEXT NOT NULL,
        payment_intent  TEXT,
        card            TEXT,
        decline         TEXT,
        error           TEXT,
        captured_amount INTEGER NOT NULL DEFAULT 0,
        capture_amount  INTEGER,
        capture_before  INTEGER,
        offline         INTEGER NOT NULL DEFAULT 0,
        attempts        INTEGER NOT NULL DEFAULT 0,
        created_at      REAL NOT NULL,
        updated_at      REAL NOT NULL
    );
    CREATE INDEX payments_by_state ON payments(state);
    CREATE INDEX payments_by_created ON payments(created_at);
    CREATE TABLE operations (
        op_id           INTEGER PRIMARY KEY AUTOINCREMENT,
        payment_id      TEXT NOT NULL REFERENCES payments(payment_id),
        kind            TEXT NOT NULL,
        idempotency_key TEXT NOT NULL UNIQUE,
        params          TEXT NOT NULL,
        status          TEXT NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        key_first_sent_at REAL,
        needs_truth     INTEGER NOT NULL DEFAULT 0,
        last_error      TEXT,
        created_at      REAL NOT NULL,
        updated_at      REAL NOT NULL
    );
    CREATE INDEX operations_pending ON operations(status, next_attempt_at);
    CREATE TABLE history (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        payment_id  TEXT NOT NULL REFERENCES payments(payment_id),
        at          REAL NOT NULL,
        from_state  TEXT,
        to_state    TEXT NOT NULL,
        detail      TEXT NOT NULL
    );
    CREATE INDEX history_by_payment ON history(payment_id, seq);
    CREATE TRIGGER history_is_append_only_u BEFORE UPDATE ON history
        BEGIN SELECT RAISE(ABORT, 'history is append-only'); END;
    CREATE TRIGGER history_is_append_only_d BEFORE DELETE ON history
        BEGIN SELECT RAISE(ABORT, 'history is append-only'); END;
    """,
    # 2: the receipt data of a payment's charge; the reader each driver registered at Stripe
    """
    ALTER TABLE payments ADD COLUMN receipt TEXT;
    CREATE TABLE readers (
        driver          TEXT PRIMARY KEY,
        reader_id       TEXT NOT NULL,
        location        TEXT,
        registered_at   REAL NOT NULL
    );
    """,
    # 3: the tip a customer added on a smart reader
    """
    ALTER TABLE payments ADD COLUMN tip INTEGER NOT NULL DEFAULT 0;
    """,
    # 4: refunds, each with its own history (a refund's outbox operations are its payment's)
    """
    CREATE TABLE refunds (
        refund_id       TEXT PRIMARY KEY,
        payment_id      TEXT NOT NULL REFERENCES payments(payment_id),
        request         TEXT NOT NULL,
        amount          INTEGER NOT NULL,
        state           TEXT NOT NULL,
        at_reader       INTEGER NOT NULL,
        stripe_refund   TEXT,
        error           TEXT,
        created_at      REAL NOT NULL,
        updated_at      REAL NOT NULL
    );
    CREATE INDEX refunds_by_payment ON refunds(payment_id, created_at);
    CREATE INDEX refunds_by_state ON refunds(state);
    CREATE TABLE refund_history (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        refund_id   TEXT NOT NULL REFERENCES refunds(refund_id),
        at          REAL NOT NULL,
        from_state  TEXT,
        to_state    TEXT NOT NULL,
        detail      TEXT NOT NULL
    );
    CREATE INDEX refund_history_by_refund ON refund_history(refund_id, seq);
    CREATE TRIGGER refund_history_is_append_only_u BEFORE UPDATE ON refund_history
        BEGIN SELECT RAISE(ABORT, 'history is append-only'); END;
    CREATE TRIGGER refund_history_is_append_only_d BEFORE DELETE ON refund_history
        BEGIN SELECT RAISE(ABORT, 'history is append-only'); END;
    """,
    # 5: orders paid again. A payment is an attempt of its order (order_attempt), so order_id is no
    # longer UNIQUE: the table is rebuilt as SQLite documents (https://www.sqlite.org/lang_altertable.html,
    # "other kinds of table schema changes"), every row and column kept, with foreign keys off (_migrate).
    # The store itself holds "at most one live or successful attempt per order" (a partial unique
    # index) and "nothing after an order was closed as paid another way" (order_closures, triggers).
    # A migration that adds a column to payments must come after this one, or be listed here.
    """
    CREATE TABLE payments_attempts (
        payment_id      TEXT PRIMARY KEY,
        order_id        TEXT NOT NULL,
        request         TEXT NOT NULL,
        state           TEXT NOT NULL,
        payment_intent  TEXT,
        card            TEXT,
        decline         TEXT,
        error           TEXT,
        captured_amount INTEGER NOT NULL DEFAULT 0,
        capture_amount  INTEGER,
        capture_before  INTEGER,
        offline         INTEGER NOT NULL DEFAULT 0,
        attempts        INTEGER NOT NULL DEFAULT 0,
        created_at      REAL NOT NULL,
        updated_at      REAL NOT NULL,
        receipt         TEXT,
        tip             INTEGER NOT NULL DEFAULT 0,
        order_attempt   INTEGER NOT NULL DEFAULT 1 CHECK (order_attempt >= 1)
    );
    INSERT INTO payments_attempts (payment_id, order_id, request, state, payment_intent, card, decline, error,
        captured_amount, capture_amount, capture_before, offline, attempts, created_at, updated_at, receipt, tip,
        order_attempt)
        SELECT payment_id, order_id, request, state, payment_intent, card, decline, error, captured_amount,
        capture_amount, capture_before, offline, attempts, created_at, updated_at, receipt, tip, 1 FROM payments;
    DROP TABLE payments;
    ALTER TABLE payments_attempts RENAME TO payments;
    CREATE INDEX payments_by_state ON payments(state);
    CREATE INDEX payments_by_created ON payments(created_at);
    CREATE UNIQUE INDEX payments_attempt_of_order ON payments(order_id, order_attempt);
    CREATE UNIQUE INDEX payments_one_live_attempt_per_order ON payments(order_id)
        WHERE state NOT IN ('canceled', 'failed');
    CREATE TABLE order_closures (
        order_id        TEXT PRIMARY KEY,
        paid_by         TEXT NOT NULL,
        closed_at       REAL NOT NULL
    );
    CREATE TRIGGER no_attempt_of_a_closed_order BEFORE INSERT ON payments
        WHEN EXISTS (SELECT 1 FROM order_closures WHERE order_id = NEW.order_id)
        BEGIN SELECT RAISE(ABORT, 'the order was closed as paid another way'); END;
    CREATE TRIGGER no_closing_an_order_with_a_live_attempt BEFORE INSERT ON order_closures
        WHEN EXISTS (SELECT 1 FROM payments WHERE order_id = NEW.order_id AND state NOT IN ('canceled', 'failed'))
        BEGIN SELECT RAISE(ABORT, 'the order has a live or successful attempt'); END;
    CREATE TRIGGER order_closures_are_kept_u BEFORE UPDATE ON order_closures
        BEGIN SELECT RAISE(ABORT, 'an order closure is kept as it was made'); END;
    CREATE TRIGGER order_closures_are_kept_d BEFORE DELETE ON order_closures
        BEGIN SELECT RAISE(ABORT, 'an order closure is kept as it was made'); END;
    """,
    # 6: flexible authorisations: what the card allows, the hold after increments, and the increments
    """
    ALTER TABLE payments ADD COLUMN incremented_to INTEGER;
    ALTER TABLE payments ADD COLUMN card_support TEXT;
    CREATE TABLE increments (
        increment_id    TEXT PRIMARY KEY,
        payment_id      TEXT NOT NULL REFERENCES payments(payment_id),
        amount          INTEGER NOT NULL,
        state           TEXT NOT NULL,
        decline         TEXT,
        error           TEXT,
        created_at      REAL NOT NULL,
        updated_at      REAL NOT NULL
    );
    CREATE INDEX increments_by_payment ON increments(payment_id, created_at);
    """,
)


# Settings Store.pragma may read: each is a plain query without an argument, which changes nothing.
_READABLE_PRAGMAS = frozenset(
    {"journal_mode", "synchronous", "foreign_keys", "user_version", "busy_timeout", "cache_size"}
)
# SQLite's page cache, in KiB (negative: a size, not pages): the hot pages (the outbox, the latest
# payments) fit; a page of an older listing is read again from the kernel's cache. SQLite's default
# is 2 MiB, resident for good once a long run has filled it.
CACHE_KIB = 1024

# A payment's row, then how its order was closed (if it was) and whether it has refunds, increments:
# Store._read_payments reads those of most payments (none) in this one statement.
_SELECT_PAYMENTS = (
    "SELECT payments.*,"
    " (SELECT paid_by FROM order_closures WHERE order_closures.order_id = payments.order_id),"
    " EXISTS (SELECT 1 FROM refunds WHERE refunds.payment_id = payments.payment_id),"
    " EXISTS (SELECT 1 FROM increments WHERE increments.payment_id = payments.payment_id)"
    " FROM payments "
)


class StorageError(Exception):
    """The store cannot be used: full, read-only, corrupt, or from a newer readerhost."""


class StoreInUse(StorageError):
    """Another process holds the store (a running readerhostd)."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"the store {path} is in use by another process (a running readerhostd? "
            "`systemctl stop readerhost` first); it is left as it is"
        )


@dataclass(frozen=True)
class Operation:
    op_id: int
    payment_id: str
    kind: str
    idempotency_key: str
    params: dict[str, Any]
    status: OpStatus
    attempts: int
    next_attempt_at: float
    created_at: float
    updated_at: float
    key_first_sent_at: float | None = None
    needs_truth: bool = False
    last_error: str | None = None

    def but(self, **changes: Any) -> Operation:
        return replace(self, **changes)


@dataclass(frozen=True)
class HistoryEntry:
    seq: int
    payment_id: str
    at: float
    from_state: str | None
    to_state: str
    detail: str


@dataclass(frozen=True)
class RegisteredReader:
    """A reader a driver registered at Stripe with a registration code: used again at the next start."""

    driver: str
    reader_id: str
    location: str | None
    registered_at: float


@dataclass(frozen=True)
class RefundHistoryEntry:
    seq: int
    refund_id: str
    at: float
    from_state: str | None
    to_state: str
    detail: str


@dataclass(frozen=True)
class QueueStats:
    pending: int
    oldest_created_at: float | None
    offline_count: int = 0
    offline_amount_by_currency: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Census:
    """How many payments and refunds are in each state, and operations pending of each kind."""

    payments: dict[State, int]
    refunds: dict[RefundState, int]
    pending_operations: dict[str, int]


class Store:
    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._db = connection
        self.path = path
        self._lock_fd: int | None = None
        self._column_names: dict[str, list[str]] = {}

    @classmethod
    def open(cls, path: Path) -> Store:
        """Open (or create) the store at `path`, migrating an older schema in place."""
        existed = path.exists()
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            connection = sqlite3.connect(path, isolation_level=None, timeout=5.0)
        except (OSError, sqlite3.Error) as error:
            raise StorageError(f"cannot open the store {path}: {error}") from error
        store = cls(connection, path)
        try:
            store._lock_fd = lock_exclusively(path)  # the file exists now: connect made it
            if existed and path.stat().st_size == 0:
                raise StorageError(f"the store {path} is empty (truncated?): refusing to start over")
            store._refuse_newer_schema()  # before anything writes to a file we do not understand
            store._configure()
            store._check_writable()
            store._migrate()
        except sqlite3.DatabaseError as error:
            store.close()
            unwritable = _why_unwritable(path.parent)
            if unwritable:  # SQLite says only "unable to open database file": say what is wrong
                raise StorageError(f"the store {path} cannot be written: {unwritable}; it is kept as it is") from error
            raise StorageError(f"the store {path} cannot be read ({error}); it is kept as it is") from error
        except StorageError:
            store.close()
            raise
        return store

    def _refuse_newer_schema(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise StorageError(
                f"the store {self.path} has schema version {version}, newer than this readerhost "
                f"understands ({len(MIGRATIONS)}): upgrade readerhost"
            )

    def _check_writable(self) -> None:
        """Fail at start, not at the first payment, when the store cannot take a write."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("ROLLBACK")
        except sqlite3.OperationalError as error:
            raise StorageError(f"the store {self.path} cannot be written: {error}") from error

    def _configure(self) -> None:
        mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            raise StorageError(f"the store {self.path} cannot use write-ahead logging (got {mode})")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        check = self._db.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise StorageError(f"the store {self.path} is damaged: {check}")

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version == len(MIGRATIONS):
            return
        # A migration may rebuild a table others refer to: foreign keys are off meanwhile (the pragma
        # is a no-op inside a transaction) and checked before each commit, as SQLite documents.
        self._db.execute("PRAGMA foreign_keys=OFF")
        try:
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                with self.transaction():
                    for statement in _statements(script):
                        self._db.execute(statement)
                    broken = self._db.execute("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise StorageError(f"migration {number} of {self.path} would break references: {broken[:3]}")
                    self._db.execute(f"PRAGMA user_version={number}")
        finally:
            self._db.execute("PRAGMA foreign_keys=ON")

    def close(self) -> None:
        self._db.close()
        # Only after the connection: closing any descriptor of the file would drop SQLite's own
        # POSIX locks while a connection still used them.
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def pragma(self, name: str) -> object:
        """The current value of one of a few settings of this store's connection, for diagnostics and tests."""
        if name not in _READABLE_PRAGMAS:
            raise ValueError(f"not a readable pragma: {name!r}")
        return self._db.execute(f"PRAGMA {name}").fetchone()[0]

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic, durable change: BEGIN IMMEDIATE ... COMMIT, or nothing at all."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            raise StorageError(f"the store {self.path} cannot be written: {error}") from error
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException as error:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            if isinstance(error, sqlite3.Error):
                raise StorageError(f"the store {self.path} cannot be written: {error}") from error
            raise

    # -- payments -----------------------------------------------------------------------------

    def insert_payment(self, payment: Payment, detail: str) -> None:
        self._db.execute(
            "INSERT INTO payments (payment_id, order_id, order_attempt, request, state, payment_intent, card, decline,"
            " error, captured_amount, capture_amount, capture_before, offline, attempts, created_at, updated_at,"
            " receipt, tip, incremented_to, card_support) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
            " ?, ?)",
            (payment.payment_id, payment.order_id, payment.order_attempt, *_payment_columns(payment)),
        )
        self._record(payment.payment_id, payment.created_at, None, payment.state, detail)

    def save_payment(self, before: Payment, after: Payment, detail: str) -> None:
        """Write `after` over `before`, recording the change of state (if any) in the history."""
        cursor = self._db.execute(
            "UPDATE payments SET request=?, state=?, payment_intent=?, card=?, decline=?, error=?,"
            " captured_amount=?, capture_amount=?, capture_before=?, offline=?, attempts=?, created_at=?,"
            " updated_at=?, receipt=?, tip=?, incremented_to=?, card_support=? WHERE payment_id=? AND state=?",
            (*_payment_columns(after), after.payment_id, before.state.value),
        )
        if cursor.rowcount != 1:
            raise StorageError(f"payment {after.payment_id} changed underneath (expected state {before.state})")
        if after.state != before.state:
            self._record(after.payment_id, after.updated_at, before.state, after.state, detail)

    def _record(self, payment_id: str, at: float, before: State | None, after: State, detail: str) -> None:
        self._db.execute(
            "INSERT INTO history (payment_id, at, from_state, to_state, detail) VALUES (?, ?, ?, ?, ?)",
            (payment_id, at, before.value if before else None, after.value, detail),
        )

    def payment(self, payment_id: str) -> Payment | None:
        found = self._read_payments("WHERE payment_id=?", (payment_id,))
        return found[0] if found else None

    def payment_by_intent(self, payment_intent: str) -> Payment | None:
        """The payment holding `payment_intent`, if any (a PaymentIntent serves one payment)."""
        found = self._read_payments("WHERE payment_intent=? LIMIT 1", (payment_intent,))
        return found[0] if found else None

    def payment_by_order(self, order_id: str) -> Payment | None:
        """The order's latest attempt: its live or successful one, if it has one (only ever one)."""
        attempts = self.order_payments(order_id)
        return attempts[-1] if attempts else None

    def order_payments(self, order_id: str) -> list[Payment]:
        """Every attempt of the order, first first."""
        return self._read_payments("WHERE order_id=? ORDER BY order_attempt", (order_id,))

    # -- orders paid outside readerhost --------------------------------------------------------

    def close_order(self, closure: OrderClosure) -> None:
        """Record the order as paid another way (in the caller's transaction); refused by the store
        itself while the order has a live or successful attempt."""
        self._db.execute(
            "INSERT INTO order_closures (order_id, paid_by, closed_at) VALUES (?, ?, ?)",
            (closure.order_id, closure.paid_by.value, closure.closed_at),
        )

    def order_closure(self, order_id: str) -> OrderClosure | None:
        row = self._db.execute(
            "SELECT order_id, paid_by, closed_at FROM order_closures WHERE order_id=?", (order_id,)
        ).fetchone()
        return OrderClosure(row[0], PaidBy(row[1]), row[2]) if row else None

    def payments(
        self,
        *,
        states: Collection[State] | None = None,
        since: float | None = None,
        limit: int = 100,
        capture_before_lt: float | None = None,
        order_id: str | None = None,
    ) -> list[Payment]:
        """Payments newest first, optionally only in some states, created since a time, with a
        capture deadline before a time, or of one order (its attempts)."""
        clauses: list[str] = []
        args: list[object] = []
        if order_id is not None:
            clauses.append("order_id = ?")
            args.append(order_id)
        if states is not None:
            clauses.append(f"state IN ({','.join('?' * len(states))})")
            args.extend(state.value for state in states)
        if since is not None:
            clauses.append("created_at >= ?")
            args.append(since)
        if capture_before_lt is not None:
            clauses.append("capture_before < ?")
            args.append(capture_before_lt)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return self._read_payments(f"{where} ORDER BY created_at DESC, rowid DESC LIMIT ?", (*args, limit))

    def _read_payments(self, where: str, args: Sequence[object]) -> list[Payment]:
        """The payments `where` selects (placeholders only), each with how its order was closed and,
        for those that have any, their refunds and increments. The closure and whether refunds or
        increments exist come with each row: most payments have none, and are read in one statement."""
        rows = self._db.execute(_SELECT_PAYMENTS + where, args).fetchall()
        columns = self._columns("payments")
        payments = [_payment_from_row(row[:-3], columns, closed_by=row[-3]) for row in rows]
        extended = [payment.payment_id for payment, row in zip(payments, rows, strict=True) if row[-2] or row[-1]]
        return self._with_refunds(payments, extended) if extended else payments

    def _with_refunds(self, payments: list[Payment], ids: list[str]) -> list[Payment]:
        """The payments with the refunds and increments of those in `ids` (one query each)."""
        rows = self._db.execute(
            f"SELECT * FROM refunds WHERE payment_id IN ({','.join('?' * len(ids))})"  # noqa: S608 - placeholders only
            " ORDER BY created_at, rowid",
            ids,
        ).fetchall()
        columns = self._columns("refunds")
        by_payment: dict[str, list[Refund]] = {}
        for row in rows:
            refund = _refund_from_row(row, columns)
            by_payment.setdefault(refund.payment_id, []).append(refund)
        increments = self._increments_of(ids)
        return [
            replace(
                p,
                refunds=tuple(by_payment.get(p.payment_id, ())),
                increments=tuple(increments.get(p.payment_id, ())),
            )
            if p.payment_id in by_payment or p.payment_id in increments
            else p  # most have none of them: no copy
            for p in payments
        ]

    def _increments_of(self, payment_ids: list[str]) -> dict[str, list[Increment]]:
        rows = self._db.execute(
            f"SELECT * FROM increments WHERE payment_id IN ({','.join('?' * len(payment_ids))})"  # noqa: S608 - placeholders only
            " ORDER BY created_at, rowid",
            payment_ids,
        ).fetchall()
        columns = self._columns("increments")
        by_payment: dict[str, list[Increment]] = {}
        for row in rows:
            increment = _increment_from_row(row, columns)
            by_payment.setdefault(increment.payment_id, []).append(increment)
        return by_payment

    def history(self, payment_id: str) -> list[HistoryEntry]:
        rows = self._db.execute(
            "SELECT seq, payment_id, at, from_state, to_state, detail FROM history WHERE payment_id=? ORDER BY seq",
            (payment_id,),
        ).fetchall()
        return [HistoryEntry(*row) for row in rows]

    # -- readers registered at Stripe ----------------------------------------------------------

    def registered_reader(self, driver: str) -> RegisteredReader | None:
        """The reader `driver` registered at Stripe (and kept using since), if it did."""
        row = self._db.execute(
            "SELECT driver, reader_id, location, registered_at FROM readers WHERE driver=?", (driver,)
        ).fetchone()
        return RegisteredReader(*row) if row else None

    def save_registered_reader(self, reader: RegisteredReader) -> None:
        """Keep `reader` as the one its driver uses from now on (replacing the one before)."""
        with self.transaction():
            self._db.execute(
                "INSERT INTO readers (driver, reader_id, location, registered_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(driver) DO UPDATE SET reader_id=excluded.reader_id, location=excluded.location,"
                " registered_at=excluded.registered_at",
                (reader.driver, reader.reader_id, reader.location, reader.registered_at),
            )

    # -- refunds ------------------------------------------------------------------------------

    def insert_refund(self, refund: Refund, detail: str) -> None:
        self._db.execute(
            "INSERT INTO refunds (refund_id, payment_id, request, amount, state, at_reader, stripe_refund, error,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (refund.refund_id, refund.payment_id, *_refund_columns(refund)),
        )
        self._record_refund(refund.refund_id, refund.created_at, None, refund.state, detail)

    def save_refund(self, before: Refund, after: Refund, detail: str) -> None:
        """Write `after` over `before`, recording the change of state (if any) in the refund's history."""
        cursor = self._db.execute(
            "UPDATE refunds SET request=?, amount=?, state=?, at_reader=?, stripe_refund=?, error=?, created_at=?,"
            " updated_at=? WHERE refund_id=? AND state=?",
            (*_refund_columns(after), after.refund_id, before.state.value),
        )
        if cursor.rowcount != 1:
            raise StorageError(f"refund {after.refund_id} changed underneath (expected state {before.state})")
        if after.state != before.state:
            self._record_refund(after.refund_id, after.updated_at, before.state, after.state, detail)

    def _record_refund(
        self, refund_id: str, at: float, before: RefundState | None, after: RefundState, detail: str
    ) -> None:
        self._db.execute(
            "INSERT INTO refund_history (refund_id, at, from_state, to_state, detail) VALUES (?, ?, ?, ?, ?)",
            (refund_id, at, before.value if before else None, after.value, detail),
        )

    def refund(self, refund_id: str) -> Refund | None:
        row = self._db.execute("SELECT * FROM refunds WHERE refund_id=?", (refund_id,)).fetchone()
        return _refund_from_row(row, self._columns("refunds")) if row else None

    def refunds(self, *, states: Collection[RefundState]) -> list[Refund]:
        """The refunds in some states, oldest first."""
        rows = self._db.execute(
            f"SELECT * FROM refunds WHERE state IN ({','.join('?' * len(states))})"  # noqa: S608 - placeholders only
            " ORDER BY created_at, rowid",
            [state.value for state in states],
        ).fetchall()
        columns = self._columns("refunds")
        return [_refund_from_row(row, columns) for row in rows]

    def refund_history(self, refund_id: str) -> list[RefundHistoryEntry]:
        rows = self._db.execute(
            "SELECT seq, refund_id, at, from_state, to_state, detail FROM refund_history"
            " WHERE refund_id=? ORDER BY seq",
            (refund_id,),
        ).fetchall()
        return [RefundHistoryEntry(*row) for row in rows]

    # -- increments of an authorisation ---------------------------------------------------------

    def insert_increment(self, increment: Increment) -> None:
        self._db.execute(
            "INSERT INTO increments (increment_id, payment_id, amount, state, decline, error, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (increment.increment_id, increment.payment_id, increment.amount, *_increment_columns(increment)),
        )

    def save_increment(self, before: Increment, after: Increment) -> None:
        """Write `after` over `before` (an increment changes only while pending)."""
        cursor = self._db.execute(
            "UPDATE increments SET state=?, decline=?, error=?, created_at=?, updated_at=?"
            " WHERE increment_id=? AND state=?",
            (*_increment_columns(after), after.increment_id, before.state.value),
        )
        if cursor.rowcount != 1:
            raise StorageError(f"increment {after.increment_id} changed underneath (expected state {before.state})")

    def increment(self, increment_id: str) -> Increment | None:
        row = self._db.execute("SELECT * FROM increments WHERE increment_id=?", (increment_id,)).fetchone()
        return _increment_from_row(row, self._columns("increments")) if row else None

    # -- the outbox ---------------------------------------------------------------------------

    def add_operation(
        self,
        payment_id: str,
        kind: str,
        idempotency_key: str,
        params: dict[str, Any],
        now: float,
        *,
        first_attempt: bool = False,
    ) -> Operation:
        """Queue an operation; with `first_attempt` its first attempt is recorded with it (sent at `now`)."""
        attempts, first_sent = (1, now) if first_attempt else (0, None)
        cursor = self._db.execute(
            "INSERT INTO operations (payment_id, kind, idempotency_key, params, status, attempts, next_attempt_at,"
            " key_first_sent_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                payment_id,
                kind,
                idempotency_key,
                json.dumps(params, sort_keys=True),
                OpStatus.PENDING,
                attempts,
                now,
                first_sent,
                now,
                now,
            ),
        )
        op_id = cursor.lastrowid
        assert op_id is not None
        return Operation(
            op_id, payment_id, kind, idempotency_key, params, OpStatus.PENDING, attempts, now, now, now, first_sent
        )

    def has_pending_operation(self, payment_id: str) -> bool:
        """Whether the payment has an operation queued (pending)."""
        row = self._db.execute(
            "SELECT 1 FROM operations WHERE payment_id=? AND status=? LIMIT 1", (payment_id, OpStatus.PENDING)
        ).fetchone()
        return row is not None

    def save_operation(self, op: Operation) -> None:
        self._db.execute(
            "UPDATE operations SET idempotency_key=?, params=?, status=?, attempts=?, next_attempt_at=?,"
            " key_first_sent_at=?, needs_truth=?, last_error=?, updated_at=? WHERE op_id=?",
            (
                op.idempotency_key,
                json.dumps(op.params, sort_keys=True),
                op.status,
                op.attempts,
                op.next_attempt_at,
                op.key_first_sent_at,
                int(op.needs_truth),
                op.last_error,
                op.updated_at,
                op.op_id,
            ),
        )

    def operation(self, op_id: int) -> Operation | None:
        row = self._db.execute("SELECT * FROM operations WHERE op_id=?", (op_id,)).fetchone()
        return _operation_from_row(row, self._columns("operations")) if row else None

    def operations_of(self, payment_id: str) -> list[Operation]:
        rows = self._db.execute("SELECT * FROM operations WHERE payment_id=? ORDER BY op_id", (payment_id,)).fetchall()
        columns = self._columns("operations")
        return [_operation_from_row(row, columns) for row in rows]

    def next_operations(self) -> list[Operation]:
        """The operation each payment must do next: its oldest pending one, soonest due first."""
        rows = self._db.execute(
            "SELECT * FROM operations WHERE op_id IN ("
            " SELECT MIN(op_id) FROM operations WHERE status=? GROUP BY payment_id)"
            " ORDER BY next_attempt_at, op_id",
            (OpStatus.PENDING,),
        ).fetchall()
        columns = self._columns("operations")
        return [_operation_from_row(row, columns) for row in rows]

    def pending_operations(self) -> tuple[int, float | None]:
        """How many operations are pending, and when the oldest of them was queued (None: none)."""
        pending, oldest = self._db.execute(
            "SELECT COUNT(*), MIN(created_at) FROM operations WHERE status=?", (OpStatus.PENDING,)
        ).fetchone()
        return int(pending), oldest

    def queue_stats(self) -> QueueStats:
        pending, oldest = self.pending_operations()
        offline: dict[str, int] = {}
        rows = self._db.execute("SELECT request FROM payments WHERE state=?", (State.QUEUED_OFFLINE.value,)).fetchall()
        for (request,) in rows:
            data = json.loads(request)
            offline[data["currency"]] = offline.get(data["currency"], 0) + data["amount"]
        count = len(rows)
        return QueueStats(pending, oldest, count, offline)

    def census(self) -> Census:
        payments = dict(self._db.execute("SELECT state, COUNT(*) FROM payments GROUP BY state").fetchall())
        refunds = dict(self._db.execute("SELECT state, COUNT(*) FROM refunds GROUP BY state").fetchall())
        pending = self._db.execute(
            "SELECT kind, COUNT(*) FROM operations WHERE status=? GROUP BY kind", (OpStatus.PENDING,)
        ).fetchall()
        return Census(
            {state: payments.get(state.value, 0) for state in State},
            {state: refunds.get(state.value, 0) for state in RefundState},
            dict(pending),
        )

    def _columns(self, table: str) -> list[str]:
        # Asked once per table: the schema is final once open() has migrated it (a read per row
        # read cost a statement each time).
        columns = self._column_names.get(table)
        if columns is None:
            columns = self._column_names[table] = [row[1] for row in self._db.execute(f"PRAGMA table_info({table})")]
        return columns


def lock_exclusively(path: Path) -> int:
    """An exclusive flock(2) on the store file, held by the returned descriptor; StoreInUse when another
    process holds it. flock is independent of SQLite's POSIX locks, so readers are not affected."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as error:
        raise StorageError(f"cannot open the store {path}: {error.strerror}") from error
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StoreInUse(path) from None
    return fd


def _why_unwritable(folder: Path) -> str | None:
    """Why nothing can be written in `folder` (a WAL store writes files beside the database), if so."""
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return f"{folder} is on a read-only file system"
    except OSError:
        return None
    if not os.access(folder, os.W_OK):
        return f"this user may not write in {folder}"
    return None


def _statements(script: str) -> list[str]:
    """Split a migration into statements (triggers keep their inner semicolons)."""
    statements, current = [], ""
    for line in script.strip().splitlines():
        current += line + "\n"
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    return statements


def _payment_columns(payment: Payment) -> tuple[Any, ...]:
    request = payment.request
    return (
        json.dumps(
            {
                "order_id": request.order_id,
                "amount": request.amount,
                "currency": request.currency,
                "description": request.description,
                "metadata": request.metadata,
                "capture": request.capture.value,
                "confirm": request.confirm,
                "offline": request.offline.value,
                "payment_intent_client_secret": request.payment_intent_client_secret,
                "tipping": request.tipping,
                "incremental": request.incremental,
                "extended": request.extended,
            },
            sort_keys=True,
        ),
        payment.state.value,
        payment.payment_intent,
        json.dumps(payment.card.to_json()) if payment.card else None,
        json.dumps(payment.decline.to_json()) if payment.decline else None,
        json.dumps(payment.error.to_json()) if payment.error else None,
        payment.captured_amount,
        payment.capture_amount,
        payment.capture_before,
        int(payment.offline),
        payment.attempts,
        payment.created_at,
        payment.updated_at,
        json.dumps(payment.receipt.to_json()) if payment.receipt else None,
        payment.tip,
        payment.incremented_to,
        json.dumps(payment.card_support.to_json()) if payment.card_support else None,
    )


def _payment_from_row(row: Sequence[Any], columns: list[str], *, closed_by: str | None) -> Payment:
    data = dict(zip(columns, row, strict=True))
    request = json.loads(data["request"])
    card = json.loads(data["card"]) if data["card"] else None
    decline = json.loads(data["decline"]) if data["decline"] else None
    error = json.loads(data["error"]) if data["error"] else None
    receipt = json.loads(data["receipt"]) if data["receipt"] else None
    return Payment(
        payment_id=data["payment_id"],
        request=PaymentRequest(
            order_id=request["order_id"],
            amount=request["amount"],
            currency=request["currency"],
            description=request["description"],
            metadata=request["metadata"],
            capture=CaptureMode(request["capture"]),
            confirm=request["confirm"],
            offline=OfflineMode(request["offline"]),
            payment_intent_client_secret=request["payment_intent_client_secret"],
            tipping=request.get("tipping"),  # absent from requests stored before protocol 1.3
            incremental=request.get("incremental", False),  # absent before protocol 1.4
            extended=request.get("extended", False),
        ),
        state=State(data["state"]),
        created_at=data["created_at"],
        updated_at=data["updated_at"],
        payment_intent=data["payment_intent"],
        card=Card(**card) if card else None,
        decline=Decline(**decline) if decline else None,
        error=PaymentError(Reason(error["reason"]), error["message"]) if error else None,
        captured_amount=data["captured_amount"],
        capture_amount=data["capture_amount"],
        capture_before=data["capture_before"],
        offline=bool(data["offline"]),
        attempts=data["attempts"],
        receipt=Receipt.from_json(receipt) if receipt else None,
        tip=data["tip"],
        order_attempt=data["order_attempt"],
        incremented_to=data["incremented_to"],
        card_support=CardSupport(**json.loads(data["card_support"])) if data["card_support"] else None,
        closed_by=PaidBy(closed_by) if closed_by else None,
    )


def _refund_columns(refund: Refund) -> tuple[Any, ...]:
    request = refund.request
    return (
        json.dumps(
            {
                "refund_id": request.refund_id,
                "payment_id": request.payment_id,
                "amount": request.amount,
                "reason": request.reason,
                "at_reader": request.at_reader,
            },
            sort_keys=True,
        ),
        refund.amount,
        refund.state.value,
        int(refund.at_reader),
        refund.stripe_refund,
        json.dumps(refund.error.to_json()) if refund.error else None,
        refund.created_at,
        refund.updated_at,
    )


def _refund_from_row(row: Sequence[Any], columns: list[str]) -> Refund:
    data = dict(zip(columns, row, strict=True))
    request = json.loads(data["request"])
    error = json.loads(data["error"]) if data["error"] else None
    return Refund(
        request=RefundRequest(
            refund_id=request["refund_id"],
            payment_id=request["payment_id"],
            amount=request["amount"],
            reason=request["reason"],
            at_reader=request["at_reader"],
        ),
        amount=data["amount"],
        state=RefundState(data["state"]),
        created_at=data["created_at"],
        updated_at=data["updated_at"],
        at_reader=bool(data["at_reader"]),
        stripe_refund=data["stripe_refund"],
        error=PaymentError(Reason(error["reason"]), error["message"]) if error else None,
    )


def _increment_columns(increment: Increment) -> tuple[Any, ...]:
    return (
        increment.state.value,
        json.dumps(increment.decline.to_json()) if increment.decline else None,
        json.dumps(increment.error.to_json()) if increment.error else None,
        increment.created_at,
        increment.updated_at,
    )


def _increment_from_row(row: Sequence[Any], columns: list[str]) -> Increment:
    data = dict(zip(columns, row, strict=True))
    decline = json.loads(data["decline"]) if data["decline"] else None
    error = json.loads(data["error"]) if data["error"] else None
    return Increment(
        request=IncrementRequest(data["increment_id"], data["payment_id"], data["amount"]),
        state=IncrementState(data["state"]),
        created_at=data["created_at"],
        updated_at=data["updated_at"],
        decline=Decline(**decline) if decline else None,
        error=PaymentError(Reason(error["reason"]), error["message"]) if error else None,
    )


def _operation_from_row(row: Sequence[Any], columns: list[str]) -> Operation:
    data = dict(zip(columns, row, strict=True))
    return Operation(
        op_id=data["op_id"],
        payment_id=data["payment_id"],
        kind=data["kind"],
        idempotency_key=data["idempotency_key"],
        params=json.loads(data["params"]),
        status=OpStatus(data["status"]),
        attempts=data["attempts"],
        next_attempt_at=data["next_attempt_at"],
        created_at=data["created_at"],
        updated_at=data["updated_at"],
        key_first_sent_at=data["key_first_sent_at"],
        needs_truth=bool(data["needs_truth"]),
        last_error=data["last_error"],
    )
