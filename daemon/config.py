"""The daemon's configuration: one TOML file read once at start, checked strictly, then frozen.

Lookup: `readerhostd --config PATH`, else `$READERHOST_CONFIG`, else /etc/readerhost/readerhost.toml
when it exists, else the built-in defaults (config/readerhost.toml documents them). Every mistake in
the file is a `ConfigError` whose message is one line naming the file, the line and the key, so that
the journal tells a technician what to change.

Each table is declared once, with its keys' defaults and bounds (drivers/settings.py): the daemon's
own tables here, next to the loader, because app.py (the composition root) hands their values to
the objects it builds; each reader driver's [reader.<name>] table in its own module, found through
the registry (drivers/reader/__init__.py); [display] and [gpio] in their adapters. The loader walks
those declarations: a key is spelled once.

Paths that depend on the environment (the socket, the store) and the Stripe key (which never goes in
the TOML) are resolved by the `resolve_*` functions, from an explicit environment mapping.

No side effects at import. See docs/configuration.md.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import re
import shlex
import stat
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from readerhost.drivers import display, gpio
from readerhost.drivers import reader as reader_registry
from readerhost.drivers.display import DisplaySettings
from readerhost.drivers.gpio import GpioSettings
from readerhost.drivers.reader import DRIVERS, Driver, ReaderSettings
from readerhost.drivers.settings import (
    Choice,
    FilePath,
    Ids,
    Int,
    Kind,
    Leads,
    Number,
    Refused,
    Section,
    Settings,
    Text,
    setting,
)

from . import metrics
from .metrics import MetricsSettings
from .payments.currencies import MAXIMUM_AMOUNT, SUPPORTED
from .payments.model import Unattended
from .payments.offline import DEFAULT_MAX_PAYMENT, DEFAULT_MAX_TOTAL, OfflineLimits

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

LOG_LEVELS = ("debug", "info", "warning", "error")
SECRET_KEY_NAMES = ("api_key", "secret_key", "key")  # refused anywhere in [stripe]

Mode = Literal["emulator", "test", "live"]
S = TypeVar("S", bound=Settings)

_TERMINAL_ID = re.compile(r"[A-Za-z0-9._-]{1,40}")
_TEST_KEY_PREFIXES = ("sk_test_", "rk_test_")
_API_KEY = re.compile(r"[sr]k_(?:test|live)_[!-~]+")
_LOOKS_LIKE_SECRET = re.compile(r"\s*[sr]k_(?:test|live)_")
_LOOKS_LIKE_CARD_NUMBER = re.compile(r"(?:\d[ -]?){12,19}")  # a PAN is 12 to 19 digits, often grouped
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
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


# -- the daemon's own settings ----------------------------------------------------------------


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


def _check_country(value: str) -> str | None:
    if not value or (len(value) == 2 and value.isascii() and value.isupper() and value.isalpha()):
        return None
    return 'the Stripe account\'s two-letter country code in capitals (e.g. "CA"), or "" for not said'


def _check_terminal_id(value: str) -> str | None:
    if _TERMINAL_ID.fullmatch(value):
        return None
    return '1 to 40 characters of A-Z, a-z, 0-9, ".", "_" and "-"'


@dataclass(frozen=True)
class ApiConfig(Settings):
    socket: str = setting("", FilePath())  # empty: the default rules (resolve_socket_path)
    # The plain JSON-RPC socket (no banner) for generic client libraries; empty: only the one systemd passes.
    jsonrpc_socket: str = setting("", FilePath())
    # Root and the daemon's own uid are always allowed; these add more.
    allowed_uids: tuple[int, ...] = setting((), Ids())
    allowed_gids: tuple[int, ...] = setting((), Ids())
    max_clients: int = setting(32, Int(1))
    max_queued_messages: int = setting(256, Int(1))  # per client send queue
    slow_client_timeout_s: float = setting(5.0, Number(above=0))


@dataclass(frozen=True)
class StoreConfig(Settings):
    path: str = setting("", FilePath())  # the SQLite file; empty: the default rules (resolve_store_path)


@dataclass(frozen=True)
class StripeConfig(Settings):
    api_base: str = setting("", Text(_check_api_base))  # empty: Stripe's own; an emulator's URL to use that emulator
    api_key_file: str = setting("", FilePath())
    terminal_id: str = setting("readerhost", Text(_check_terminal_id))
    # The Stripe account's country: "CA" lets payments take Interac debit cards (as a CAD payment does).
    country: str = setting("", Text(_check_country))
    connect_timeout_s: float = setting(5.0, Number(above=0))
    read_timeout_s: float = setting(20.0, Number(above=0))
    max_network_retries: int = setting(2, Int(0, 10))
    requests_per_second: float = setting(20.0, Number(above=0))
    emulator_port: int = setting(0, Int(0, 65535))  # the built-in emulator's port; 0: chosen by the OS


Amounts = tuple[tuple[str, int], ...]  # (currency, minor units), sorted by currency


class AmountsByCurrency(Kind[Amounts]):
    """Money in several currencies: a TOML table such as { eur = 10000, jpy = 15000 }, each amount in its
    currency's minor unit (so never one figure for USD and JPY alike)."""

    _MUST = (
        "a table of amounts by currency, each in its minor unit, like { eur = 10000, jpy = 15000 } "
        f"(lower-case ISO codes Stripe takes; amounts from 1 to {MAXIMUM_AMOUNT})"
    )

    def read(self, value: object, folder: str) -> Amounts:
        if not isinstance(value, dict) or not all(isinstance(k, str) and _is_whole(v) for k, v in value.items()):
            raise Refused(self._MUST)
        return self._checked(tuple(sorted(value.items())))

    def problem(self, value: Amounts) -> str | None:
        ok = all(currency in SUPPORTED and 1 <= amount <= MAXIMUM_AMOUNT for currency, amount in value)
        return None if ok else self._MUST


