"""The money core assembled as the daemon assembles it, for tests: real SQLite file, real stripe
library over real HTTP to the emulator, the scripted reader, and the worker running on the loop."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conftest import TEST_KEY, EmulatorHandle

from readerhost.daemon.payments.events import Event, EventHub
from readerhost.daemon.payments.gateway import GatewaySettings, StripeGateway
from readerhost.daemon.payments.model import Payment, State
from readerhost.daemon.payments.offline import OfflineLimits
from readerhost.daemon.payments.service import PaymentService, ServiceSettings
from readerhost.daemon.payments.store import Store
from readerhost.daemon.payments.worker import Worker, WorkerSettings
from readerhost.drivers.reader.base import Capability
from support.scripted_reader import ScriptedReader

FAST_WORKER = WorkerSettings(
    backoff_base_s=0.05,
    backoff_cap_s=0.4,
    requests_per_second=500.0,
    rate_limit_pause_s=0.05,
    probe_interval_s=0.1,
)


@dataclass
class Core:
    emulator: EmulatorHandle
    store: Store
    events: EventHub
    worker: Worker
    reader: ScriptedReader
    service: PaymentService
    seen: list[Event] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def record(self, event: Event) -> None:
        self.seen.append(event)
        self.changed.set()

    async def until(self, predicate: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
        """Wait until `predicate()` holds, re-checking after every event the core publishes."""
        deadline = time.monotonic() + timeout
        while not predicate():
            self.changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting for {what}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), timeout=min(remaining, 0.5))

    async def until_state(self, payment_id: str, *states: State, timeout: float = 15.0) -> Payment:
        await self.until(
            lambda: self.payment(payment_id).state in states, timeout, f"payment {payment_id} to reach {states}"
        )
        return self.payment(payment_id)

    async def authorise(
        self, order_id: str, amount: int = 1000, card: str = "pm_card_present_visa", **params: object
    ) -> Payment:
        """Start a payment, present `card` when the reader asks, and wait until it is authorised."""
        payment = await self.service.start({"order_id": order_id, "amount": amount, "currency": "usd", **params})
        await self.until_collecting()
        self.reader.present(card)
        return await self.until_state(payment.payment_id, State.AUTHORIZED)

    async def until_collecting(self) -> None:
        await asyncio.wait_for(self.reader.collecting.wait(), timeout=15.0)

    async def until_queue_empty(self, timeout: float = 15.0) -> None:
        await self.until(lambda: self.store.queue_stats().pending == 0, timeout, "an empty queue")

    def payment(self, payment_id: str) -> Payment:
        payment = self.store.payment(payment_id)
        assert payment is not None
        return payment

    def journal(self, op: str | None = None) -> list[Any]:
        return [e for e in self.emulator.emulator.journal_entries() if op is None or e.op == op]

    def states_told(self, payment_id: str) -> list[str]:
        return [e.data["state"] for e in self.seen if e.type == "payment.state" and e.data["payment_id"] == payment_id]


class Clocks:
    """The daemon's wall clock and Stripe's (the emulator's), moved on together, as days passing would."""

    def __init__(self, emulator: EmulatorHandle) -> None:
        self.offset = 0.0
        self.emulator = emulator

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds
        self.emulator.emulator.advance_clock(seconds)


@contextlib.asynccontextmanager
async def running_core(
    emulator: EmulatorHandle,
    db: Path,
    *,
    terminal_id: str = "kiosk-1",
    worker_settings: WorkerSettings = FAST_WORKER,
    offline: OfflineLimits = OfflineLimits(),
    network_retries: int = 0,
    read_timeout_s: float = 2.0,
    clock: Callable[[], float] = time.time,
    gateway_class: type[StripeGateway] = StripeGateway,
    reader_capabilities: frozenset[Capability] = frozenset({Capability.STORES_OFFLINE}),
    customer_wait_s: float = 30.0,
) -> AsyncIterator[Core]:
    """`gateway_class` may be a StripeGateway subclass that observes the calls (benchmarks count them);
    `reader_capabilities` make the scripted reader play another kind of reader."""
    store = Store.open(db)
    gateway = gateway_class(
        GatewaySettings(
            api_key=TEST_KEY,
            api_base=emulator.url,
            connect_timeout_s=1.0,
            read_timeout_s=read_timeout_s,
            max_network_retries=network_retries,
        )
    )
    events = EventHub()
    worker = Worker(store, gateway, events, worker_settings, clock=clock)
    reader = ScriptedReader(capabilities=reader_capabilities)
    settings = ServiceSettings(terminal_id, offline, customer_wait_s)
    service = PaymentService(store, worker, reader, events, settings, clock=clock)
    core = Core(emulator, store, events, worker, reader, service)
    events.subscribe(core.record)
    await service.recover()
    runner = asyncio.create_task(worker.run())
    try:
        yield core
    finally:
        await service.close()
        await worker.stop()
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        store.close()


def run(coroutine: Any) -> Any:
    """Run one test's coroutine on a fresh event loop."""
    return asyncio.run(coroutine)
