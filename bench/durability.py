"""What durability costs per payment: fsyncs (under strace) and SQLite transactions (from the store).

Two runs of a real readerhostd under `strace -f -y -e trace=fsync,fdatasync` (each call with the
file it syncs: the store's write-ahead log, synced by every commit, or the store itself, synced by a
WAL checkpoint): a baseline that starts,
takes one client, idles as long as the payment run took and stops; and a run that makes N whole
payments. The difference divided by N is what a payment costs. The daemon talks to an emulator
served from this process (so that the emulator's work is not traced), without pacing
(`[stripe] requests_per_second = 1000`: pacing changes timing, not the writes). The store file is
then read for the committed transactions behind that: one `history` row per state change (each
written in its own transaction with the payment's new state) and the `operations` rows of the
outbox. Without strace, only the store figures are given.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import Result, table
from bench.support import JsonLines, daemon_config, pay, readerhostd, stop, stripe_emulator, workdir

KEY = "durability"
SYSCALLS = ("fsync", "fdatasync")
TARGET_PER_PAYMENT = 6  # one synced commit per state the POS is told about (docs/payments.md)
# What a sync is of, from the path strace shows: the WAL (a commit, or a checkpoint's first sync),
# the store file (a checkpoint), anything else (the daemon's other files).
FILES = ("the write-ahead log (`-wal`)", "the store file (checkpoints)", "other files")


@dataclass
class Traced:
    calls: dict[str, int]
    seconds: float  # how long the daemon ran (ready → stop)
    history_rows: int
    operations: int
    operation_attempts: int
    payments: int


def parse_strace_calls(text: str, store: Path) -> dict[str, int]:
    """`strace -f -y` lines → calls per syscall and per file synced (FILES)."""
    calls = dict.fromkeys((*SYSCALLS, *FILES), 0)
    for line in text.splitlines():
        match = _SYNC_CALL.search(line)
        if match is None or match["name"] not in SYSCALLS:
            continue
        calls[match["name"]] += 1
        if match["path"] == f"{store}-wal":
            calls[FILES[0]] += 1
        elif match["path"] == str(store):
            calls[FILES[1]] += 1
        else:
            calls[FILES[2]] += 1
    return calls


# `1234  fdatasync(5</tmp/x/readerhost.db-wal>) = 0` (the pid is there with -f and -o)
_SYNC_CALL = re.compile(r"\b(?P<name>f(?:data)?sync)\(\d+<(?P<path>[^>]*)>\)")


def store_counts(store: Path) -> tuple[int, int, int, int]:
    """(history rows, operations rows, their attempts summed, payments) in the store file."""
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        history = db.execute("SELECT count(*) FROM history").fetchone()[0]
        operations, attempts = db.execute("SELECT count(*), coalesce(sum(attempts), 0) FROM operations").fetchone()
        payments = db.execute("SELECT count(*) FROM payments").fetchone()[0]
    finally:
        db.close()
    return int(history), int(operations), int(attempts), int(payments)


def one_run(api_base: str, payments: int, idle_s: float, strace: str | None) -> Traced:
    with workdir() as folder:
        summary = folder / "strace.txt"
        wrapper = [strace, "-f", "-y", "-e", "trace=" + ",".join(SYSCALLS), "-o", str(summary)] if strace else []
        with readerhostd(daemon_config(api_base, requests_per_second=1000), folder=folder, wrapper=wrapper) as daemon:
            started = time.perf_counter()

            async def drive() -> None:
                client = await JsonLines.connect(daemon.socket_path, ["payment", "reader"])
                for i in range(payments):
                    await pay(client, f"D-{i}")
                if idle_s > 0:
                    await asyncio.sleep(idle_s)
                await client.close()

            asyncio.run(drive())
            seconds = time.perf_counter() - started
            status = stop(daemon)
            if status != 0:
                raise RuntimeError(f"readerhostd ended with status {status}: {daemon.log.lines[-10:]}")
        calls = parse_strace_calls(summary.read_text(), daemon.store_path) if strace else {}
        history, operations, attempts, stored = store_counts(daemon.store_path)
    return Traced(calls, seconds, history, operations, attempts, stored)


def run(quick: bool) -> Result:
    n = 3 if quick else 20
    strace = shutil.which("strace")
    with stripe_emulator() as (url, _emulator):
        loaded = one_run(url, n, 0.0, strace)
        baseline = one_run(url, 0, loaded.seconds, strace)
    rows = []
    per_payment: float | None = None
    if strace:
        for name in SYSCALLS:
            added = loaded.calls[name] - baseline.calls[name]
            rows.append([f"`{name}` calls", str(baseline.calls[name]), str(loaded.calls[name]), f"{added / n:.1f}"])
        total_base = sum(baseline.calls[name] for name in SYSCALLS)
        total_loaded = sum(loaded.calls[name] for name in SYSCALLS)
        per_payment = (total_loaded - total_base) / n
        rows.append(["**fsync + fdatasync**", str(total_base), str(total_loaded), f"**{per_payment:.2f}**"])
        for name in FILES:
            added = loaded.calls[name] - baseline.calls[name]
            rows.append([f"of which on {name}", str(baseline.calls[name]), str(loaded.calls[name]), f"{added / n:.2f}"])
    rows += [
        [
            "`history` rows (state changes, a transaction each)",
            str(baseline.history_rows),
            str(loaded.history_rows),
            f"{(loaded.history_rows - baseline.history_rows) / n:.1f}",
        ],
        [
            "`operations` rows (outbox: Stripe requests)",
            str(baseline.operations),
            str(loaded.operations),
            f"{(loaded.operations - baseline.operations) / n:.1f}",
        ],
        [
            "`operations` attempts",
            str(baseline.operation_attempts),
            str(loaded.operation_attempts),
            f"{(loaded.operation_attempts - baseline.operation_attempts) / n:.1f}",
        ],
    ]
    notes = [
        f"{n} payments (start → authorised → captured), against a baseline run that starts, takes one "
        f"client and idles {loaded.seconds:.1f} s (as long as the payment run) before SIGTERM; both runs "
        "include start-up and shutdown, which the subtraction removes.",
        "The store runs SQLite in WAL mode with synchronous=FULL: every commit syncs the WAL before "
        "it returns, so a state the POS was told about survives a power cut. Each state change the "
        "POS is told (`history` row: creating, collecting, processing, authorized, capturing, "
        "captured) is one such commit; the first attempt of each Stripe request is committed with "
        'the change that queues it, since the request follows at once (docs/payments.md, "One '
        'sync per step", gives the crash argument), so an outbox step adds no commit of its own. '
        "A WAL checkpoint (every 1000 pages, SQLite's default) syncs the log and the store file "
        "once each: the fraction above 6 per payment.",
    ]
    met: bool | None = None
    if per_payment is None:
        notes.append("strace is not installed here: fsyncs were not counted, only the store's rows.")
    else:
        commits = (loaded.calls[FILES[0]] - baseline.calls[FILES[0]]) / n
        met = commits <= TARGET_PER_PAYMENT + 0.1
        notes.append(
            f"Target: at most {TARGET_PER_PAYMENT} synced commits per payment (start → authorised → "
            f"captured): {commits:.2f} syncs of the log per payment, {'met' if met else 'not met'} "
            f"({per_payment:.2f} with the checkpoints' share; before the outbox's first attempts were "
            "folded into the state changes that queue them, 9.2)."
        )
    if loaded.payments != n:
        notes.append(f"The store holds {loaded.payments} payments, not {n}: the figures are suspect.")
    notes.append(
        "On an SD card each sync costs milliseconds: Payment overhead's slow-storage row shows what "
        "that does to a payment."
    )
    return Result(
        key=KEY,
        title="Durability",
        table=table(["what", "baseline run", f"{n} payments", "per payment"], rows),
        notes=tuple(notes),
        target_met=met,
    )
