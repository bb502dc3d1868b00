"""The daemon's configuration: one TOML file read once at start, checked strictly, then frozen.

Lookup: `readerhostd --config PATH`, else `$READERHOST_CONFIG`, else /etc/readerhost/readerhost.toml
when it exists, else the built-in defaults (the dataclasses below; config/readerhost.toml documents
them). Every mistake in the file is a `ConfigError` whose message is one line naming the file and the
key, so that the journal tells a technician what to change.

Paths that depend on the environment (the socket, the store) and the Stripe key (which never goes in
the TOML) are resolved by the `resolve_*` functions, from an explicit environment mapping.

This module imports only the standard library; it has no side effects at import.
See docs/configuration.md.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import math
import os
import re
import shlex
import stat
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar
from urllib.parse import urlsplit

from readerhost.drivers.display import DISPLAY_KINDS, DisplaySettings
from readerhost.drivers.gpio import GpioSettings

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

DEFAULT_SYSTEM_CONFIG = Path("/etc/readerhost/readerhost.toml")
BUILT_IN = "built-in defaults"  # Config.source when no file was read
CONFIG_ENV = "READERHOST_CONFIG"
SOCKET_ENV = "READERHOST_SOCKET"
API_KEY_ENV = "STRIPE_API_KEY"
CREDENTIAL_NAME = "stripe-api-key"  # systemd: LoadCredential=stripe-api-key:... → $CREDENTIALS_DIRECTORY/stripe-api-key
SOCKET_NAME = "api.sock"
CWD_SOCKET_NAME = "readerhost-api.sock"
STORE_NAME = "readerhost.db"
EMULATOR_KEY = "sk_test_readerhost_emulator"  # the placeholder key for an emulator on this machine
MAX_SOCKET_PATH_BYTES = 107  # sizeof(sockaddr_un.sun_path) - 1 on Linux

READER_DRIVERS = ("simulated", "serial", "ble", "stripe_terminal")
LOG_LEVELS = ("debug", "info", "warning", "error")
SECRET_KEY_NAMES = ("api_key", "secret_key", "key")  # refused anywhere in [stripe]

Mode = Literal["emulator", "test", "live"]

_BLE_ADDRESS = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}")
_TERMINAL_ID = re.compile(r"[A-Za-z0-9._-]{1,40}")
_TEST_KEY_PREFIXES = ("sk_test_", "rk_test_")
_API_KEY = re.compile(r"[sr]k_(?:test|live)_[!-~]+")
_LOOKS_LIKE_SECRET = re.compile(r"\s*[sr]k_(?:test|live)_")
_LOOKS_LIKE_CARD_NUMBER = re.compile(r"(?:\d[ -]?){12,19}")  # a PAN is 12 to 19 digits, often grouped
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_MAX_ID = 2**32 - 2  # uid_t/gid_t; 2**32 - 1 is (uid_t) -1, "no id"
_WHERE_THE_KEY_GOES = (
    "the Stripe key never goes in the TOML: remove it, then put the key in the environment variable "
    f"{API_KEY_ENV}, or in a file (chmod 600) named by [stripe] api_key_file, "
    f"or in the systemd credential {CREDENTIAL_NAME}"
)


class ConfigError(Exception):
    """A configuration mistake, told in one line that names the file (or variable) and the key."""

    def __init__(self, message: str) -> None:
        # One line, always: a value or a path with a newline in it must not split a journal entry.
        super().__init__("".join(c if c.isprintable() else repr(c)[1:-1] for c in message))


# -- the settings -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiConfig:
    socket: str = ""  # empty: the default rules (resolve_socket_path)
    allowed_uids: tuple[int, ...] = ()  # root and the daemon's own uid are always allowed; these add more
    allowed_gids: tuple[int, ...] = ()
    max_clients: int = 32
    max_queued_messages: int = 256  # per client send queue
    slow_client_timeout_s: float = 5.0


@dataclass(frozen=True)
class StoreConfig:
    path: str = ""  # the SQLite file; empty: the default rules (resolve_store_path)


@dataclass(frozen=True)
class StripeConfig:
    api_base: str = ""  # empty: Stripe's own; an emulator's URL to use that emulator
    api_key_file: str = ""
    terminal_id: str = "readerhost"
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 20.0
    max_network_retries: int = 2
    requests_per_second: float = 20.0
    emulator_port: int = 0  # the built-in emulator's port; 0: chosen by the OS


@dataclass(frozen=True)
class SimulatedReaderConfig:
    card: str = "visa"  # an emulator test card, the part after pm_card_present_
    present_after_s: float = 2.0  # negative: only when told to by `readerhostctl present`
    retry_card_once: bool = False


@dataclass(frozen=True)
class SerialReaderConfig:
    device: str = ""  # required for the serial driver, e.g. /dev/serial/by-id/usb-...
    baudrate: int = 115_200


@dataclass(frozen=True)
class BleReaderConfig:
    address: str = ""  # empty: the first device advertising the reader link service
    scan_timeout_s: float = 10.0
    connect_timeout_s: float = 15.0


@dataclass(frozen=True)
class StripeTerminalReaderConfig:
    reader_id: str = ""  # tmr_...: the smart reader at Stripe
    registration_code: str = ""  # with no reader_id: register a reader (e.g. simulated-wpe in test mode)
    location: str = ""  # tml_...: the Terminal location a registered reader belongs to


@dataclass(frozen=True)
class ReaderConfig:
    driver: str = "simulated"
    card_wait_s: int = 60  # how long a serial or BLE reader waits for a card before giving up
    cancel_confirm_s: float = 2.0  # how long a cancel waits for the reader's word before resetting the link
    reconnect_max_s: float = 30.0  # the longest wait between two attempts to reach a lost reader
    simulated: SimulatedReaderConfig = field(default_factory=SimulatedReaderConfig)
    serial: SerialReaderConfig = field(default_factory=SerialReaderConfig)
    ble: BleReaderConfig = field(default_factory=BleReaderConfig)
    stripe_terminal: StripeTerminalReaderConfig = field(default_factory=StripeTerminalReaderConfig)


@dataclass(frozen=True)
class PaymentsConfig:
    offline_max_payment_amount: int = 10_000  # minor units
    offline_max_total_amount: int = 50_000  # minor units, per currency
    offline_max_count: int = 20
    offline_max_age_s: float = 86_400.0
    reconcile_grace_s: float = 600.0


@dataclass(frozen=True)
class LogConfig:
    level: str = "info"


@dataclass(frozen=True)
class Config:
    api: ApiConfig = field(default_factory=ApiConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    stripe: StripeConfig = field(default_factory=StripeConfig)
    reader: ReaderConfig = field(default_factory=ReaderConfig)
    payments: PaymentsConfig = field(default_factory=PaymentsConfig)
    display: DisplaySettings = field(default_factory=DisplaySettings)
    gpio: GpioSettings = field(default_factory=GpioSettings)
    log: LogConfig = field(default_factory=LogConfig)
    source: str = BUILT_IN  # the file it came from, or "built-in defaults"


def _names(cls: type[DataclassInstance]) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


TABLES = tuple(name for name in _names(Config) if name != "source")


# -- loading ----------------------------------------------------------------------------------


def load_config(path: str | None, env: Mapping[str, str], *, system_path: Path = DEFAULT_SYSTEM_CONFIG) -> Config:
    """The configuration from `--config PATH`, else $READERHOST_CONFIG, else `system_path` if it exists,
    else the built-in defaults. Raises ConfigError."""
    if path is not None:
        if not path:
            raise ConfigError("--config was given an empty path")
        config = _load_file(path, named_by="")
    elif env.get(CONFIG_ENV):
        config = _load_file(env[CONFIG_ENV], named_by=CONFIG_ENV)
    elif system_path.exists():
        config = _load_file(str(system_path), named_by="")
    else:
        config = Config()
    _check_reader(config)
    return config


def _check_reader(config: Config) -> None:
    """What the chosen reader driver needs from its own table."""
    driver = config.reader.driver
    smart = config.reader.stripe_terminal
    if driver == "stripe_terminal" and not (smart.reader_id or smart.registration_code):
        raise ConfigError(
            f"{config.source}: [reader.stripe_terminal] reader_id: the Stripe reader needs its id "
            '(reader_id = "tmr_...", from the Dashboard), or a registration_code to register one '
            '(registration_code = "simulated-wpe" makes a simulated WisePOS E in test mode)'
        )
    if driver == "serial" and not config.reader.serial.device:
        raise ConfigError(
            f"{config.source}: [reader.serial] device: the serial reader needs its device, "
            'e.g. device = "/dev/serial/by-id/usb-..." (ls /dev/serial/by-id/ lists them)'
        )


def _load_file(path: str, *, named_by: str) -> Config:
    where = f"{path} (named by {named_by})" if named_by else path
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as error:
        raise ConfigError(f"cannot read {where}: {error.strerror or error}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ConfigError(f"{path}: line {line}: not UTF-8 text; save the file as UTF-8") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: {_syntax_error(str(error))}") from None
    return _parse(document, path)


def _syntax_error(message: str) -> str:
    """tomllib's message, with its position moved to the front: 'line 3, column 7: TOML syntax error: ...'."""
    at = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
    if at:
        return f"line {at[1]}, column {at[2]}: TOML syntax error: {message[: at.start()]}"
    if message.endswith("(at end of document)"):
        return f"at the end of the file: TOML syntax error: {message.removesuffix('(at end of document)').rstrip()}"
    return f"TOML syntax error: {message}"


