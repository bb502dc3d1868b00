"""Card-reader drivers behind one small interface (base.Reader), and their registry.

A driver is one module with its [reader.<name>] settings (`SETTINGS`), what it can do
(`CAPABILITIES`) and one entry point, `open_reader(settings, context)`; adding one is its file plus one
line in DRIVERS. A driver module imports its libraries (pyserial, bleak) only when opened, so the
daemon loads a driver's libraries only when that driver is configured.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from readerhost.drivers.settings import Int, Number, Section, Settings, Text, setting

from . import ble, serial, simulated, stripe_terminal
from .base import Capability, ReaderContext, ReaderDriver


class Driver(Protocol):
    """What a reader driver module offers."""

    @property
    def SETTINGS(self) -> Section[Any]: ...

    @property
    def CAPABILITIES(self) -> frozenset[Capability]: ...

    def open_reader(self, settings: Any, context: ReaderContext) -> ReaderDriver:
        """The reader, not started yet; `settings` is an instance of SETTINGS.cls."""
        ...


DRIVERS: Mapping[str, Driver] = {
    "simulated": simulated,
    "serial": serial,
    "ble": ble,
    "stripe_terminal": stripe_terminal,
}


@dataclass(frozen=True)
class ReaderSettings(Settings):
    """[reader]: which driver, and the settings every driver shares."""

    driver: str = setting("simulated", Text())  # a name in DRIVERS (the loader checks it against its registry)
    card_wait_s: int = setting(60, Int(5, 3600))  # how long a reader waits for a card before giving up
    cancel_confirm_s: float = setting(2.0, Number(above=0))  # how long a cancel waits for the reader's word
    reconnect_max_s: float = setting(30.0, Number(above=0))  # the longest wait between two tries to reach a reader


SETTINGS = Section("reader", ReaderSettings)
