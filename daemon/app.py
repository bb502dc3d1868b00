"""`readerhostd`: the composition root.

Start order: configuration, the Stripe side (the built-in emulator when no key is configured),
the store, the worker, the reader, the payment service, then the socket. Stop order is the
reverse: stop accepting, cancel a waiting collection, let operations in flight commit their
results, close the store, stop the emulator.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import importlib.metadata
import logging
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from readerhost.drivers.reader import DRIVERS
from readerhost.drivers.reader.base import UNREACHED, Cart, ReaderContext, ReaderError

from .api.layer import PosApi
from .api.listen import SocketInUse, bind_unix_socket
from .api.protocol import PROTOCOL_VERSION
from .api.server import PeerPolicy, ServerLimits
from .config import (
    EMULATOR_KEY,
    Config,
    ConfigError,
    load_config,
    mode_of,
    resolve_api_key,
    resolve_socket_path,
    resolve_store_path,
)
from .journal import MessageId, configure_logging
from .payments.events import Event, EventHub
from .payments.model import Reason, rfc3339
from .payments.offline import OfflineLimits
from .payments.service import PaymentService, RequestRefused, ServiceSettings
from .payments.store import StorageError, Store
from .payments.worker import Worker, WorkerSettings
from .systemd import Notifier, Watchdog, listen_sockets, unset_environment

logger = logging.getLogger("readerhostd")


def version() -> str:
    try:
        return importlib.metadata.version("readerhost")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


class Daemon:
    def __init__(
        self,
        config: Config,
        env: Mapping[str, str],
        *,
        cwd: Path,
        home: Path,
        display_bus: object | None = None,
        gpio_factory: object | None = None,
        ble_backends: tuple[Any, Any] | None = None,
    ) -> None:
        """`display_bus`, `gpio_factory` and `ble_backends` (bleak's client and scanner backends) stand
        in for the I²C bus, the pin factory and the Bluetooth stack (tests)."""
        self.config = config
        self.boot_id = str(uuid.uuid4())
        self.started_at = time.monotonic()
        self.version = version()
        self._env = env
        self._api_key = resolve_api_key(config, env)
        self.mode = mode_of(self._api_key, config)
        if self.mode == "live" and config.reader.driver == "simulated":
            raise ConfigError(
                f"{config.source}: [reader] driver: the simulated reader has only test cards and cannot take "
                "payments with a live Stripe key; configure a real reader or a test key"
            )
        self.socket_path = resolve_socket_path(config, env, cwd)
        self.store_path = resolve_store_path(config, env, home)
        self._events = EventHub()
        self._display: list[str] = []
        self._display_timer: asyncio.TimerHandle | None = None
        self._emulator: Any = None
        self._emulator_thread: threading.Thread | None = None
        self._store: Store | None = None
        self._worker_task: asyncio.Task[None] | None = None
        self._serving = False  # the socket is ours to remove (not when systemd passed it)
        self._notifier: Notifier | None = None
        self._watchdog_task: asyncio.Task[None] | None = None
        self._display_bus = display_bus
        self._gpio_factory = gpio_factory
        self._ble_backends = ble_backends
        self.ui: Any = None  # the kiosk UI (daemon.ui.controller.UiController), when a display or GPIO is set up
        self._started = False

    # -- start and stop -----------------------------------------------------------------------

    async def start(self) -> None:
        api_base, api_key = self._stripe_endpoint()
        from .payments.gateway import GatewaySettings, StripeGateway
        from .payments.reconcile import Reconciler
        from .payments.terminal_api import StripeTerminalApi

        self._store = store = Store.open(self.store_path)
        stripe_config = self.config.stripe
        gateway_settings = GatewaySettings(
            api_key=api_key,
            api_base=api_base,
            connect_timeout_s=stripe_config.connect_timeout_s,
            read_timeout_s=stripe_config.read_timeout_s,
            max_network_retries=stripe_config.max_network_retries,
        )
        gateway = StripeGateway(gateway_settings)
        self.worker = Worker(
            store, gateway, self._events, WorkerSettings(requests_per_second=stripe_config.requests_per_second)
        )
        driver = DRIVERS[self.config.reader.driver]
        self.reader = driver.open_reader(
            self.config.reader_settings(driver.SETTINGS),
            ReaderContext(
                self.config.reader,
                self._reader_changed,
                f"readerhostd {self.version}",
                terminal_api=lambda: StripeTerminalApi(gateway_settings),
                ble_backends=self._ble_backends,
            ),
        )
        await self.reader.start()
        payments = self.config.payments
        offline = OfflineLimits(
            payments.offline_max_payment_amount,
            payments.offline_max_total_amount,
            payments.offline_max_count,
            payments.offline_max_age_s,
        )
        self.service = PaymentService(
            store,
            self.worker,
            self.reader,
            self._events,
            ServiceSettings(stripe_config.terminal_id, offline),
        )
        self.reconciler = reconciler = Reconciler(
            store, gateway, self.service, stripe_config.terminal_id, grace_s=payments.reconcile_grace_s
        )
        api = self.config.api
        pos_api = PosApi(
            payments=self.service,
            reconciler=reconciler,
            status=self,
            display=self,
            reader=self,
            boot_id=self.boot_id,
            banner=self.banner,
            policy=PeerPolicy(frozenset(api.allowed_uids), frozenset(api.allowed_gids)),
            limits=ServerLimits(api.max_clients, api.max_queued_messages, api.slow_client_timeout_s),
        )
        self.server = pos_api.server
        self._events.subscribe(pos_api.on_event)
        self._start_ui()
        await self.service.recover()
        self._worker_task = asyncio.create_task(self.worker.run())
        activated = listen_sockets(self._env).get("api")
        if activated is not None:
            self.socket_path = Path(activated.getsockname())
            await self.server.serve(activated)  # systemd owns this socket: it stays when we stop
        else:
            await self.server.serve(bind_unix_socket(self.socket_path))
            self._serving = True
        self._started = True
        self._tell_systemd()
        logger.info(
            "readerhostd %s ready on %s (mode %s%s, store %s)",
            self.version, self.socket_path, self.mode,
            f", Stripe emulator at {api_base}" if self.mode == "emulator" else "", self.store_path,
            extra={"journal": {"MESSAGE_ID": MessageId.DAEMON_STARTED}},
        )  # fmt: skip
        if self.mode == "emulator":
            logger.warning("no Stripe API key configured: payments go to the built-in Stripe emulator, not to Stripe")

    def reload(self, config_path: str | None) -> None:
        """SIGHUP: re-read the configuration and apply what can change safely while running —
        the log level, the offline limits, the reconciliation grace. A broken file changes nothing."""
        if self._notifier is not None:
            self._notifier.reloading()
        try:
            fresh = load_config(config_path, self._env)
        except ConfigError as error:
            logger.error("reload refused, nothing changed: %s", error)
        else:
            logging.getLogger().setLevel(fresh.log.level.upper())
            payments = fresh.payments
            self.service.set_offline_limits(
                OfflineLimits(
                    payments.offline_max_payment_amount,
                    payments.offline_max_total_amount,
                    payments.offline_max_count,
                    payments.offline_max_age_s,
                )
            )
            self.reconciler.grace_s = payments.reconcile_grace_s
            self.config = dataclasses.replace(self.config, log=fresh.log, payments=fresh.payments)
            logger.info(
                "reloaded %s: log level %s, offline limits and reconciliation grace", fresh.source, fresh.log.level
            )
        if self._notifier is not None:
            self._notifier.reloaded(self.status_line())

    def _tell_systemd(self) -> None:
        """READY once the socket accepts; STATUS kept current; the watchdog proves loop and worker alive."""
        self._notifier = Notifier.from_env(self._env)
        if self._notifier is None:
            return
        watchdog = Watchdog.from_env(self._env, self._notifier)
        if watchdog is not None:
            self._watchdog_task = asyncio.create_task(watchdog.run(self._healthy))
        self._notifier.ready(self.status_line())
        self._events.subscribe(self._status_changed)

    def _status_changed(self, event: Event) -> None:
        if self._notifier is not None:
            self._notifier.status(self.status_line())  # sent only when the line changed

    async def _healthy(self) -> bool:
        """The event loop answers (we are running on it) and the worker's loop is alive."""
        return self._worker_task is not None and not self._worker_task.done()

    def status_line(self) -> str:
        """One line for `systemctl status`: e.g. "ready · reader sim-1 ready · 0 queued · online"."""
        queue = self.queue_status()["pending"]
        stripe = "online" if self.worker.health.reachable else "Stripe unreachable"
        mode = "" if self.mode == "live" else f" · {self.mode} mode"
        return f"ready · reader {self._reader_summary()} · {queue} queued · {stripe}{mode}"

    def _reader_summary(self) -> str:
        """e.g. "sim-1 ready", or "disconnected" for a reader never reached."""
        reader = self.reader.status()
        return f"{reader['id']} {reader['state']}" if reader["id"] else str(reader["state"])

    def _reader_changed(self, kind: str, data: dict[str, Any]) -> None:
        """The reader's link came up or went down: the journal, the POS and the screen hear of it."""
        fields = {"READER_ID": str(data.get("id")), "READER_MODEL": str(data.get("model"))}
        if kind == "reader.connected":
            fields["MESSAGE_ID"] = MessageId.READER_CONNECTED
            logger.info("reader %s (%s) %s", data["id"], data["model"], data["reason"], extra={"journal": fields})
        else:
            fields["MESSAGE_ID"] = MessageId.READER_LOST
            logger.warning("reader %s lost: %s", data["id"], data["reason"], extra={"journal": fields})
        self._events.publish(Event("reader", kind, data))

    def _start_ui(self) -> None:
        """The OLED and the buttons and LEDs, when configured; the daemon runs the same without them."""
        from readerhost.drivers.display import Panel
        from readerhost.drivers.gpio import Controls

        panel = Panel.open(self.config.display, bus=self._display_bus)
        controls = Controls.open(
            self.config.gpio, asyncio.get_running_loop(), self._pressed, factory=self._gpio_factory
        )
        if panel is None and controls is None:
            return
        from .ui.controller import UiController

        # A serial or BLE reader is not reached yet: the screen says so until reader.connected.
        reader_connected = self.reader.status()["state"] not in UNREACHED
        self.ui = UiController(
            panel,
            controls,
            self.service,
            mode=self.mode,
            technician_info=self._technician_info,
            reader_connected=reader_connected,
        )
        self._events.subscribe(self.ui.on_event)
        self.ui.refresh()

    def _pressed(self, button: str) -> None:
        if self.ui is not None:
            self.ui.on_press(button)

    def _technician_info(self) -> dict[str, Any]:
        return {
            "reader": self._reader_summary(),
            "queue": self.queue_status()["pending"],
            "version": self.version,
        }

    def _stripe_endpoint(self) -> tuple[str | None, str]:
        if self.mode == "emulator" and not self.config.stripe.api_base:
            from readerhost.sim.stripe_emulator import EmulatorHTTPServer, StripeEmulator

            self._emulator = EmulatorHTTPServer(StripeEmulator(), self.config.stripe.emulator_port)
            self._emulator_thread = threading.Thread(
                target=self._emulator.serve_forever, kwargs={"poll_interval": 0.05}, name="stripe-emulator", daemon=True
            )
            self._emulator_thread.start()
            return self._emulator.url, EMULATOR_KEY
        return self.config.stripe.api_base or None, self._api_key or EMULATOR_KEY

    async def stop(self) -> None:
        if self._notifier is not None:
            self._notifier.stopping()
        if self._watchdog_task is not None:
            self._watchdog_task.cancel()
        if hasattr(self, "server"):
            await self.server.close()
        if self._serving:
            with contextlib.suppress(OSError):
                self.socket_path.unlink()
        if hasattr(self, "service"):
            await self.service.close()
        if hasattr(self, "reader"):
            await self.reader.stop()
        if self.ui is not None:
            self.ui.close()
        if hasattr(self, "worker"):
            await self.worker.stop()
        if self._worker_task is not None:
            self._worker_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker_task
        if self._store is not None:
            self._store.close()
        if self._emulator is not None:
            self._emulator.emulator.stop()
            self._emulator.shutdown()
            self._emulator.server_close()
        if self._started:
            logger.info("readerhostd stopped")

    # -- what clients see ---------------------------------------------------------------------

    def banner(self) -> dict[str, Any]:
        return {"protocol": PROTOCOL_VERSION, "daemon": self.version, "boot_id": self.boot_id, "mode": self.mode}

    def status(self) -> dict[str, Any]:
        health = self.worker.health
        assert self._store is not None
        stats = self._store.queue_stats()
        return {
            "daemon": self.version,
            "protocol": PROTOCOL_VERSION,
            "boot_id": self.boot_id,
            "mode": self.mode,
            "uptime_s": round(time.monotonic() - self.started_at, 1),
            "reader": self.reader_status(),
            "stripe": {
                "reachable": health.reachable,
                "consecutive_failures": health.consecutive_failures,
                "last_ok_at": rfc3339(health.last_ok_at) if health.last_ok_at else None,
            },
            "queue": self.queue_status(),
            "offline": {"count": stats.offline_count, "amount_by_currency": stats.offline_amount_by_currency},
        }

    def reader_status(self) -> dict[str, Any]:
        return self.reader.status()

    def queue_status(self) -> dict[str, Any]:
        assert self._store is not None
        stats = self._store.queue_stats()
        oldest = None if stats.oldest_created_at is None else round(time.time() - stats.oldest_created_at, 1)
        return {"pending": stats.pending, "oldest_age_s": oldest}

    def show_text(self, lines: list[str], ttl_s: float | None) -> None:
        self._display = list(lines)
        if self._display_timer is not None:
            self._display_timer.cancel()
            self._display_timer = None
        if ttl_s is not None:
            self._display_timer = asyncio.get_running_loop().call_later(ttl_s, self.show_text, [], None)
        self._events.publish(Event("display", "display.changed", {"lines": list(self._display)}))

    def present_card(self, card: str) -> None:
        from readerhost.drivers.reader.simulated import NotCollecting, SimulatedReader

        if not isinstance(self.reader, SimulatedReader):
            raise RequestRefused(
                Reason.UNSUPPORTED, f"the {self.config.reader.driver} reader takes real cards, not test cards"
            )
        try:
            self.reader.present(card)
        except NotCollecting as error:
            raise RequestRefused(Reason.INVALID_STATE, str(error)) from None
        except ValueError as error:
            raise RequestRefused(Reason.NOT_FOUND, str(error)) from None

    async def display_cart(self, cart: Cart) -> None:
        """reader.display_cart: the items on a Stripe smart reader's screen, between payments."""
        from readerhost.drivers.reader.stripe_terminal import SmartReader

        if not isinstance(self.reader, SmartReader):
            raise RequestRefused(Reason.UNSUPPORTED, f"the {self.config.reader.driver} reader has no screen for a cart")
        holder = self.service.reader_holder()
        if holder is not None:
            raise RequestRefused(
                Reason.BUSY, f"payment {holder} holds the reader: a cart would replace its prompt", retryable=True
            )
        try:
            await self.reader.show_cart(cart)
        except ReaderError as error:
            raise RequestRefused(Reason.READER_UNAVAILABLE, error.message, retryable=True) from None


async def serve(daemon: Daemon, config_path: str | None = None) -> None:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="readerhostd", description="The readerhost card-reader daemon.")
    parser.add_argument("--config", metavar="PATH", help="configuration file (default: $READERHOST_CONFIG, "
                        "/etc/readerhost/readerhost.toml if it exists, else built-in defaults)")  # fmt: skip
    parser.add_argument("--version", action="version", version=f"readerhostd {version()}")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, os.environ)
    except ConfigError as error:
        print(f"readerhostd: {error}", file=sys.stderr)
        return 2
    configure_logging(config.log.level, os.environ)
    try:
        daemon = Daemon(config, os.environ, cwd=Path.cwd(), home=Path.home())
        asyncio.run(serve(daemon, args.config))
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