# -- parsing ----------------------------------------------------------------------------------

_T = TypeVar("_T")


class _Table:
    """One TOML table's values, read through typed accessors that raise ConfigError naming file and key."""

    def __init__(self, source: str, name: str, data: Mapping[str, object], known: tuple[str, ...]) -> None:
        self.source = source
        self.name = name
        self.data = data
        for key in data:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"did you mean {close[0]}? " if close else ""
                raise ConfigError(f"{source}: unknown key [{name}] {_key(key)} ({hint}known: {', '.join(known)})")

    def fail(self, key: str, must: str, value: object) -> ConfigError:
        return ConfigError(f"{self.source}: [{self.name}] {key} must be {must}, not {_show(value)}")

    def _get(self, key: str, default: _T, read: Callable[[object], _T]) -> _T:
        return read(self.data[key]) if key in self.data else default

    def string(self, key: str, default: str, *, check: Callable[[str], str | None] = lambda _: None) -> str:
        def read(value: object) -> str:
            if not isinstance(value, str):
                raise self.fail(key, "a string in double quotes", value)
            must = check(value)
            if must is not None:
                raise self.fail(key, must, value)
            return value

        return self._get(key, default, read)

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        must = f"one of {', '.join(choices)}"
        return self.string(key, default, check=lambda value: None if value in choices else must)

    def path(self, key: str, default: str) -> str:
        """A file system path; a relative one is taken relative to the configuration file's folder."""

        def check(value: str) -> str | None:
            if "\0" in value:
                return "a path without NUL characters"
            if value.startswith("~"):
                return "an absolute path (~ is not expanded), or one relative to this file's folder"
            return None

        value = self.string(key, default, check=check)
        if value and not os.path.isabs(value):
            value = os.path.join(os.path.dirname(os.path.abspath(self.source)), value)
        return value

    def integer(self, key: str, default: int, *, low: int, high: int | None = None) -> int:
        must = f"a whole number of at least {low}" if high is None else f"a whole number from {low} to {high}"

        def read(value: object) -> int:
            # bool is an int in Python, never in a configuration file.
            if not isinstance(value, int) or isinstance(value, bool):
                raise self.fail(key, must, value)
            if value < low or (high is not None and value > high):
                raise self.fail(key, must, value)
            return value

        return self._get(key, default, read)

    def number(self, key: str, default: float, *, above: float | None = None, at_least: float | None = None) -> float:
        must = "a number"
        if above is not None:
            must = f"a number above {above:g}"
        elif at_least is not None:
            must = f"a number of at least {at_least:g}"

        def read(value: object) -> float:
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise self.fail(key, must, value)
            too_low = (above is not None and value <= above) or (at_least is not None and value < at_least)
            if not math.isfinite(value) or too_low:
                raise self.fail(key, must, value)
            return float(value)

        return self._get(key, default, read)

    def flag(self, key: str, default: bool) -> bool:
        def read(value: object) -> bool:
            if not isinstance(value, bool):
                raise self.fail(key, "true or false", value)
            return value

        return self._get(key, default, read)

    def optional_pin(self, key: str, default: int | None) -> int | None:
        """A GPIO (BCM) pin number, or -1 in the file for none."""
        must = "a BCM pin number from 0 to 27, or -1 for none"

        def read(value: object) -> int | None:
            if not isinstance(value, int) or isinstance(value, bool) or not -1 <= value <= 27:
                raise self.fail(key, must, value)
            return None if value == -1 else value

        return self._get(key, default, read)

    def pins(self, key: str, default: tuple[int, int, int] | None) -> tuple[int, int, int] | None:
        must = "three BCM pin numbers [red, green, blue], or [] for none"

        def read(value: object) -> tuple[int, int, int] | None:
            if value == []:
                return None
            if (
                not isinstance(value, list)
                or len(value) != 3
                or not all(isinstance(p, int) and not isinstance(p, bool) and 0 <= p <= 27 for p in value)
            ):
                raise self.fail(key, must, value)
            return (value[0], value[1], value[2])

        return self._get(key, default, read)

    def ids(self, key: str, default: tuple[int, ...]) -> tuple[int, ...]:
        must = f"a list of whole numbers from 0 to {_MAX_ID}, like [1000, 1001]"

        def read(value: object) -> tuple[int, ...]:
            if not isinstance(value, list):
                raise self.fail(key, must, value)
            for item in value:
                if not isinstance(item, int) or isinstance(item, bool) or not 0 <= item <= _MAX_ID:
                    raise self.fail(key, must, value)
            return tuple(value)

        return self._get(key, default, read)


