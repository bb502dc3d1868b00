"""The simulated world of one seed: its clocks, Stripe (the emulator in-process), the SQLite file,
and the money core's lives, each ended by a crash that leaves only the file.

A life is built as the daemon's start builds its money core (daemon/app.py: the store opened, the
worker and the service made over it, `recover`, the worker's loop started), with the simulation's
clocks, seed and transport put in through the constructors' seams."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from readerhost.daemon.payments.events import Event, EventHub
from readerhost.daemon.payments.gateway import GatewaySettings, StripeGateway
from readerhost.daemon.payments.pacing import Pacer
from readerhost.daemon.payments.service import PaymentService, ServiceSettings
from readerhost.daemon.payments.store import Store
from readerhost.daemon.payments.worker import Worker, WorkerSettings
from reliability.pos import PosRecord
from reliability.simulation.reader import SimReader
from reliability.simulation.scheduler import EPOCH, SimExecutor, VirtualLoop, VirtualTime
from reliability.simulation.stripe_link import READ_TIMEOUT_S, EmulatorTransport, FaultDraw, hold_in_flight
from sim.stripe_emulator.clock import EmulatorClock
from sim.stripe_emulator.emulator import StripeEmulator

TERMINAL_ID = "sim-kiosk"
API_KEY = "sk_test_simulation"


@dataclass
class Life:
    """The money core between a start and a crash."""

    store: Store
    events: EventHub
    worker: Worker
    service: PaymentService
    reader: SimReader
    changed: asyncio.Event  # set by every event the core publishes


class World:
    def __init__(self, seed: int, folder: Path) -> None:
        self.seed = seed
        draw = random.Random(seed)
        # One stream per concern, so that a change to one leaves the others' draws as they were.
        self.rng = {name: random.Random(draw.getrandbits(64)) for name in ("pos", "faults", "net", "jitter", "world")}
        self.time = VirtualTime()
        self.loop = VirtualLoop(self.time)
        self.skew = 0.0  # the daemon's wall clock minus true time (jumps at boot, NTP, ...)
        self.emulator = StripeEmulator(clock=EmulatorClock(wall=self.true_time), search_lag_s=2.0, pause=hold_in_flight)
        self.trace: list[str] = []
        self.faults = FaultDraw(self.rng["faults"], rate=self.rng["world"].choice((0.0, 0.05, 0.15, 0.3)))
        self.network_retries = self.rng["world"].choice((0, 2))
        self.transport = EmulatorTransport(self.emulator, self.faults, self.note, self.loop.call_later)
        self.executor = SimExecutor(self.loop, self.rng["net"], extra_delay=self.transport.take_lost_delay)
        self.loop.set_default_executor(self.executor)
        self.record = PosRecord()
        self.db = folder / "payments.sqlite3"
        self.lives = 0
        self.life: Life | None = None
        # The tasks a crash ended. Python 3.11's wait_for can swallow a cancellation, so one may run
        # on for a step: it meets the closed store (nothing it does can commit, so nothing it does
        # can be sent or told), and what it raises then is not the living core's.
        self.dead: set[asyncio.Future[object]] = set()
        self.met: Counter[str] = Counter()  # what the POS and the customer did that the figures count

    def exercised(self) -> Counter[str]:
        """What this seed met besides the faults: the figures that show each kind of step is covered."""
        stripe_side = Counter({"requests held in flight": self.transport.holds, "409s met": self.transport.in_use})
        return stripe_side + self.met

    def true_time(self) -> float:
        """Stripe's clock: never jumps."""
        return EPOCH + self.time.now

    def wall(self) -> float:
        """The daemon's wall clock."""
        return EPOCH + self.time.now + self.skew

    def note(self, what: str) -> None:
        self.trace.append(f"{self.time.now:.6f} {what}")

    def jump_wall_clock(self, seconds: float) -> None:
        self.skew += seconds
        self.note(f"wall clock jumps {seconds:+.0f} s")

    async def start(self) -> Life:
        """Build the money core from the store, as the daemon's start does."""
        self.lives += 1
        self.note(f"start, life {self.lives}")
        store = Store.open(self.db)
        gateway = StripeGateway(
            GatewaySettings(api_key=API_KEY, read_timeout_s=READ_TIMEOUT_S, max_network_retries=self.network_retries),
            http_client=self.transport,
        )
        events = EventHub()
        settings = WorkerSettings()
        worker = Worker(
            store,
            gateway,
            events,
            settings,
            clock=self.wall,
            pacer=Pacer(settings.requests_per_second, clock=self.time.monotonic),
            monotonic=self.time.monotonic,
            jitter=random.Random(self.rng["jitter"].getrandbits(64)),
        )
        reader = SimReader()
        service = PaymentService(store, worker, reader, events, ServiceSettings(TERMINAL_ID), clock=self.wall)
        life = Life(store, events, worker, service, reader, asyncio.Event())
        events.subscribe(self._listener(life))
        await service.recover()
        asyncio.get_running_loop().create_task(worker.run())
        self.life = life
        return life

    def _listener(self, life: Life) -> Callable[[Event], None]:
        def heard(event: Event) -> None:
            self.record.note_payments(event.data)  # what a POS subscribed to events is told
            life.changed.set()

        return heard

    def crash(self, spare: set[asyncio.Task[object]]) -> None:
        """SIGKILL: every task of the process ends where it is, requests on the wire may still land,
        and the SQLite file is all that is left (closing the connection commits nothing)."""
        self.note(f"crash, life {self.lives}")
        current = asyncio.current_task()
        for task in asyncio.all_tasks():
            if task is not current and task not in spare:
                task.cancel()
                self.dead.add(task)
        if self.life is not None:
            self.life.store.close()  # first: from here on nothing of this life can commit
            self.life = None
        self.loop.forget_timers(spare=self.transport.held.values())  # Stripe's: it goes on executing
        sent = self.executor.crash()
        self.note(f"{sent} requests in flight reached Stripe after the crash")