def _is_whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_OFFLINE_MAX_PAYMENT: Amounts = tuple(sorted(DEFAULT_MAX_PAYMENT.items()))
_OFFLINE_MAX_TOTAL: Amounts = tuple(sorted(DEFAULT_MAX_TOTAL.items()))


@dataclass(frozen=True)
class PaymentsConfig(Settings):
    # Per currency, each in its own minor unit: a currency not named is never stored offline.
    offline_max_payment: tuple[tuple[str, int], ...] = setting(_OFFLINE_MAX_PAYMENT, AmountsByCurrency())
    offline_max_total: tuple[tuple[str, int], ...] = setting(_OFFLINE_MAX_TOTAL, AmountsByCurrency())
    offline_max_count: int = setting(20, Int(1))
    offline_max_age_s: float = setting(86_400.0, Number(above=0))
    reconcile_grace_s: float = setting(600.0, Number(at_least=0))
    # How long a customer waits for Stripe (creating, or authorising without offline): then the payment fails.
    customer_wait_s: float = setting(30.0, Number(above=0))
    # How long before an authorisation's capture_before a `payment.deadline` is announced (24 h, 2 h).
    deadline_leads_s: tuple[float, ...] = setting((86_400.0, 7_200.0), Leads())

    def offline_limits(self) -> OfflineLimits:
        return OfflineLimits(
            dict(self.offline_max_payment),
            dict(self.offline_max_total),
            self.offline_max_count,
            self.offline_max_age_s,
        )


@dataclass(frozen=True)
class ReconcileConfig(Settings):
    # What the daemon does with a payment its POS left authorised (docs/payments.md weighs the three).
    unattended: str = setting(Unattended.REPORT.value, Choice(*Unattended))
    # How long before capture_before it does it: at least a minute for the outbox to reach Stripe, at
    # most a day, so that a payment is never settled behind its POS's back just after it was authorised.
    lead_s: float = setting(3_600.0, Number(at_least=60, at_most=86_400))
    # Near its deadline, how often a payment's PaymentIntent is read again at Stripe (expired or not).
    reread_s: float = setting(900.0, Number(at_least=10, at_most=86_400))


@dataclass(frozen=True)
class LogConfig(Settings):
    level: str = setting("info", Choice(*LOG_LEVELS))


API = Section("api", ApiConfig)
STORE = Section("store", StoreConfig)
STRIPE = Section("stripe", StripeConfig)
PAYMENTS = Section("payments", PaymentsConfig)
RECONCILE = Section("reconcile", ReconcileConfig)
LOG = Section("log", LogConfig)


def sections(drivers: Mapping[str, Driver] = DRIVERS) -> tuple[Section[Any], ...]:
    """Every table the file may hold, in the order messages list them."""
    driver_tables = (driver.SETTINGS for driver in drivers.values())
    adapters = (display.SETTINGS, gpio.SETTINGS, metrics.SETTINGS)
    return (API, STORE, STRIPE, reader_registry.SETTINGS, *driver_tables, PAYMENTS, RECONCILE, *adapters, LOG)


def _default_readers() -> dict[str, Settings]:
    return {driver.SETTINGS.name: driver.SETTINGS.cls() for driver in DRIVERS.values()}