def _parse(document: Mapping[str, object], source: str) -> Config:
    _refuse_secrets(document, source)
    for name, value in document.items():
        if name not in TABLES:
            if isinstance(value, dict):
                raise ConfigError(f"{source}: unknown table [{_key(name)}] (known: {', '.join(TABLES)})")
            raise ConfigError(
                f"{source}: unknown key {_key(name)} outside any table (known tables: {', '.join(TABLES)})"
            )
    api = _table(document, source, "api", ApiConfig)
    store = _table(document, source, "store", StoreConfig)
    stripe = _table(document, source, "stripe", StripeConfig)
    reader = _table(document, source, "reader", ReaderConfig)
    simulated = _table(reader.data, source, "reader.simulated", SimulatedReaderConfig, key="simulated")
    serial = _table(reader.data, source, "reader.serial", SerialReaderConfig, key="serial")
    ble = _table(reader.data, source, "reader.ble", BleReaderConfig, key="ble")
    smart = _table(reader.data, source, "reader.stripe_terminal", StripeTerminalReaderConfig, key="stripe_terminal")
    payments = _table(document, source, "payments", PaymentsConfig)
    display = _table(document, source, "display", DisplaySettings)
    gpio = _table(document, source, "gpio", GpioSettings)
    log = _table(document, source, "log", LogConfig)

    d = Config()
    return Config(
        api=ApiConfig(
            socket=api.path("socket", d.api.socket),
            allowed_uids=api.ids("allowed_uids", d.api.allowed_uids),
            allowed_gids=api.ids("allowed_gids", d.api.allowed_gids),
            max_clients=api.integer("max_clients", d.api.max_clients, low=1),
            max_queued_messages=api.integer("max_queued_messages", d.api.max_queued_messages, low=1),
            slow_client_timeout_s=api.number("slow_client_timeout_s", d.api.slow_client_timeout_s, above=0),
        ),
        store=StoreConfig(path=store.path("path", d.store.path)),
        stripe=StripeConfig(
            api_base=stripe.string("api_base", d.stripe.api_base, check=_check_api_base),
            api_key_file=stripe.path("api_key_file", d.stripe.api_key_file),
            terminal_id=stripe.string("terminal_id", d.stripe.terminal_id, check=_check_terminal_id),
            connect_timeout_s=stripe.number("connect_timeout_s", d.stripe.connect_timeout_s, above=0),
            read_timeout_s=stripe.number("read_timeout_s", d.stripe.read_timeout_s, above=0),
            max_network_retries=stripe.integer("max_network_retries", d.stripe.max_network_retries, low=0, high=10),
            requests_per_second=stripe.number("requests_per_second", d.stripe.requests_per_second, above=0),
            emulator_port=stripe.integer("emulator_port", d.stripe.emulator_port, low=0, high=65535),
        ),
        reader=ReaderConfig(
            driver=reader.choice("driver", d.reader.driver, READER_DRIVERS),
            card_wait_s=reader.integer("card_wait_s", d.reader.card_wait_s, low=5, high=3600),
            cancel_confirm_s=reader.number("cancel_confirm_s", d.reader.cancel_confirm_s, above=0),
            reconnect_max_s=reader.number("reconnect_max_s", d.reader.reconnect_max_s, above=0),
            serial=SerialReaderConfig(
                device=serial.path("device", d.reader.serial.device),
                baudrate=serial.integer("baudrate", d.reader.serial.baudrate, low=50, high=4_000_000),
            ),
            ble=BleReaderConfig(
                address=ble.string("address", d.reader.ble.address, check=_check_ble_address),
                scan_timeout_s=ble.number("scan_timeout_s", d.reader.ble.scan_timeout_s, above=0),
                connect_timeout_s=ble.number("connect_timeout_s", d.reader.ble.connect_timeout_s, above=0),
            ),
            stripe_terminal=StripeTerminalReaderConfig(
                reader_id=smart.string("reader_id", d.reader.stripe_terminal.reader_id, check=_check_id("tmr_")),
                registration_code=smart.string(
                    "registration_code", d.reader.stripe_terminal.registration_code, check=_check_registration_code
                ),
                location=smart.string("location", d.reader.stripe_terminal.location, check=_check_id("tml_")),
            ),
            simulated=SimulatedReaderConfig(
                card=simulated.string("card", d.reader.simulated.card, check=_check_card),
                present_after_s=simulated.number("present_after_s", d.reader.simulated.present_after_s),
                retry_card_once=simulated.flag("retry_card_once", d.reader.simulated.retry_card_once),
            ),
        ),
        payments=PaymentsConfig(
            offline_max_payment_amount=payments.integer(
                "offline_max_payment_amount", d.payments.offline_max_payment_amount, low=1
            ),
            offline_max_total_amount=payments.integer(
                "offline_max_total_amount", d.payments.offline_max_total_amount, low=1
            ),
            offline_max_count=payments.integer("offline_max_count", d.payments.offline_max_count, low=1),
            offline_max_age_s=payments.number("offline_max_age_s", d.payments.offline_max_age_s, above=0),
            reconcile_grace_s=payments.number("reconcile_grace_s", d.payments.reconcile_grace_s, at_least=0),
        ),
        display=DisplaySettings(
            kind=display.choice("kind", d.display.kind, DISPLAY_KINDS),
            interface=display.choice("interface", d.display.interface, ("i2c", "spi")),
            i2c_bus=display.integer("i2c_bus", d.display.i2c_bus, low=0, high=255),
            i2c_address=display.integer("i2c_address", d.display.i2c_address, low=0x03, high=0x77),
            spi_port=display.integer("spi_port", d.display.spi_port, low=0, high=15),
            spi_device=display.integer("spi_device", d.display.spi_device, low=0, high=15),
            width=display.integer("width", d.display.width, low=32, high=256),
            height=display.integer("height", d.display.height, low=16, high=128),
            rotate=display.integer("rotate", d.display.rotate, low=0, high=3),
            contrast=display.integer("contrast", d.display.contrast, low=0, high=255),
            dim_after_s=display.number("dim_after_s", d.display.dim_after_s, at_least=0),
            sleep_after_s=display.number("sleep_after_s", d.display.sleep_after_s, at_least=0),
            snapshot_dir=display.path("snapshot_dir", d.display.snapshot_dir),
        ),
        gpio=GpioSettings(
            enabled=gpio.flag("enabled", d.gpio.enabled),
            ok_pin=gpio.optional_pin("ok_pin", d.gpio.ok_pin),
            cancel_pin=gpio.optional_pin("cancel_pin", d.gpio.cancel_pin),
            led_pin=gpio.optional_pin("led_pin", d.gpio.led_pin),
            led_rgb_pins=gpio.pins("led_rgb_pins", d.gpio.led_rgb_pins),
            buzzer_pin=gpio.optional_pin("buzzer_pin", d.gpio.buzzer_pin),
            bounce_s=gpio.number("bounce_s", d.gpio.bounce_s, at_least=0),
            hold_s=gpio.number("hold_s", d.gpio.hold_s, above=0),
            pin_factory=gpio.choice("pin_factory", d.gpio.pin_factory, ("", "lgpio", "rpigpio", "pigpio", "native")),
        ),
        log=LogConfig(level=log.choice("level", d.log.level, LOG_LEVELS)),
        source=source,
    )


