"""Backups of the payment store: a consistent copy taken while the daemon runs, and a restore while it
does not.

A backup reads the store through its own connection (read-only while the daemon runs) with SQLite's
online backup API, in one step, so the copy is one snapshot of committed transactions even while the daemon writes. The
copy is written beside its target, checked (integrity, schema) and synced before it takes its name:
a backup file is whole or absent, never half written.

A restore takes the store's lock (a running daemon holds it, store.py), refuses to replace a store
that still has work for Stripe unless forced (that work would be forgotten: a capture never sent,
a payment never reconciled), keeps the replaced store beside the new one under a dated name, and
swaps the files with one rename, so the store's name never points at nothing.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .model import TERMINAL, OpStatus
from .store import MIGRATIONS, StoreInUse, lock_exclusively


class BackupError(Exception):
    """A backup or restore that cannot be done; nothing was changed."""


@dataclass(frozen=True)
class StoreSummary:
    """What a store holds, as a technician judges a backup or a restore by it."""

    schema: int
    payments: int
    unsettled: int  # payments neither captured, canceled nor failed
    pending_operations: int  # outbox operations still to reach Stripe

    @property
    def has_work_for_stripe(self) -> bool:
        return self.unsettled > 0 or self.pending_operations > 0

    def describe(self) -> str:
        return (
            f"{self.payments} payments, {self.unsettled} not settled, "
            f"{self.pending_operations} operations still to reach Stripe (schema {self.schema})"
        )


def backup(store: Path, target: Path) -> StoreSummary:
    """Copy the store at `store` to `target` (replacing an older file there); what the copy holds."""
    if not store.is_file():
        raise BackupError(f"there is no store at {store}")
    if target.exists() and target.resolve() == store.resolve():
        raise BackupError(f"{target} is the store itself: back it up to another file")
    if not target.parent.is_dir():
        raise BackupError(f"the folder {target.parent} does not exist")
    try:
        lock: int | None = lock_exclusively(store)
    except StoreInUse:
        lock = None  # the daemon runs: read beside it, through the write-ahead log it keeps
    try:
        # With the daemon stopped, an ordinary connection: closing it folds and removes the log
        # files it made, which a read-only one would leave behind, owned by whoever ran the backup.
        with _connection(store, read_only=lock is None) as source:
            _check(source, store)
            partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
            try:
                summary = _copy(source, partial)
                os.replace(partial, target)
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
    finally:
        if lock is not None:
            os.close(lock)
    _sync_folder(target.parent)
    return summary


def inspect(path: Path) -> StoreSummary:
    """What the store or backup at `path` holds (read-only); BackupError when it is not a usable store."""
    if not path.is_file():
        raise BackupError(f"there is no file {path}")
    try:
        lock: int | None = lock_exclusively(path)
    except StoreInUse:
        lock = None  # a daemon runs: its -wal and -shm are there, and a reader adds none
    try:
        beside = [_sibling(path, "-wal"), _sibling(path, "-shm")]
        made = [sibling for sibling in beside if not sibling.exists()]
        with _connection(path, read_only=True) as db:
            summary = _check(db, path)
        if lock is not None:
            # A read-only reader of a WAL store makes its -wal and -shm and cannot delete them; with the
            # lock held no daemon opened them meanwhile, so they go (left, they could be root's files
            # in the daemon's folder after `sudo readerhostd --inspect`).
            for sibling in made:
                sibling.unlink(missing_ok=True)
        return summary
    finally:
        if lock is not None:
            os.close(lock)


@dataclass(frozen=True)
class Restored:
    summary: StoreSummary  # what the store holds now
    replaced: StoreSummary | None  # what the replaced store held
    kept_as: Path | None  # where the replaced store was kept


def restore(source: Path, store: Path, *, force: bool = False) -> Restored:
    """Put the backup `source` in place of the store at `store`, which no daemon may hold."""
    incoming = inspect(source)
    if not store.exists():
        store.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _put_in_place(source, store, owner=store.parent.stat(), mode=0o600)
        return Restored(incoming, None, None)
    lock = lock_exclusively(store)  # StoreInUse while the daemon runs
    try:
        with _connection(store, read_only=False) as db:
            # Fold the write-ahead log into the file, so the file alone is the whole store.
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            current = _check(db, store)
        if current.has_work_for_stripe and not force:
            raise BackupError(
                f"the store {store} still has work for Stripe ({current.describe()}): restoring would forget "
                "it. Let the daemon finish it first (readerhostctl status), or restore with --force; the "
                "replaced store is kept either way"
            )
        wal = _sibling(store, "-wal")
        if wal.exists() and wal.stat().st_size > 0:
            raise BackupError(f"{wal} still holds writes after a checkpoint: is another process using the store?")
        kept = store.with_name(f"{store.name}.before-restore-{time.strftime('%Y%m%dT%H%M%S')}")
        os.link(store, kept)  # the replaced store stays, under another name
        status = store.stat()
        _put_in_place(source, store, owner=status, mode=status.st_mode & 0o777)
        for leftover in (_sibling(store, "-wal"), _sibling(store, "-shm")):
            leftover.unlink(missing_ok=True)  # the old store's, empty: never the new one's
        return Restored(incoming, current, kept)
    finally:
        os.close(lock)


def _put_in_place(source: Path, store: Path, *, owner: os.stat_result, mode: int) -> None:
    partial = store.with_name(f".{store.name}.{os.getpid()}.partial")
    try:
        with _connection(source, read_only=True) as db:
            _copy(db, partial)
        os.chmod(partial, mode)
        if os.geteuid() == 0:  # root restores for the daemon's own user
            os.chown(partial, owner.st_uid, owner.st_gid)
        os.replace(partial, store)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    _sync_folder(store.parent)


def _copy(source: sqlite3.Connection, path: Path) -> StoreSummary:
    """Copy `source` into a new file at `path` in one step, check the copy, and sync it. The copy is
    one self-contained file (rollback journal); the daemon turns write-ahead logging on when it opens it."""
    path.unlink(missing_ok=True)
    with _connection(path, read_only=False) as copy:
        source.backup(copy)  # one step (all pages): one read transaction, one snapshot
        copy.execute("PRAGMA journal_mode=DELETE")
        summary = _check(copy, path)
    for leftover in (_sibling(path, "-wal"), _sibling(path, "-shm")):
        leftover.unlink(missing_ok=True)  # closed cleanly: nothing is left in them
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return summary


def _check(db: sqlite3.Connection, path: Path) -> StoreSummary:
    """The store's summary, after checking it is a whole readerhost store this version understands."""
    try:
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        schema = db.execute("PRAGMA user_version").fetchone()[0]
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as error:
        raise BackupError(f"{path} is not a readerhost store: {error}") from None
    if integrity != "ok":
        raise BackupError(f"{path} is damaged: {integrity}")
    if not {"payments", "operations", "history"} <= tables or schema < 1:
        raise BackupError(f"{path} is not a readerhost store (no payments, operations and history tables)")
    if schema > len(MIGRATIONS):
        raise BackupError(
            f"{path} has schema version {schema}, newer than this readerhost understands ({len(MIGRATIONS)})"
        )
    settled = ",".join(f"'{state.value}'" for state in TERMINAL)
    return StoreSummary(
        schema=schema,
        payments=db.execute("SELECT count(*) FROM payments").fetchone()[0],
        unsettled=db.execute(f"SELECT count(*) FROM payments WHERE state NOT IN ({settled})").fetchone()[0],  # noqa: S608 - our own constants
        pending_operations=db.execute(
            "SELECT count(*) FROM operations WHERE status=?", (OpStatus.PENDING.value,)
        ).fetchone()[0],
    )


@contextlib.contextmanager
def _connection(path: Path, *, read_only: bool) -> Iterator[sqlite3.Connection]:
    try:
        if read_only:
            db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10.0)
        else:
            db = sqlite3.connect(path, timeout=10.0, isolation_level=None)
    except sqlite3.Error as error:
        raise BackupError(f"cannot open {path}: {error}") from None
    try:
        yield db
    except sqlite3.Error as error:
        raise BackupError(f"{path}: {error}") from None
    finally:
        db.close()


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _sync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
