"""The configured card reader: which driver, with which settings. Each driver is imported only
when chosen, with its libraries (pyserial for serial, bleak for BLE); a Stripe smart reader talks
to Stripe with the gateway's settings."""

from __future__ import annotations

from typing import Any

from readerhost.drivers.reader.base import Notify, ReaderDriver

from .config import ReaderConfig
from .payments.gateway import GatewaySettings


def open_reader(
    config: ReaderConfig,
    notify: Notify,
    host: str,
    stripe: GatewaySettings,
    ble_backends: tuple[Any, Any] | None = None,
) -> ReaderDriver:
    """The reader for `config`; `ble_backends` (client, scanner) replace bleak's platform backends (tests)."""
    if config.driver == "simulated":
        from readerhost.drivers.reader.simulated import SimulatedReader

        simulated = config.simulated
        return SimulatedReader(simulated.card, simulated.present_after_s, simulated.retry_card_once)
    if config.driver == "stripe_terminal":
        from readerhost.drivers.reader.stripe_terminal import SmartReader, SmartReaderSettings

        from .payments.terminal_api import StripeTerminalApi

        smart = config.stripe_terminal
        smart_settings = SmartReaderSettings(
            reader_id=smart.reader_id,
            registration_code=smart.registration_code,
            location=smart.location,
            card_wait_s=config.card_wait_s,
            cancel_confirm_s=config.cancel_confirm_s,
        )
        return SmartReader(StripeTerminalApi(stripe), smart_settings, notify)
    from readerhost.drivers.reader.link.reader import LinkReader, LinkSettings

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