def _table(
    parent: Mapping[str, object], source: str, name: str, cls: type[DataclassInstance], *, key: str = ""
) -> _Table:
    value = parent.get(key or name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: [{name}] must be a table (a [{name}] section), not {_show(value)}")
    return _Table(source, name, value, _names(cls))


def _refuse_secrets(document: Mapping[str, object], source: str) -> None:
    """Refuse a Stripe key in the file before anything else could echo it in a message."""
    for where, key, value in _walk(document, ()):
        in_stripe = where[:1] == ("stripe",)
        if (in_stripe and key in SECRET_KEY_NAMES) or (isinstance(value, str) and _LOOKS_LIKE_SECRET.match(value)):
            table = f"[{'.'.join(_key(part) for part in where)}] " if where else ""
            raise ConfigError(f"{source}: {table}{_key(key)}: {_WHERE_THE_KEY_GOES}")


def _walk(table: Mapping[str, object], where: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], str, object]]:
    for key, value in table.items():
        if isinstance(value, dict):
            yield from _walk(value, (*where, key))
            continue
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict):
                yield from _walk(item, (*where, key))
            else:
                yield where, key, item


def _check_id(prefix: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        if not value or (value.startswith(prefix) and _BARE_KEY.fullmatch(value) and len(value) <= 100):
            return None
        return f'a Stripe id starting with "{prefix}", or "" for none'

    return check


def _check_registration_code(value: str) -> str | None:
    if not value or (_BARE_KEY.fullmatch(value) and len(value) <= 100):
        return None
    return 'the code the reader shows (letters, digits, "-" and "_"), or "" for none'


def _check_ble_address(value: str) -> str | None:
    if not value or _BLE_ADDRESS.fullmatch(value):
        return None
    return 'a Bluetooth address like "C0:FF:EE:12:34:56", or "" to find the reader by scanning'


def _check_terminal_id(value: str) -> str | None:
    if _TERMINAL_ID.fullmatch(value):
        return None
    return '1 to 40 characters of A-Z, a-z, 0-9, ".", "_" and "-"'


def _check_card(value: str) -> str | None:
    # Imported here, not at the top: the daemon's configuration must not load the simulator.
    from readerhost.sim.stripe_emulator.testcards import PREFIX, TEST_CARDS

    if value in TEST_CARDS:
        return None
    prefix = f"the name after {PREFIX} only, " if value.startswith(PREFIX) else ""
    return f"{prefix}one of the emulator's test cards ({', '.join(TEST_CARDS)})"


def _check_api_base(value: str) -> str | None:
    if not value:
        return None
    must = "an https:// URL like https://api.stripe.com (http:// only for 127.0.0.1, ::1 or localhost)"
    try:
        url = urlsplit(value)
        _ = url.port  # raises ValueError for a port that is not a number from 0 to 65535
    except ValueError:
        return must
    if url.scheme not in ("http", "https") or not url.hostname or url.query or url.fragment:
        return must
    if url.username is not None or url.password is not None:
        return "a URL without a user name or password"
    if url.scheme == "http" and not _is_loopback_host(url.hostname):
        return must
    return None


def _is_loopback_host(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_local_api_base(api_base: str) -> bool:
    host = urlsplit(api_base).hostname
    return host is not None and _is_loopback_host(host)


def _key(key: str) -> str:
    """A TOML key as it would be written: bare when it can be, else quoted."""
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)


def _show(value: object) -> str:
    """A value as TOML would spell it, short and on one line; never a secret key, nor a card number."""
    if isinstance(value, str | int) and not isinstance(value, bool) and _LOOKS_LIKE_CARD_NUMBER.search(str(value)):
        return "something that looks like a card number (not shown)"
    if isinstance(value, str):
        if _LOOKS_LIKE_SECRET.match(value):
            return "a Stripe key (which never goes in the TOML)"
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int | float):
        text = repr(value)
    elif isinstance(value, list):
        text = "[" + ", ".join(_show(item) for item in value) + "]"
    elif isinstance(value, dict):
        text = "a table"
    elif isinstance(value, datetime | date | time):
        text = value.isoformat()
    else:
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# -- paths ------------------------------------------------------------------------------------