@dataclass(frozen=True)
class Config:
    api: ApiConfig = field(default_factory=ApiConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    stripe: StripeConfig = field(default_factory=StripeConfig)
    reader: ReaderSettings = field(default_factory=ReaderSettings)
    payments: PaymentsConfig = field(default_factory=PaymentsConfig)
    reconcile: ReconcileConfig = field(default_factory=ReconcileConfig)
    display: DisplaySettings = field(default_factory=DisplaySettings)
    gpio: GpioSettings = field(default_factory=GpioSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    log: LogConfig = field(default_factory=LogConfig)
    # Every registered reader driver's [reader.<name>] settings, by table name: see reader_settings.
    readers: Mapping[str, Settings] = field(default_factory=_default_readers)
    source: str = BUILT_IN  # the file it came from, or "built-in defaults"

    def reader_settings(self, section: Section[S]) -> S:
        """A reader driver's settings, typed: `config.reader_settings(serial.SETTINGS).device`."""
        settings = self.readers[section.name]
        if not isinstance(settings, section.cls):
            raise TypeError(f"[{section.name}] holds {type(settings).__name__}, not {section.cls.__name__}")
        return settings


# -- loading ----------------------------------------------------------------------------------


def load_config(
    path: str | None,
    env: Mapping[str, str],
    *,
    system_path: Path = DEFAULT_SYSTEM_CONFIG,
    drivers: Mapping[str, Driver] = DRIVERS,
) -> Config:
    """The configuration from `--config PATH`, else $READERHOST_CONFIG, else `system_path` if it exists,
    else the built-in defaults; `drivers` is the reader registry whose tables it reads. Raises ConfigError."""
    if path is not None:
        if not path:
            raise ConfigError("--config was given an empty path")
        config = _load_file(path, named_by="", drivers=drivers)
    elif env.get(CONFIG_ENV):
        config = _load_file(env[CONFIG_ENV], named_by=CONFIG_ENV, drivers=drivers)
    elif system_path.exists():
        config = _load_file(str(system_path), named_by="", drivers=drivers)
    else:
        config = Config()
    _check_reader(config, drivers)
    return config


def _check_reader(config: Config, drivers: Mapping[str, Driver]) -> None:
    """What the chosen reader driver needs from its own table."""
    section = drivers[config.reader.driver].SETTINGS
    missing = section.missing(config.reader_settings(section))
    if missing is not None:
        raise ConfigError(f"{config.source}: [{section.name}] {missing.key}: {missing.why}")


def _load_file(path: str, *, named_by: str, drivers: Mapping[str, Driver]) -> Config:
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
    _refuse_secrets(document, path)  # before anything could echo one in a message
    return _Reader(path, text, document, drivers).config()


def _syntax_error(message: str) -> str:
    """tomllib's message, with its position moved to the front: 'line 3, column 7: TOML syntax error: ...'."""
    at = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
    if at:
        return f"line {at[1]}, column {at[2]}: TOML syntax error: {message[: at.start()]}"
    if message.endswith("(at end of document)"):
        return f"at the end of the file: TOML syntax error: {message.removesuffix('(at end of document)').rstrip()}"
    return f"TOML syntax error: {message}"


# -- reading the declared tables --------------------------------------------------------------


class _Reader:
    """One file's document read table by table through the declarations; every mistake a ConfigError
    naming the file, the line (found in the text: tomllib keeps no positions), the table and the key."""

    def __init__(self, source: str, text: str, document: Mapping[str, object], drivers: Mapping[str, Driver]) -> None:
        self.source = source
        self.text = text
        self.document = document
        self.drivers = drivers
        self.sections = sections(drivers)
        self.folder = os.path.dirname(os.path.abspath(source))

    def config(self) -> Config:
        tables = [section.name for section in self.sections if "." not in section.name]
        for name, value in self.document.items():
            if name not in tables:
                where = self.at((name,))
                if isinstance(value, dict):
                    raise ConfigError(f"{where}: unknown table [{_key(name)}] (known: {', '.join(tables)})")
                raise ConfigError(
                    f"{where}: unknown key {_key(name)} outside any table (known tables: {', '.join(tables)})"
                )
        reader = self.read(reader_registry.SETTINGS)
        if reader.driver not in self.drivers:
            raise self.refused(reader_registry.SETTINGS, "driver", Choice(*self.drivers).problem(reader.driver) or "")
        return Config(
            api=self.read(API),
            store=self.read(STORE),
            stripe=self.read(STRIPE),
            reader=reader,
            payments=self.read(PAYMENTS),
            reconcile=self.read(RECONCILE),
            display=self.read(display.SETTINGS),
            gpio=self.read(gpio.SETTINGS),
            metrics=self.read(metrics.SETTINGS),
            log=self.read(LOG),
            readers={driver.SETTINGS.name: self.read(driver.SETTINGS) for driver in self.drivers.values()},
            source=self.source,
        )

    def read(self, section: Section[S]) -> S:
        table = self.table(section.name)
        kinds = section.kinds()
        inner = [other.name for other in self.sections if other.name.rpartition(".")[0] == section.name]
        known = (*kinds, *(name.rpartition(".")[2] for name in inner))
        for key in table:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"did you mean {close[0]}? " if close else ""
                raise ConfigError(
                    f"{self.at((*section.name.split('.'), key))}: unknown key [{section.name}] {_key(key)} "
                    f"({hint}known: {', '.join(known)})"
                )
        values: dict[str, Any] = {}
        for key, kind in kinds.items():
            if key in table:
                try:
                    values[key] = kind.read(table[key], self.folder)
                except Refused as refused:
                    raise self.refused(section, key, refused.must) from None
        return section.cls(**values)

    def table(self, name: str) -> Mapping[str, object]:
        """The table `name` ("reader.serial"): empty when absent, an error when not a table."""
        table: Mapping[str, object] = self.document
        path: tuple[str, ...] = ()
        for part in name.split("."):
            path = (*path, part)
            value = table.get(part, {})
            if not isinstance(value, dict):
                dotted = ".".join(path)
                raise ConfigError(
                    f"{self.at(path)}: [{dotted}] must be a table (a [{dotted}] section), not {_show(value)}"
                )
            table = value
        return table

    def refused(self, section: Section[Any], key: str, must: str) -> ConfigError:
        value = self.table(section.name)[key]
        where = self.at((*section.name.split("."), key))
        return ConfigError(f"{where}: [{section.name}] {key} must be {must}, not {_show(value)}")

    def at(self, path: tuple[str, ...]) -> str:
        """'FILE: line N' for the line that sets `path` (a table, or a key in one), else 'FILE'."""
        line = line_of(self.text, path)
        return f"{self.source}: line {line}" if line else self.source


_KEY_PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_DOTTED_KEY = rf"{_KEY_PART}(?:\s*\.\s*{_KEY_PART})*"
_HEADER = re.compile(rf"\s*\[\[?\s*({_DOTTED_KEY})\s*\]")
_ASSIGNMENT = re.compile(rf"\s*({_DOTTED_KEY})\s*=\s*(.*)")


def line_of(text: str, path: tuple[str, ...]) -> int | None:
    """The number of the first line of `text` that sets `path`: a table's header, or a key given
    bare, dotted (`serial.device = ...` under [reader]) or in a one-line inline table
    (`serial = { device = ... }`). None when it cannot be found (a key inside a multi-line array)."""
    table: tuple[str, ...] = ()
    closing = ""  # the quotes that end the multi-line string being skipped
    for number, line in enumerate(text.splitlines(), 1):
        if closing:
            if closing in line:
                closing = ""
            continue
        if header := _HEADER.match(line):
            table = _key_parts(header[1])
            if table[: len(path)] == path:
                return number
        elif assignment := _ASSIGNMENT.match(line):
            key = (*table, *_key_parts(assignment[1]))
            value = assignment[2]
            if key[: len(path)] == path:
                return number
            if value.startswith("{") and path[: len(key)] == key:
                inner = re.escape(path[len(key)])
                if re.search(rf"""[{{,]\s*["']?{inner}["']?\s*[.=]""", value):
                    return number
            for quotes in ('"""', "'''"):
                if value.startswith(quotes) and value.count(quotes) == 1:
                    closing = quotes
    return None


def _key_parts(dotted: str) -> tuple[str, ...]:
    parts = []
    for part in re.findall(_KEY_PART, dotted):
        if part.startswith('"'):
            try:
                part = json.loads(part)
            except ValueError:
                part = part[1:-1]
        elif part.startswith("'"):
            part = part[1:-1]
        parts.append(part)
    return tuple(parts)


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
    return _short_enough(path, where)


def resolve_jsonrpc_socket_path(config: Config, cwd: Path) -> Path | None:
    """The plain JSON-RPC socket's path ([api] jsonrpc_socket), or None for no such socket (a socket
    systemd passes as "jsonrpc" is served all the same; that is decided where sockets are opened)."""
    if not config.api.jsonrpc_socket:
        return None
    return _short_enough(cwd / config.api.jsonrpc_socket, f"{config.source}: [api] jsonrpc_socket")


def _short_enough(path: Path, where: str) -> Path:
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
