"""The configured card reader: which driver, with which settings. Each driver's libraries are
imported only when that driver is chosen (pyserial for serial, bleak for BLE)."""

from __future__ import annotations

from typing import Any

from readerhost.drivers.reader.base import ReaderDriver
from readerhost.drivers.reader.link.reader import LinkReader, LinkSettings, Notify

from .config import ReaderConfig


def open_reader(
    config: ReaderConfig, notify: Notify, host: str, ble_backends: tuple[Any, Any] | None = None
) -> ReaderDriver:
    """The reader for `config`; `ble_backends` (client, scanner) replace bleak's platform backends (tests)."""
    if config.driver == "simulated":
        from readerhost.drivers.reader.simulated import SimulatedReader

        simulated = config.simulated
        return SimulatedReader(simulated.card, simulated.present_after_s, simulated.retry_card_once)
    settings = LinkSettings(
        card_wait_s=config.card_wait_s, cancel_confirm_s=config.cancel_confirm_s, backoff_max_s=config.reconnect_max_s
    )
    transport: Any
    if config.driver == "serial":
        from readerhost.drivers.reader.serial import SerialTransport

        transport = SerialTransport(config.serial.device, config.serial.baudrate)
    elif config.driver == "ble":
        from readerhost.drivers.reader.ble import BleSettings, BleTransport

        ble = config.ble
        client_backend, scanner_backend = ble_backends or (None, None)
        transport = BleTransport(
            BleSettings(ble.address or None, ble.scan_timeout_s, ble.connect_timeout_s), client_backend, scanner_backend
        )
    else:
        raise ValueError(f"no reader driver {config.driver!r}")  # config.py refuses it first
    return LinkReader(transport, settings, notify, host)