def resolve_socket_path(config: Config, env: Mapping[str, str], cwd: Path) -> Path:
    """The POS socket's path: $READERHOST_SOCKET, else [api] socket, else $RUNTIME_DIRECTORY/api.sock
    (a system service), else $XDG_RUNTIME_DIR/readerhost/api.sock, else ./readerhost-api.sock.
    (A socket passed by systemd wins over all of these; that is decided where sockets are opened.)"""
    if env.get(SOCKET_ENV):
        where, path = SOCKET_ENV, cwd / env[SOCKET_ENV]
    elif config.api.socket:
        where, path = f"{config.source}: [api] socket", cwd / config.api.socket
    elif runtime := _first_dir(env.get("RUNTIME_DIRECTORY", "")):
        where, path = "$RUNTIME_DIRECTORY", runtime / SOCKET_NAME
    elif runtime := _first_dir(env.get("XDG_RUNTIME_DIR", "")):
        where, path = "$XDG_RUNTIME_DIR", runtime / "readerhost" / SOCKET_NAME
    else:
        where, path = "the working folder", cwd / CWD_SOCKET_NAME
    size = len(os.fsencode(path))
    if size > MAX_SOCKET_PATH_BYTES:
        raise ConfigError(
            f"{where}: the socket path {path} is too long for a Unix socket "
            f"({size} bytes, at most {MAX_SOCKET_PATH_BYTES}); choose a shorter one"
        )
    return path


