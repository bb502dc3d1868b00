"""`readerhostd`: the composition root.

`build` makes every part before anything starts: the Stripe side (the built-in emulator when no
key is configured), the store, the worker, the reader, the payment service, reconciliation and the
POS API. Each part gets what it needs in its constructor. `Daemon.start` then starts them in order,
and `Daemon.stop` undoes everything in reverse:

    start: emulator, reader, payments (recover), worker, deadline watch, metrics file, autopilot, socket,
           systemd (READY), then the Stripe client and the screen and buttons
    stop:  screen and buttons, systemd (STOPPING), socket, autopilot, metrics file, deadline watch, worker
           (operations in flight commit), payments (waiting collections canceled), reader, store, emulator

What READY needs is the socket served and the payments recovered (docs/operations.md); the Stripe
client (importing stripe), the panel and the pins (importing Pillow, luma, gpiozero, and finding
gpiozero's pin factory) come after it, so that the POS is served a few hundred milliseconds sooner
after a restart. `start` returns once they are up too.

Each undo step stands alone: one that fails is logged with its traceback and the others still run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import logging
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from readerhost.drivers.reader import DRIVERS
from readerhost.drivers.reader.base import UNREACHED, Capability, ReaderContext, ReaderDriver
from readerhost.drivers.reader.link import live_key_refusal

from .api.layer import PosApi
from .api.listen import JSONRPC_SOCKET, POS_SOCKET, SocketInUse, bind_unix_socket
from .api.reader_requests import ReaderRequests
from .api.server import PeerPolicy, ServerLimits
from .config import (
    EMULATOR_KEY,
    Config,
    ConfigError,
    Mode,
    load_config,
    mode_of,
    resolve_api_key,
    resolve_jsonrpc_socket_path,
    resolve_socket_path,
    resolve_store_path,
)
from .display_text import DisplayText
from .heap import limit_arenas, trim_periodically
from .journal import MessageId, configure_logging
from .metrics import MetricsSettings, MetricsTextfile, exposition, families
from .payments.autopilot import Autopilot, AutopilotSettings
from .payments.backup import BackupError, restore
from .payments.backup import inspect as summarize_store
from .payments.deadlines import DeadlineWatch
from .payments.events import Event, EventHub, Topic
from .payments.model import Unattended
from .payments.pacing import Pacer
from .payments.service import PaymentService, ServiceSettings
from .payments.store import StorageError, Store
from .payments.worker import Worker, WorkerSettings
from .reader_registrations import StoredRegistrations
from .status import StatusView
from .systemd import Notifier, Watchdog, listen_sockets, unset_environment
from .version import version

if TYPE_CHECKING:
    from .payments.gateway import StripeGateway
    from .payments.reconcile import Reconciler
    from .ui.controller import UiController

logger = logging.getLogger("readerhostd")


@dataclass(frozen=True)
class StandIns:
    """What tests put in place of the hardware: the I²C bus, the SPI bus, the GPIO pin factory (for
    the buttons and LEDs and an SPI panel's DC and RST lines), and bleak's (client, scanner)
    backends instead of BlueZ."""

    display_bus: object | None = None
    display_spi: object | None = None
    gpio_factory: object | None = None
    ble_backends: tuple[Any, Any] | None = None


class Teardown:
    """What was opened or started, undone in reverse order; each step on its own."""

    def __init__(self) -> None:
        self._steps: list[tuple[str, Callable[[], object]]] = []

    def push(self, what: str, undo: Callable[[], object]) -> None:
        self._steps.append((what, undo))

    async def run(self) -> None:
        while self._steps:
            what, undo = self._steps.pop()
            try:
                done = undo()
                if inspect.isawaitable(done):
                    await done
            except Exception:  # one part that cannot stop cleanly must not keep the others running
                logger.exception("stopping %s failed; going on with the rest", what)


class BuiltInEmulator:
    """The Stripe emulator, served from this process for a daemon that has no Stripe key."""

    def __init__(self, port: int) -> None:
        from readerhost.sim.stripe_emulator import EmulatorHTTPServer, StripeEmulator

        self.server = EmulatorHTTPServer(StripeEmulator(), port)  # bound now: the gateway needs its URL
        self.emulator = self.server.emulator
        self.url: str = self.server.url
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, name="stripe-emulator", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self.emulator.stop()
        if self._thread.is_alive():
            self.server.shutdown()  # waits for serve_forever, which only a started thread runs
        self.server.server_close()


@dataclass(frozen=True)
class Parts:
    """Everything readerhostd is made of, built before any of it starts."""

    events: EventHub
    emulator: BuiltInEmulator | None
    gateway: StripeGateway
    store: Store
    worker: Worker
    reader: ReaderDriver
    service: PaymentService
    reconciler: Reconciler
    status: StatusView
    display_text: DisplayText
    api: PosApi
    deadlines: DeadlineWatch
    metrics: MetricsTextfile | None
    autopilot: Autopilot


@dataclass(frozen=True)
class Identity:
    version: str
    boot_id: str
    mode: Mode
    socket_path: Path
    jsonrpc_socket_path: Path | None
    store_path: Path


async def build(
    config: Config, env: Mapping[str, str], *, cwd: Path, home: Path, stand_ins: StandIns = StandIns()
) -> Daemon:
    """The whole daemon, built and not started. What was opened on the way is closed again when a
    later part cannot be built (ConfigError, StorageError, OSError)."""
    api_key = resolve_api_key(config, env)
    mode = mode_of(api_key, config)
    driver = DRIVERS[config.reader.driver]
    if mode == "live" and Capability.PRESENTS_TEST_CARDS in driver.CAPABILITIES:
        raise ConfigError(
            f"{config.source}: [reader] driver: the {config.reader.driver} reader has only test cards and cannot "
            "take payments with a live Stripe key; configure a real reader or a test key"
        )
    refused = live_key_refusal(config.reader_settings(driver.SETTINGS)) if mode == "live" else None
    if refused is not None:
        raise ConfigError(f"{config.source}: [{driver.SETTINGS.name}] protocol: {refused}")
    identity = Identity(
        version=version(),
        boot_id=str(uuid.uuid4()),
        mode=mode,
        socket_path=resolve_socket_path(config, env, cwd),
        jsonrpc_socket_path=resolve_jsonrpc_socket_path(config, cwd),
        store_path=resolve_store_path(config, env, home),
    )
    teardown = Teardown()
    try:
        parts = await _build_parts(config, identity, api_key, stand_ins, teardown)
    except BaseException:
        await teardown.run()
        raise
    return Daemon(config, env, identity, parts, teardown, stand_ins)


async def _build_parts(
    config: Config, identity: Identity, api_key: str | None, stand_ins: StandIns, teardown: Teardown
) -> Parts:
    from .payments.gateway import GatewaySettings, StripeGateway
    from .payments.reconcile import Reconciler
    from .payments.sdk_backend import StripeSdkBackend
    from .payments.sdk_offline import ForwardedPayments
    from .payments.terminal_api import StripeTerminalApi

    events = EventHub()
    stripe = config.stripe
    emulator = None
    if identity.mode == "emulator" and not stripe.api_base:
        emulator = BuiltInEmulator(stripe.emulator_port)
        teardown.push("the Stripe emulator", emulator.close)
    gateway_settings = GatewaySettings(
        api_key=api_key or EMULATOR_KEY,
        api_base=emulator.url if emulator else stripe.api_base or None,
        connect_timeout_s=stripe.connect_timeout_s,
        read_timeout_s=stripe.read_timeout_s,
        max_network_retries=stripe.max_network_retries,
        country=stripe.country,
    )
    gateway = StripeGateway(gateway_settings)
    store = Store.open(identity.store_path)
    teardown.push("the store", store.close)
    pacer = Pacer(stripe.requests_per_second)  # the worker's requests and the reader's health checks
    worker = Worker(store, gateway, events, WorkerSettings(requests_per_second=stripe.requests_per_second), pacer=pacer)
    driver = DRIVERS[config.reader.driver]
    forwarding = ForwardedPayments(store, gateway.retrieve_intent, gateway.cancel_intent, stripe.terminal_id)
    teardown.push("the forwarded payments' checks", forwarding.close)
    reader = driver.open_reader(
        config.reader_settings(driver.SETTINGS),
        ReaderContext(
            config.reader,
            _reader_notice(events),
            f"readerhostd {identity.version}",
            terminal_api=lambda: StripeTerminalApi(gateway_settings),
            ble_backends=stand_ins.ble_backends,
            stripe_turn=pacer.turn,
            registrations=StoredRegistrations(store, config.reader.driver),
            sdk_backend=lambda location: StripeSdkBackend(
                gateway_settings, location, per_second=stripe.requests_per_second
            ),
            live=identity.mode == "live",
            forwarded=forwarding.tell,
        ),
    )
    service_settings = ServiceSettings(
        stripe.terminal_id, config.payments.offline_limits(), customer_wait_s=config.payments.customer_wait_s
    )
    service = PaymentService(store, worker, reader, events, service_settings)
    forwarding.attach(service.adopt_forwarded)
    deadlines = DeadlineWatch(store, events, config.payments.deadline_leads_s)
    autopilot = Autopilot(store, service, events, gateway.retrieve_intent, pacer.turn, _autopilot_settings(config))
    reconciler = Reconciler(
        store, gateway, service, stripe.terminal_id, grace_s=config.payments.reconcile_grace_s, autopilot=autopilot
    )
    status = StatusView(
        version=identity.version,
        boot_id=identity.boot_id,
        mode=identity.mode,
        store=store,
        worker=worker,
        reader=reader,
        unattended=lambda: autopilot.settings,
    )
    display_text = DisplayText(events)
    teardown.push("the display text", display_text.close)
    api = PosApi(
        payments=service,
        reconciler=reconciler,
        status=status,
        display=display_text,
        reader=ReaderRequests(reader, service),
        boot_id=identity.boot_id,
        banner=status.banner,
        policy=PeerPolicy(frozenset(config.api.allowed_uids), frozenset(config.api.allowed_gids)),
        limits=ServerLimits(config.api.max_clients, config.api.max_queued_messages, config.api.slow_client_timeout_s),
    )
    events.subscribe(api.on_event)
    metrics_file = _build_metrics(config.metrics, status, store, worker)
    if metrics_file is not None:
        events.subscribe(metrics_file.on_event)
    return Parts(
        events, emulator, gateway, store, worker, reader, service, reconciler, status, display_text, api, deadlines,
        metrics_file, autopilot,
    )  # fmt: skip


def _build_metrics(
    settings: MetricsSettings, status: StatusView, store: Store, worker: Worker
) -> MetricsTextfile | None:
    """The node_exporter textfile, when `[metrics] textfile` names one."""
    if not settings.textfile:
        return None
    started_at = time.time()

    def render() -> str:
        return exposition(families(status.status(), store, worker.health, started_at))

    return MetricsTextfile(Path(settings.textfile), render, settings.interval_s)


def _autopilot_settings(config: Config) -> AutopilotSettings:
    reconcile = config.reconcile
    return AutopilotSettings(Unattended(reconcile.unattended), reconcile.lead_s, reconcile.reread_s)


def _build_ui(config: Config, mode: Mode, stand_ins: StandIns, parts: Parts, teardown: Teardown) -> UiController | None:
    """The OLED and the buttons and LEDs, when configured, listening to the events from now on; the
    daemon runs the same without them."""
    from readerhost.drivers.display import Panel
    from readerhost.drivers.gpio import Controls

    ui: UiController | None = None

    def pressed(button: str) -> None:
        if ui is not None:  # always, by the time the loop delivers a press
            ui.on_press(button)

    # Before the buttons: an SPI panel reserves its DC and RST lines, so a button on one is refused.
    panel = Panel.open(
        config.display, bus=stand_ins.display_bus, spi=stand_ins.display_spi, pin_factory=stand_ins.gpio_factory
    )
    controls = Controls.open(config.gpio, asyncio.get_running_loop(), pressed, factory=stand_ins.gpio_factory)
    if panel is None and controls is None:
        return None
    from .ui.controller import UiController

    ui = UiController(
        panel,
        controls,
        parts.service,
        mode=mode,
        technician_info=parts.status.technician_info,
        # A serial or BLE reader is not reached yet: the screen says so until reader.connected.
        reader_connected=parts.reader.status()["state"] not in UNREACHED,
    )
    listening = parts.events.subscribe(ui.on_event)

    def close() -> None:
        listening()
        ui.close()

    teardown.push("the screen and buttons", close)
    return ui


def _reader_notice(events: EventHub) -> Callable[[str, dict[str, Any]], None]:
    """How a reader driver says its link came up or went down, or that it would not take a device (and
    why): the journal, the POS and the screen hear of it."""

    def notice(kind: str, data: dict[str, Any]) -> None:
        fields = {"READER_ID": str(data.get("id")), "READER_MODEL": str(data.get("model"))}
        if kind == "reader.refused":
            fields["MESSAGE_ID"] = MessageId.READER_REFUSED
            logger.error("reader %s refused: %s", data["id"], data["reason"], extra={"journal": fields})
        elif kind == "reader.connected":
            fields["MESSAGE_ID"] = MessageId.READER_CONNECTED
            logger.info("reader %s (%s) %s", data["id"], data["model"], data["reason"], extra={"journal": fields})
        else:
            fields["MESSAGE_ID"] = MessageId.READER_LOST
            logger.warning("reader %s lost: %s", data["id"], data["reason"], extra={"journal": fields})
        events.publish(Event(Topic.READER, kind, data))

    return notice


class Daemon:
    """readerhostd, built by `build`: started in order, stopped in reverse."""

    def __init__(
        self,
        config: Config,
        env: Mapping[str, str],
        identity: Identity,
        parts: Parts,
        teardown: Teardown,
        stand_ins: StandIns = StandIns(),
    ) -> None:
        self.config = config
        self.parts = parts
        self._stand_ins = stand_ins
        self._ui: UiController | None = None  # opened once READY=1 is sent
        self.version = identity.version
        self.boot_id = identity.boot_id
        self.mode = identity.mode
        self.socket_path = identity.socket_path  # a socket systemd passed replaces it at start
        self.jsonrpc_socket_path = identity.jsonrpc_socket_path  # likewise; None: no plain JSON-RPC socket
        self.store_path = identity.store_path
        self._env = env
        self._teardown = teardown
        self._notifier: Notifier | None = None
        self._running = False  # started, and not stopped since

    # What tests and benchmarks look at.
    @property
    def ui(self) -> UiController | None:
        return self._ui

    @property
    def worker(self) -> Worker:
        return self.parts.worker

    @property
    def emulator(self) -> BuiltInEmulator | None:
        return self.parts.emulator

    async def start(self) -> None:
        """Start every part in order; what started is stopped again if a later part fails."""
        try:
            await self._start()
        except BaseException:
            await self._teardown.run()
            raise
        self._running = True
        self._say_ready()
        try:
            self._start_after_ready()
        except BaseException:
            await self.stop()
            raise

    def _say_ready(self) -> None:
        parts = self.parts
        logger.info(
            "readerhostd %s ready on %s%s (mode %s%s, store %s)",
            self.version, self.socket_path,
            f" and {self.jsonrpc_socket_path} (plain JSON-RPC)" if self.jsonrpc_socket_path else "", self.mode,
            f", Stripe emulator at {parts.emulator.url}" if parts.emulator else "", self.store_path,
            extra={"journal": {"MESSAGE_ID": MessageId.DAEMON_STARTED}},
        )  # fmt: skip
        if self.mode == "emulator":
            logger.warning("no Stripe API key configured: payments go to the built-in Stripe emulator, not to Stripe")

    async def _start(self) -> None:
        parts, teardown = self.parts, self._teardown
        if parts.emulator is not None:
            parts.emulator.start()
        await parts.reader.start()
        teardown.push("the reader", parts.reader.stop)
        await parts.service.recover()
        teardown.push("the payments waiting at the reader", parts.service.close)
        worker_task = asyncio.create_task(parts.worker.run())
        teardown.push("the worker", lambda: _stop_worker(parts.worker, worker_task))
        deadline_task = asyncio.create_task(parts.deadlines.run())
        teardown.push("the deadline watch", lambda: _stop_task(deadline_task))
        if parts.metrics is not None:
            parts.metrics.start()
            teardown.push("the metrics file", parts.metrics.close)
        autopilot_task = asyncio.create_task(parts.autopilot.run())
        teardown.push("the autopilot", lambda: _stop_task(autopilot_task))
        trim_task = asyncio.create_task(trim_periodically())
        teardown.push("the heap trimming", lambda: _stop_task(trim_task))
        await self._serve()
        self._tell_systemd(worker_task)

    def _start_after_ready(self) -> None:
        """What the socket and the recovered payments do not wait for (the module's docstring)."""
        parts, teardown = self.parts, self._teardown
        preparing = asyncio.create_task(asyncio.to_thread(parts.gateway.prepare))
        teardown.push("preparing the Stripe client", lambda: _stop_task(preparing))
        self._ui = _build_ui(self.config, self.mode, self._stand_ins, parts, teardown)
        if self._ui is not None:
            self._ui.refresh()

    async def _serve(self) -> None:
        """The POS socket, and the plain JSON-RPC socket when there is one: each the socket systemd
        passed (it owns them: they stay when we stop), else one bound here (removed when we stop)."""
        server = self.parts.api.server
        activated = listen_sockets(self._env, (POS_SOCKET, JSONRPC_SOCKET))
        bound: list[Path] = []

        async def teardown() -> None:
            await server.close()
            for path in bound:
                path.unlink(missing_ok=True)

        self._teardown.push("the sockets", teardown)
        for name, plain in ((POS_SOCKET, False), (JSONRPC_SOCKET, True)):
            listening = activated.get(name)
            path = self.jsonrpc_socket_path if plain else self.socket_path
            if listening is not None:
                path = Path(listening.getsockname())
            elif path is not None:
                listening = bind_unix_socket(path)
                bound.append(path)
            else:
                continue
            await server.serve(listening, plain=plain)
            if plain:
                self.jsonrpc_socket_path = path
            else:
                self.socket_path = path

    def _tell_systemd(self, worker_task: asyncio.Task[None]) -> None:
        """READY once the socket accepts; STATUS kept current; the watchdog proves loop and worker alive."""
        notifier = self._notifier = Notifier.from_env(self._env)
        if notifier is None:
            return
        status = self.parts.status

        async def healthy() -> bool:
            return not worker_task.done()  # the event loop answers: this runs on it

        watchdog = Watchdog.from_env(self._env, notifier)
        if watchdog is not None:
            watching = asyncio.create_task(watchdog.run(healthy))
            self._teardown.push("the watchdog", watching.cancel)

        def status_changed(event: Event) -> None:
            notifier.status(status.line())  # sent only when the line changed

        notifier.ready(status.line())
        self.parts.events.subscribe(status_changed)
        self._teardown.push("systemd's notification", notifier.stopping)

    async def stop(self) -> None:
        """Undo what was started and opened, in reverse order. Idempotent."""
        await self._teardown.run()
        if self._running:
            self._running = False
            logger.info("readerhostd stopped")

    def reload(self, config_path: str | None) -> None:
        """SIGHUP: re-read the configuration and apply what can change safely while running —
        the log level, the offline limits, the reconciliation grace, the [reconcile] table (the autopilot).
        A broken file changes nothing."""
        if self._notifier is not None:
            self._notifier.reloading()
        try:
            fresh = load_config(config_path, self._env)
        except ConfigError as error:
            logger.error("reload refused, nothing changed: %s", error)
        else:
            logging.getLogger().setLevel(fresh.log.level.upper())
            self.parts.service.set_offline_limits(fresh.payments.offline_limits())
            self.parts.reconciler.grace_s = fresh.payments.reconcile_grace_s
            self.parts.autopilot.settings = _autopilot_settings(fresh)
            logger.info(
                "reloaded %s: log level %s, offline limits, reconciliation grace and [reconcile]",
                fresh.source, fresh.log.level,
            )  # fmt: skip
        if self._notifier is not None:
            self._notifier.reloaded(self.parts.status.line())


async def _stop_task(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _stop_worker(worker: Worker, task: asyncio.Task[None]) -> None:
    """Let the operations in flight commit their answers, then end the worker's loop."""
    await worker.stop()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def serve(config: Config, env: Mapping[str, str], config_path: str | None = None) -> None:
    """Build and run readerhostd until SIGTERM or SIGINT; SIGHUP reloads."""
    daemon = await build(config, env, cwd=Path.cwd(), home=Path.home())
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    loop.add_signal_handler(signal.SIGHUP, daemon.reload, config_path)
    try:
        await daemon.start()
        unset_environment(os.environ)  # what systemd handed over is ours alone, not a child's
        await stopping.wait()
        logger.info("stopping", extra={"journal": {"MESSAGE_ID": MessageId.DAEMON_STOPPING}})
    finally:
        await daemon.stop()


def restore_store(backup: Path, store: Path, *, force: bool) -> int:
    """readerhostd --restore: what was put in place and what was kept, or why nothing was changed."""
    try:
        restored = restore(backup, store, force=force)
    except (BackupError, StorageError) as error:
        print(f"readerhostd: nothing restored: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"readerhostd: nothing restored: {error.strerror}: {error.filename or ''}".rstrip(": "), file=sys.stderr)
        return 1
    print(f"restored {backup} to {store}: {restored.summary.describe()}")
    if restored.kept_as is not None and restored.replaced is not None:
        print(f"the replaced store is kept as {restored.kept_as}: {restored.replaced.describe()}")
    return 0


# readerhostd --inspect's exit status when the store still has work for Stripe (0: it has none).
STORE_HAS_WORK = 3


def inspect_store(store: Path) -> int:
    """readerhostd --inspect: what the store holds, and whether anything in it must still reach Stripe."""
    try:
        summary = summarize_store(store)
    except (BackupError, StorageError) as error:
        print(f"readerhostd: cannot inspect the store: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(
            f"readerhostd: cannot inspect the store: {error.strerror}: {error.filename or ''}".rstrip(": "),
            file=sys.stderr,
        )
        return 1
    print(f"{store}: {summary.describe()}")
    return STORE_HAS_WORK if summary.has_work_for_stripe else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="readerhostd", description="The readerhost card-reader daemon.")
    parser.add_argument("--config", metavar="PATH", help="configuration file (default: $READERHOST_CONFIG, "
                        "/etc/readerhost/readerhost.toml if it exists, else built-in defaults)")  # fmt: skip
    parser.add_argument("--version", action="version", version=f"readerhostd {version()}")
    restoring = parser.add_argument_group("the payment store (restore a backup with the daemon stopped)")
    restoring.add_argument(
        "--restore", metavar="BACKUP", help="put this backup (readerhostctl backup) in place of the store"
    )
    restoring.add_argument(
        "--store", metavar="FILE", help="with --restore or --inspect: the store file (default: the configured one)"
    )
    restoring.add_argument(
        "--force", action="store_true", help="with --restore: even over a store with work for Stripe"
    )
    restoring.add_argument(
        "--inspect",
        action="store_true",
        help=f"say what the store holds; exit status {STORE_HAS_WORK} when some of it must still reach Stripe",
    )
    args = parser.parse_args(argv)
    if args.force and not args.restore:
        parser.error("--force goes with --restore")
    if args.store and not (args.restore or args.inspect):
        parser.error("--store goes with --restore or --inspect")
    if args.restore and args.inspect:
        parser.error("--restore and --inspect go alone")
    # A store named on the command line is all --inspect and --restore need: an uninstaller can ask
    # whether a store is settled even when the configuration beside it is broken.
    if args.store:
        return (
            inspect_store(Path(args.store))
            if args.inspect
            else restore_store(Path(args.restore), Path(args.store), force=args.force)
        )
    try:
        config = load_config(args.config, os.environ)
    except ConfigError as error:
        print(f"readerhostd: {error}", file=sys.stderr)
        return 2
    if args.restore or args.inspect:
        store = resolve_store_path(config, os.environ, Path.home())
        if args.inspect:
            return inspect_store(store)
        return restore_store(Path(args.restore), store, force=args.force)
    configure_logging(config.log.level, os.environ)
    limit_arenas(os.environ)
    try:
        asyncio.run(serve(config, os.environ, args.config))
    except ConfigError as error:
        print(f"readerhostd: {error}", file=sys.stderr)
        return 2
    except (StorageError, SocketInUse) as error:
        print(f"readerhostd: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"readerhostd: {error.strerror}: {error.filename or ''}".rstrip(": "), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
