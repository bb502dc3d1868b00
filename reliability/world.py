"""The world a reliability run lives in: a Stripe emulator served from this process (its faults,
clock and journal at hand), readerhostd as a real process talking to it with a real test key read
from a file, and everything the runs leave behind (logs, store, socket traffic) kept for checking.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.support import DaemonEnded, RunningDaemon, daemon_config, readerhostd
from readerhost.sim.stripe_emulator import StripeEmulator
from reliability.device import SdkDevice, serial_reader_config
from reliability.invariants import StoreView, Violation, check, read_store
from reliability.pos import PosClient, PosRecord

TERMINAL_ID = "rel-kiosk"
LAST_LINES = 20  # of a daemon's log, kept with its death


@dataclass(frozen=True)
class Death:
    """readerhostd ended without being asked to (neither the harness's SIGKILL nor its SIGTERM)."""

    life: int  # which start of the daemon it was (1: the first)
    when: str  # "starting" (before it was ready) or "running"
    status: int  # its exit status; negative: the signal that ended it
    last_lines: tuple[str, ...]  # the end of its log

    def ended(self) -> str:
        if self.status >= 0:
            return f"exit status {self.status}"
        try:
            return f"killed by {signal.Signals(-self.status).name}"
        except ValueError:
            return f"killed by signal {-self.status}"


class DiedUnasked(Exception):
    """The daemon of this world died unasked: a finding, not a failure of the harness."""

    def __init__(self, death: Death) -> None:
        super().__init__(f"readerhostd died unasked while {death.when} (life {death.life}): {death.ended()}")
        self.death = death


def stripe_settings(
    url: str, *, read_timeout_s: float = 1.0, max_network_retries: int = 1, reader: str | None = None
) -> str:
    """The daemon's [stripe] and [log] settings for a run: a short read timeout, so that the
    emulator's delay faults outlast it, and debug logging, so that the secrets scan reads the most.
    `reader`: the [reader] settings (default: the simulated reader, waiting for reader.present)."""
    return (
        (daemon_config() if reader is None else reader)
        + f"""
[stripe]
api_base = "{url}"
api_key_file = "stripe.key"
terminal_id = "{TERMINAL_ID}"
connect_timeout_s = 1.0
read_timeout_s = {read_timeout_s}
max_network_retries = {max_network_retries}

[log]
level = "debug"
"""
    )


@dataclass
class World:
    folder: Path
    url: str
    emulator: StripeEmulator
    key: str = field(default_factory=lambda: "sk_test_rel" + secrets.token_hex(16))
    record: PosRecord = field(default_factory=PosRecord)
    logs: list[str] = field(default_factory=list)  # every line every daemon life wrote
    lives: int = 0
    daemon: RunningDaemon | None = None
    device: SdkDevice | None = None  # a protocol 2 serial reader, when the run has one
    _stack: contextlib.ExitStack | None = None

    def __post_init__(self) -> None:
        key_file = self.folder / "stripe.key"
        key_file.write_text(self.key + "\n")
        key_file.chmod(0o600)

    @property
    def socket_path(self) -> Path:
        return self.folder / "api.sock"

    @property
    def store_path(self) -> Path:
        return self.folder / "state" / "readerhost" / "readerhost.db"

    def start(self, config: str | None = None) -> RunningDaemon:
        """readerhostd on this world's folder (the same store every life); returns once it is ready."""
        assert self.daemon is None, "a daemon is already running"
        stack = contextlib.ExitStack()
        self.lives += 1
        try:
            self.daemon = stack.enter_context(readerhostd(config or stripe_settings(self.url), folder=self.folder))
        except DaemonEnded as ended:
            self.logs += ended.lines
            raise DiedUnasked(Death(self.lives, "starting", ended.status, tuple(ended.lines[-LAST_LINES:]))) from None
        self._stack = stack
        return self.daemon

    def died(self, grace_s: float = 0.0) -> Death | None:
        """The running daemon's death if it has ended (waiting up to `grace_s` for it to), unasked
        since the harness's own kill and stop forget it first; None while it runs. A dead daemon is
        put away (its log kept), so that the next start can come."""
        if self.daemon is None:
            return None
        process = self.daemon.process
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace_s)
        if process.returncode is None:
            return None
        lines = self.daemon.log.drain()
        death = Death(self.lives, "running", process.returncode, tuple(lines[-LAST_LINES:]))
        self.stop()
        return death

    def check_alive(self) -> None:
        """DiedUnasked if the daemon has ended since it was started."""
        death = self.died()
        if death is not None:
            raise DiedUnasked(death)

    def stop(self) -> None:
        """SIGTERM (a clean stop); the log is kept."""
        if self.daemon is None or self._stack is None:
            return
        daemon, stack = self.daemon, self._stack
        self.daemon = self._stack = None
        stack.close()
        self.logs += daemon.log.drain()

    def kill(self) -> None:
        """SIGKILL: the daemon ends at once, wherever it is. DiedUnasked if it had already ended."""
        assert self.daemon is not None
        self.check_alive()
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.daemon.process.pid, signal.SIGKILL)
        self.daemon.process.wait(timeout=10)
        self.stop()

    def keep_evidence(self, where: Path) -> Path:
        """Copy what a finding is judged on — the store, Stripe's journal, the daemons' logs, what the
        POS clients were told and asked, their traffic — to `where` (the run's folder is deleted after it)."""
        where.mkdir(parents=True, exist_ok=True)
        for path in self.store_path.parent.glob(self.store_path.name + "*"):  # with its -wal and -shm
            shutil.copy2(path, where / path.name)
        journal = [dataclasses.asdict(entry) for entry in self.emulator.journal_entries()]
        (where / "journal.json").write_text(json.dumps(journal, indent=1, default=str))
        logs = self.logs + (self.daemon.log.lines if self.daemon is not None else [])
        (where / "daemon.log").write_text("\n".join(logs) + "\n")
        record = self.record
        asked = {"capture_asked": record.capture_asked, "capture_maybe": sorted(record.capture_maybe),
                 "cancel_accepted": sorted(record.cancel_accepted), "automatic": sorted(record.automatic),
                 "told": sorted(record.told)}  # fmt: skip
        (where / "pos.json").write_text(json.dumps(asked, indent=1))
        (where / "wire.txt").write_bytes(bytes(record.wire))  # every line the POS clients sent and got
        return where

    def add_sdk_reader(self) -> str:
        """A protocol 2 serial reader (a Terminal SDK bridge) in its own process; the daemon's [reader] settings."""
        self.device = SdkDevice(self.folder, self.url)
        return serial_reader_config(self.device.link)

    def device_failure(self) -> str | None:
        """Why the run's protocol 2 reader stopped serving for good, or None (also with no such reader)."""
        return self.device.failure() if self.device is not None else None

    async def present(self, card: str, pos: PosClient) -> bool:
        """The customer presents `card`: at the SDK reader when there is one, else through reader.present."""
        if self.device is not None:
            return await asyncio.to_thread(self.device.present, card)
        return (await pos.call("reader.present", {"card": card})).ok

    async def client(self, topics: tuple[str, ...] = ("payment", "reader")) -> PosClient:
        return await PosClient.connect(self.socket_path, self.record, topics)

    def store(self) -> StoreView:
        return read_store(self.store_path)

    def violations(self, *, settled: bool) -> list[Violation]:
        return check(
            self.store(), self.emulator.journal_entries(), self.record, terminal_id=TERMINAL_ID, settled=settled
        )

    async def until_settled(self, timeout: float) -> float:
        """Wait until the outbox is empty and no payment or refund is on its way; the seconds it took.
        Raises TimeoutError with what is still open, DiedUnasked if the daemon ends meanwhile."""
        started = time.monotonic()
        moving = frozenset({"processing", "capturing", "queued_offline"})
        while True:
            self.check_alive()
            view = await asyncio.to_thread(self.store)
            open_ = [(p.payment_id, p.state) for p in view.payments.values() if p.state in moving]
            open_ += [
                (r.refund_id, r.state) for r in view.refunds.values() if r.state in ("pending", "requires_action")
            ]
            if view.pending_operations == 0 and not open_:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise TimeoutError(
                    f"not settled after {timeout:.0f} s: {view.pending_operations} operations pending, {open_[:10]}"
                )
            await asyncio.sleep(0.25)  # polling the file: the store has no change notification


@contextlib.contextmanager
def world(folder: Path) -> Iterator[World]:
    """An emulator for the run (search reads after write; no rate limit of its own)."""
    from readerhost.sim.stripe_emulator import running_emulator

    with running_emulator(search_lag_s=0) as (url, emulator):
        made = World(folder, url, emulator)
        try:
            yield made
        finally:
            made.stop()
            if made.device is not None:
                made.device.stop()