def resolve_store_path(config: Config, env: Mapping[str, str], home: Path) -> Path:
    """The SQLite file: [store] path, else $STATE_DIRECTORY/readerhost.db (a system service), else
    $XDG_STATE_HOME/readerhost/readerhost.db, else ~/.local/state/readerhost/readerhost.db."""
    if config.store.path:
        return Path(config.store.path)
    if state := _first_dir(env.get("STATE_DIRECTORY", "")):
        return state / STORE_NAME
    if state := _first_dir(env.get("XDG_STATE_HOME", "")):
        return state / "readerhost" / STORE_NAME
    return home / ".local" / "state" / "readerhost" / STORE_NAME


def _first_dir(value: str) -> Path | None:
    """The first of systemd's colon-separated directories; XDG says to ignore a relative path."""
    first = value.split(":", 1)[0]
    return Path(first) if first and os.path.isabs(first) else None


# -- the Stripe key ---------------------------------------------------------------------------


def resolve_api_key(config: Config, env: Mapping[str, str]) -> str | None:
    """The Stripe secret key: $STRIPE_API_KEY, else the file [stripe] api_key_file, else the systemd
    credential stripe-api-key; else None (the built-in emulator), or EMULATOR_KEY for an api_base on
    this machine. Never logs or shows the key. Raises ConfigError."""
    from_env = env.get(API_KEY_ENV, "").strip()
    if from_env:
        if not _API_KEY.fullmatch(from_env):
            raise ConfigError(f"{API_KEY_ENV}: {_NOT_A_KEY}")
        return from_env
    if config.stripe.api_key_file:
        return _read_key_file(Path(config.stripe.api_key_file), f"[stripe] api_key_file in {config.source}")
    credentials = env.get("CREDENTIALS_DIRECTORY", "")
    if credentials:
        credential = Path(credentials) / CREDENTIAL_NAME
        if credential.exists():
            return _read_key_file(credential, f"the systemd credential {CREDENTIAL_NAME}")
    if config.stripe.api_base:
        if _is_local_api_base(config.stripe.api_base):
            return EMULATOR_KEY
        raise _no_key(config)
    return None


