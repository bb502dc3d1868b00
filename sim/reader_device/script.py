"""What the emulated reader is (DeviceIdentity), how it behaves in a collection (DeviceScript), and
the link's timings (LinkTimings). Plain frozen values, checked when built."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from readerhost.drivers.reader.link.codec import DISPLAY_MESSAGES, ERROR_CODES, OPTIONS, READ_METHODS
from readerhost.sim.stripe_emulator.testcards import TEST_CARDS


def _printable(name: str, value: str) -> None:
    if not (0 < len(value) <= 64 and value.isprintable()):
        raise ValueError(f"{name} must be 1-64 printable characters")


@dataclass(frozen=True)
class DeviceIdentity:
    """What WELCOME reports, and the protocol versions the device speaks."""

    model: str = "readerhost-emulator"
    serial: str = "EMU-0001"
    firmware: str = "1.0.0"
    battery: int | None = 100  # None: mains powered, no battery
    charging: bool = False
    versions: tuple[int, ...] = (1,)

    def __post_init__(self) -> None:
        _printable("model", self.model)
        _printable("serial", self.serial)
        _printable("firmware", self.firmware)
        if self.battery is not None and not 0 <= self.battery <= 100:
            raise ValueError("battery must be 0-100 or None")
        if not self.versions or not all(type(v) is int and 1 <= v <= 255 for v in self.versions):
            raise ValueError("versions must be one or more integers 1-255")


@dataclass(frozen=True)
class DeviceScript:
    """How the device runs each collection; read when a COLLECT arrives (a new script applies to
    the next collection). The steps, each `delay_s` apart:

    1. INPUT_OPTIONS with `input_options`;
    2. one DISPLAY_MESSAGE per entry of `prompts`, in order;
    3. the device now waits for a card ("collecting"): `card` is presented by itself
       `present_after_s` later (None: only `ReaderDevice.present()` presents one);
       with `error` set, it instead ends the collection with ERROR `error` after `present_after_s`;
       no card within the COLLECT's `wait_s` ends it with ERROR card_read_timed_out;
    4. with `card_events`, CARD card_inserted and CARD card_removed around the read;
    5. COLLECTED with the test card's reference, brand and last4, read by `read_method`
       (default: contact_emv with `card_events`, else the card's own default read method).
    """

    card: str | None = "visa"
    present_after_s: float = 1.0
    prompts: tuple[str, ...] = ()
    input_options: tuple[str, ...] = ("tap", "insert", "swipe")
    error: str | None = None
    card_events: bool = False
    read_method: str | None = None
    delay_s: float = 0.0

    def __post_init__(self) -> None:
        if self.card is not None and self.card not in TEST_CARDS:
            raise ValueError(f"unknown test card {self.card!r} (known: {', '.join(TEST_CARDS)})")
        if not 0 <= self.present_after_s <= 3600:
            raise ValueError("present_after_s must be 0-3600")
        if not 0 <= self.delay_s <= 60:
            raise ValueError("delay_s must be 0-60")
        for prompt in self.prompts:
            if prompt not in DISPLAY_MESSAGES:
                raise ValueError(f"unknown display message {prompt!r} (known: {', '.join(DISPLAY_MESSAGES)})")
        if not self.input_options or len(set(self.input_options)) != len(self.input_options):
            raise ValueError("input_options must be one or more distinct options")
        for option in self.input_options:
            if option not in OPTIONS:
                raise ValueError(f"unknown input option {option!r} (known: {', '.join(OPTIONS)})")
        if self.error is not None and self.error not in ERROR_CODES:
            raise ValueError(f"unknown error code {self.error!r} (known: {', '.join(ERROR_CODES)})")
        if self.read_method is not None and self.read_method not in READ_METHODS:
            raise ValueError(f"unknown read method {self.read_method!r} (known: {', '.join(READ_METHODS)})")

    def updated(self, changes: Mapping[str, Any]) -> DeviceScript:
        """This script with `changes` (field name to value, as from JSON) applied; ValueError if bad."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown script field(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        values = dict(changes)
        for name in ("prompts", "input_options"):
            if name in values:
                values[name] = _strings(name, values[name])
        for name in ("card", "error", "read_method"):
            if name in values and values[name] is not None and not isinstance(values[name], str):
                raise ValueError(f"{name} must be a string or null")
        for name in ("present_after_s", "delay_s"):
            if name in values and (isinstance(values[name], bool) or not isinstance(values[name], int | float)):
                raise ValueError(f"{name} must be a number")
        if "card_events" in values and not isinstance(values["card_events"], bool):
            raise ValueError("card_events must be true or false")
        return replace(self, **values)


def _strings(name: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{name} must be a list of strings")
    return tuple(value)


@dataclass(frozen=True)
class LinkTimings:
    """The protocol's timers (§ 3); tests shorten them."""

    ack_timeout_s: float = 0.5
    retransmissions: int = 3
    host_silence_s: float = 15.0