def _no_key(config: Config) -> ConfigError:
    return ConfigError(
        f"{config.source}: [stripe] api_base is {_show(config.stripe.api_base)} but no Stripe key was found: "
        f"set {API_KEY_ENV}, [stripe] api_key_file or the systemd credential {CREDENTIAL_NAME} "
        "(only an api_base on this machine, an emulator, works without one)"
    )


_NOT_A_KEY = (
    "does not hold a Stripe secret key (one word starting with sk_test_, sk_live_, rk_test_ or rk_live_; "
    "a publishable key pk_... does not work here)"
)


def _read_key_file(path: Path, what: str) -> str:
    where = f"{path} ({what})"
    try:
        info = path.stat()
    except OSError as error:
        raise ConfigError(f"cannot read {where}: {error.strerror or error}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"{where}: not a regular file")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o007 or mode & 0o020:
        who = "readable or writable by others" if mode & 0o007 else "writable by its group"
        raise ConfigError(
            f"{where}: the Stripe key file is {who} (mode {mode:04o}); fix it with: chmod 600 {shlex.quote(str(path))}"
        )
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"cannot read {where}: {error.strerror or error}") from None
    try:
        key = data.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: {_NOT_A_KEY}") from None
    if not key:
        raise ConfigError(f"{where}: the file is empty; put the Stripe secret key in it")
    if not _API_KEY.fullmatch(key):
        raise ConfigError(f"{where}: {_NOT_A_KEY}")
    return key


def mode_of(api_key: str | None, config: Config) -> Mode:
    """What the daemon talks to: "emulator" (no key, or the placeholder key, with no api_base or one on
    this machine), "test" (a test key) or "live" (any other key: the mode that warns the most).
    Raises ConfigError for an api_base off this machine without a key."""
    local = not config.stripe.api_base or _is_local_api_base(config.stripe.api_base)
    if api_key is None:
        if local:
            return "emulator"
        raise _no_key(config)
    if api_key == EMULATOR_KEY and local:
        return "emulator"
    if api_key.startswith(_TEST_KEY_PREFIXES):
        return "test"
    return "live"
