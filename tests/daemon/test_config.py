"""The configuration: lookup, strict checking with one-line messages, paths, and the Stripe key."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from readerhost.daemon.config import (
    BUILT_IN,
    DEFAULT_SYSTEM_CONFIG,
    EMULATOR_KEY,
    Config,
    ConfigError,
    line_of,
    load_config,
    mode_of,
    resolve_api_key,
    resolve_jsonrpc_socket_path,
    resolve_socket_path,
    resolve_store_path,
    sections,
)
from readerhost.drivers.reader import ble, serial, simulated, stripe_terminal
from readerhost.drivers.reader.simulated import SimulatedSettings
from readerhost.sim.stripe_emulator.testcards import TEST_CARDS

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "readerhost.toml"
TEST_KEY = "sk_test_51Hkiosk0123456789"
LIVE_KEY = "sk_live_51Hkiosk0123456789"


def write(tmp_path: Path, text: str, name: str = "readerhost.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load(path: Path) -> Config:
    return load_config(str(path), {}, system_path=path.parent / "absent.toml")


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load(path)
    return str(caught.value)


def config_with(*, api_base: str = "", api_key_file: str = "") -> Config:
    stripe = dataclasses.replace(Config().stripe, api_base=api_base, api_key_file=api_key_file)
    return dataclasses.replace(Config(), stripe=stripe)


# -- defaults and the shipped file ------------------------------------------------------------


def test_the_built_in_defaults() -> None:
    config = Config()
    assert config.source == BUILT_IN == "built-in defaults"
    assert (config.api.socket, config.api.allowed_uids, config.api.allowed_gids) == ("", (), ())
    assert (config.api.max_clients, config.api.max_queued_messages, config.api.slow_client_timeout_s) == (32, 256, 5.0)
    assert config.store.path == ""
    stripe = config.stripe
    assert (stripe.api_base, stripe.api_key_file, stripe.terminal_id) == ("", "", "readerhost")
    assert (stripe.connect_timeout_s, stripe.read_timeout_s, stripe.max_network_retries) == (5.0, 20.0, 2)
    assert (stripe.requests_per_second, stripe.emulator_port) == (20.0, 0)
    assert config.reader.driver == "simulated"
    assert config.reader_settings(simulated.SETTINGS) == SimulatedSettings("visa", 2.0, False)
    assert config.reader_settings(simulated.SETTINGS).card in TEST_CARDS
    payments = config.payments
    limits = payments.offline_limits()
    assert (limits.max_payment_amount["usd"], limits.max_total_amount["usd"]) == (10_000, 50_000)
    assert (limits.max_payment_amount["jpy"], limits.max_total_amount["jpy"]) == (15_000, 75_000)  # yen, not cents
    assert (payments.offline_max_count, payments.offline_max_age_s, payments.reconcile_grace_s) == (20, 86_400, 600)
    assert config.log.level == "info"
    assert str(DEFAULT_SYSTEM_CONFIG) == "/etc/readerhost/readerhost.toml"


def test_no_file_anywhere_gives_the_built_in_defaults(tmp_path: Path) -> None:
    assert load_config(None, {}, system_path=tmp_path / "absent.toml") == Config()


def test_an_empty_file_gives_the_defaults_with_its_name(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    assert load(path) == Config(source=str(path))


def test_the_shipped_file_loads_to_the_defaults() -> None:
    assert load(SHIPPED) == Config(source=str(SHIPPED))


def test_the_shipped_file_documents_every_option_with_its_default(tmp_path: Path) -> None:
    # Every option is shown commented out as `#key = default`: with every one of them switched on,
    # the file must still load to exactly the defaults, and name every field of every table.
    text = re.sub(r"(?m)^#(\w+ = )", r"\1", SHIPPED.read_text(encoding="utf-8"))
    path = write(tmp_path, text)
    assert load(path) == Config(source=str(path))

    declared = {f"{section.name}.{key}" for section in sections() for key in section.kinds()}

    def keys(table: dict[str, Any], prefix: str) -> set[str]:
        found: set[str] = set()
        for name, value in table.items():
            table_of_tables = isinstance(value, dict) and prefix + name not in declared  # not a table-valued key
            found |= keys(value, f"{prefix}{name}.") if table_of_tables else {prefix + name}
        return found

    assert keys(tomllib.loads(text), "") == declared


def test_the_examples_in_the_configuration_reference_load(tmp_path: Path) -> None:
    reference = (SHIPPED.parents[1] / "docs" / "configuration.md").read_text(encoding="utf-8")
    examples = re.findall(r"```toml\n(.*?)```", reference, re.DOTALL)
    assert len(examples) >= 2
    for number, example in enumerate(examples):
        assert load(write(tmp_path, example, f"example-{number}.toml")) != Config()


def test_a_full_file_is_read_into_every_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [api]
        socket = "/run/kiosk/pos.sock"
        allowed_uids = [1000, 1001]
        allowed_gids = [20]
        max_clients = 4
        max_queued_messages = 16
        slow_client_timeout_s = 1  # an int is a number too
        [store]
        path = "data/payments.db"
        [stripe]
        api_base = "http://127.0.0.1:12111"
        api_key_file = "/etc/readerhost/stripe.key"
        terminal_id = "Kiosk_7.lobby-B"
        country = "CA"
        connect_timeout_s = 2.5
        read_timeout_s = 30
        max_network_retries = 0
        requests_per_second = 5
        emulator_port = 12111
        [reader]
        driver = "simulated"
        [reader.simulated]
        card = "charge_declined"
        present_after_s = -1
        retry_card_once = true
        [payments]
        offline_max_payment = { eur = 5000, jpy = 7500 }
        offline_max_total = { eur = 20000, jpy = 30000 }
        offline_max_count = 5
        offline_max_age_s = 3600
        reconcile_grace_s = 120.5
        customer_wait_s = 12
        deadline_leads_s = [600, 3600, 600]
        [reconcile]
        unattended = "capture"
        lead_s = 1800
        reread_s = 60
        [log]
        level = "debug"
        """,
    )
    config = load(path)
    assert config.api.socket == "/run/kiosk/pos.sock"
    assert config.api.allowed_uids == (1000, 1001)
    assert config.api.allowed_gids == (20,)
    assert (config.api.max_clients, config.api.max_queued_messages) == (4, 16)
    assert config.api.slow_client_timeout_s == 1.0
    assert isinstance(config.api.slow_client_timeout_s, float)
    assert config.store.path == str(tmp_path / "data" / "payments.db")  # relative to the file's folder
    assert config.stripe == dataclasses.replace(
        Config().stripe,
        api_base="http://127.0.0.1:12111",
        api_key_file="/etc/readerhost/stripe.key",
        terminal_id="Kiosk_7.lobby-B",
        country="CA",
        connect_timeout_s=2.5,
        read_timeout_s=30.0,
        max_network_retries=0,
        requests_per_second=5.0,
        emulator_port=12111,
    )
    assert config.reader_settings(simulated.SETTINGS) == SimulatedSettings("charge_declined", -1.0, True)
    assert (config.reconcile.unattended, config.reconcile.lead_s, config.reconcile.reread_s) == ("capture", 1800, 60)
    assert dataclasses.astuple(config.payments) == (
        (("eur", 5000), ("jpy", 7500)),
        (("eur", 20000), ("jpy", 30000)),
        5,
        3600.0,
        120.5,
        12.0,
        (3600.0, 600.0),
    )
    assert config.log.level == "debug"
    assert config.source == str(path)


def test_every_test_card_is_accepted(tmp_path: Path) -> None:
    for card in TEST_CARDS:
        config = load(write(tmp_path, f'[reader.simulated]\ncard = "{card}"\n'))
        assert config.reader_settings(simulated.SETTINGS).card == card


# -- lookup order -----------------------------------------------------------------------------


def test_the_argument_beats_the_environment_beats_the_system_file_beats_the_defaults(tmp_path: Path) -> None:
    argument = write(tmp_path, '[stripe]\nterminal_id = "from-argument"\n', "argument.toml")
    from_env = write(tmp_path, '[stripe]\nterminal_id = "from-env"\n', "env.toml")
    system = write(tmp_path, '[stripe]\nterminal_id = "from-system"\n', "system.toml")
    env = {"READERHOST_CONFIG": str(from_env)}

    def terminal(path: str | None, env: dict[str, str], system_path: Path) -> str:
        return load_config(path, env, system_path=system_path).stripe.terminal_id

    assert terminal(str(argument), env, system) == "from-argument"
    assert terminal(None, env, system) == "from-env"
    assert terminal(None, {}, system) == "from-system"
    assert terminal(None, {"READERHOST_CONFIG": ""}, system) == "from-system"  # empty means unset
    assert terminal(None, {}, tmp_path / "absent.toml") == "readerhost"
    assert load_config(None, {}, system_path=system).source == str(system)


def test_a_missing_file_given_explicitly_is_an_error_not_the_defaults(tmp_path: Path) -> None:
    missing = tmp_path / "x.toml"
    with pytest.raises(ConfigError) as caught:
        load_config(str(missing), {}, system_path=tmp_path / "absent.toml")
    assert str(caught.value) == f"cannot read {missing}: No such file or directory"
    with pytest.raises(ConfigError) as caught:
        load_config(None, {"READERHOST_CONFIG": str(missing)}, system_path=tmp_path / "absent.toml")
    assert str(caught.value) == f"cannot read {missing} (named by READERHOST_CONFIG): No such file or directory"
    with pytest.raises(ConfigError, match="empty path"):
        load_config("", {}, system_path=tmp_path / "absent.toml")


def test_a_system_path_that_is_a_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, {}, system_path=tmp_path)
    assert str(caught.value) == f"cannot read {tmp_path}: Is a directory"


# -- errors: one line, naming the file and the key --------------------------------------------

UIDS = "must be a list of whole numbers from 0 to 4294967294, like [1000, 1001]"
URL = "must be an https:// URL like https://api.stripe.com (http:// only for 127.0.0.1, ::1 or localhost)"
CHARACTERS = 'must be 1 to 40 characters of A-Z, a-z, 0-9, ".", "_" and "-"'
ERRORS = [
    (
        "unknown-table",
        "[apu]\nsocket = 'x'\n",
        "unknown table [apu] (known: api, store, stripe, reader, payments, reconcile, display, gpio, metrics, log)",
    ),
    (
        "unknown-key",
        "[api]\nsockt = '/x.sock'\n",
        "unknown key [api] sockt (did you mean socket? known: socket, jsonrpc_socket, allowed_uids, allowed_gids, "
        "max_clients, max_queued_messages, slow_client_timeout_s)",
    ),
    ("unknown-subkey", "[reader.simulated]\ncolour = 'red'\n", "unknown key [reader.simulated] colour (known: card,"),
    ("key-outside-tables", "socket = '/x.sock'\n", "unknown key socket outside any table (known tables: api,"),
    ("not-a-table", "api = 3\n", "[api] must be a table (a [api] section), not 3"),
    ("not-a-subtable", "[reader]\nsimulated = 'visa'\n", "[reader.simulated] must be a table (a [reader.simulated] se"),
    (
        "wrong-type",
        '[stripe]\nread_timeout_s = "fast"\n',
        '[stripe] read_timeout_s must be a number above 0, not "fast"',
    ),
    ("number-for-string", "[api]\nsocket = 17\n", "[api] socket must be a string in double quotes, not 17"),
    ("bool-for-int", "[api]\nmax_clients = true\n", "[api] max_clients must be a whole number of at least 1, not true"),
    (
        "bool-for-float",
        "[api]\nslow_client_timeout_s = false\n",
        "slow_client_timeout_s must be a number above 0, not false",
    ),
    ("float-for-int", "[stripe]\nmax_network_retries = 2.0\n", "retries must be a whole number from 0 to 10, not 2.0"),
    ("int-for-bool", "[reader.simulated]\nretry_card_once = 1\n", "retry_card_once must be true or false, not 1"),
    ("uids-not-a-list", "[api]\nallowed_uids = 1000\n", f"[api] allowed_uids {UIDS}, not 1000"),
    ("gids-with-a-name", "[api]\nallowed_gids = [20, 'dialout']\n", f'[api] allowed_gids {UIDS}, not [20, "dialout"]'),
    ("negative-uid", "[api]\nallowed_uids = [-1]\n", f"[api] allowed_uids {UIDS}, not [-1]"),
    ("timeout-zero", "[stripe]\nread_timeout_s = 0\n", "[stripe] read_timeout_s must be a number above 0, not 0"),
    (
        "timeout-negative",
        "[stripe]\nconnect_timeout_s = -1.5\n",
        "connect_timeout_s must be a number above 0, not -1.5",
    ),
    ("timeout-inf", "[stripe]\nread_timeout_s = inf\n", "[stripe] read_timeout_s must be a number above 0, not inf"),
    (
        "nan",
        "[reader.simulated]\npresent_after_s = nan\n",
        "[reader.simulated] present_after_s must be a number, not nan",
    ),
    ("count-zero", "[api]\nmax_clients = 0\n", "[api] max_clients must be a whole number of at least 1, not 0"),
    (
        "amount-zero",
        "[payments]\noffline_max_payment = { eur = 0 }\n",
        "[payments] offline_max_payment must be a table of amounts by currency",
    ),
    (
        "port-too-high",
        "[stripe]\nemulator_port = 65536\n",
        "emulator_port must be a whole number from 0 to 65535, not 65536",
    ),
    ("retries-too-many", "[stripe]\nmax_network_retries = 11\n", "retries must be a whole number from 0 to 10, not 11"),
    (
        "rate-zero",
        "[stripe]\nrequests_per_second = 0\n",
        "[stripe] requests_per_second must be a number above 0, not 0",
    ),
    (
        "grace-negative",
        "[payments]\nreconcile_grace_s = -1\n",
        "[payments] reconcile_grace_s must be a number of at least 0, not -1",
    ),
    (
        "leads-not-positive",
        "[payments]\ndeadline_leads_s = [7200, 0]\n",
        "[payments] deadline_leads_s must be a list of numbers of seconds above 0, like [86400, 7200], not [7200, 0]",
    ),
    (
        "leads-not-numbers",
        '[payments]\ndeadline_leads_s = ["2h"]\n',
        "[payments] deadline_leads_s must be a list of numbers of seconds above 0",
    ),
    (
        "unattended-unknown",
        '[reconcile]\nunattended = "refund"\n',
        '[reconcile] unattended must be one of capture, cancel, report, not "refund"',
    ),
    (
        "lead-too-short",
        "[reconcile]\nlead_s = 30\n",
        "[reconcile] lead_s must be a number of at least 60 and at most 86400, not 30",
    ),
    (
        "lead-too-long",
        "[reconcile]\nlead_s = 172800\n",
        "[reconcile] lead_s must be a number of at least 60 and at most 86400, not 172800",
    ),
    ("lead-not-a-number", '[reconcile]\nlead_s = "1h"\n', "[reconcile] lead_s must be a number of at least 60"),
    (
        "reread-zero",
        "[reconcile]\nreread_s = 0\n",
        "[reconcile] reread_s must be a number of at least 10 and at most 86400, not 0",
    ),
    ("reconcile-unknown-key", "[reconcile]\npolicy = 1\n", "unknown key [reconcile] policy"),
    (
        "customer-wait-zero",
        "[payments]\ncustomer_wait_s = 0\n",
        "[payments] customer_wait_s must be a number above 0, not 0",
    ),
    (
        "bad-choice",
        '[log]\nlevel = "verbose"\n',
        '[log] level must be one of debug, info, warning, error, not "verbose"',
    ),
    (
        "bad-driver",
        '[reader]\ndriver = "usb"\n',
        '[reader] driver must be one of simulated, serial, ble, stripe_terminal, not "usb"',
    ),
    ("country-lowercase", '[stripe]\ncountry = "ca"\n', "[stripe] country must be the Stripe account's two-letter"),
    ("country-name", '[stripe]\ncountry = "Canada"\n', "[stripe] country must be the Stripe account's two-letter"),
    (
        "flow-unknown",
        '[reader.stripe_terminal]\nreader_id = "tmr_1"\nflow = "one_step"\n',
        '[reader.stripe_terminal] flow must be one of two_step, process, not "one_step"',
    ),
    ("terminal-id-chars", '[stripe]\nterminal_id = "kiosk #1"\n', f'[stripe] terminal_id {CHARACTERS}, not "kiosk #1"'),
    ("terminal-id-empty", '[stripe]\nterminal_id = ""\n', f'[stripe] terminal_id {CHARACTERS}, not ""'),
    ("terminal-id-long", f'[stripe]\nterminal_id = "{"k" * 41}"\n', f'[stripe] terminal_id {CHARACTERS}, not "kkk'),
    (
        "bad-card",
        '[reader.simulated]\ncard = "visa_gold"\n',
        "card must be one of the emulator's test cards (visa, visa_debit,",
    ),
    (
        "card-with-prefix",
        '[reader.simulated]\ncard = "pm_card_present_visa"\n',
        "[reader.simulated] card must be the name after pm_card_present_ only, one of the emulator's test cards",
    ),
    ("api-base-plain-http", '[stripe]\napi_base = "http://stripe.example.com"\n', f"[stripe] api_base {URL}, not"),
    ("api-base-no-scheme", '[stripe]\napi_base = "api.stripe.com"\n', f'[stripe] api_base {URL}, not "api.stripe.com"'),
    ("api-base-bad-port", '[stripe]\napi_base = "http://127.0.0.1:99999"\n', f"[stripe] api_base {URL}, not"),
    (
        "api-base-credentials",
        '[stripe]\napi_base = "https://user:pw@api.stripe.com"\n',
        "[stripe] api_base must be a URL without a user name or password",
    ),
    ("path-tilde", '[store]\npath = "~/payments.db"\n', "[store] path must be an absolute path (~ is not expanded)"),
    (
        "serial-without-device",
        '[reader]\ndriver = "serial"\n',
        '[reader.serial] device: the serial reader needs its device, e.g. device = "/dev/serial/by-id/usb-..."',
    ),
    (
        "serial-bad-baud",
        "[reader.serial]\nbaudrate = 0\n",
        "[reader.serial] baudrate must be a whole number from 50 to 4000000, not 0",
    ),
    (
        "ble-bad-address",
        '[reader.ble]\naddress = "C0:FF:EE"\n',
        '[reader.ble] address must be a Bluetooth address like "C0:FF:EE:12:34:56", or "" to find the reader '
        'by scanning, not "C0:FF:EE"',
    ),
    (
        "card-wait-too-short",
        "[reader]\ncard_wait_s = 1\n",
        "[reader] card_wait_s must be a whole number from 5 to 3600, not 1",
    ),
    ("serial-unknown-key", '[reader.serial]\nport = "/dev/ttyACM0"\n', "unknown key [reader.serial] port"),
    (
        "toml-syntax",
        "[api]\nsocket = '/x.sock'\nmax_clients = fast\n",
        "line 3, column 15: TOML syntax error: Invalid value",
    ),
    ("toml-table-twice", "[api]\n[api]\n", "line 2, column 5: TOML syntax error: Cannot declare ('api',) twice"),
    ("toml-unterminated", '[log]\nlevel = "info\n', "line 2, column 14: TOML syntax error: Illegal character"),
    ("toml-at-the-end", "[log]\nlevel = ", "at the end of the file: TOML syntax error: Invalid value"),
]


@pytest.mark.parametrize(
    ("text", "expected"), [pytest.param(text, expected, id=name) for name, text, expected in ERRORS]
)
def test_every_mistake_is_one_line_naming_the_file_and_the_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    message = error_of(path)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "\n" not in message


@pytest.mark.parametrize("name", ["api_key", "secret_key", "key"])
def test_a_stripe_key_in_the_toml_is_refused_with_where_it_goes(tmp_path: Path, name: str) -> None:
    secret = "sk_live_51Hsecretsecretsecret"
    message = error_of(write(tmp_path, f'[stripe]\nterminal_id = "kiosk-1"\n{name} = "{secret}"\n'))
    assert message.startswith(f"{tmp_path / 'readerhost.toml'}: [stripe] {name}: the Stripe key never goes in the TOML")
    assert "STRIPE_API_KEY" in message
    assert "api_key_file" in message
    assert "stripe-api-key" in message
    assert "secret" not in message.replace("secret_key", "")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("[stripe]\nkey = 12\n", "[stripe] key"),  # refused whatever its value
        ('[stripe]\napi_key_file = "sk_test_51Habcdef"\n', "[stripe] api_key_file"),  # the key where its file goes
        ('[api]\nsocket = "rk_live_51Habcdef"\n', "[api] socket"),  # a key anywhere
        ('stripe_key = "sk_test_51Habcdef"\n', "stripe_key"),
    ],
)
def test_anything_that_looks_like_a_stripe_key_is_refused_and_never_echoed(
    tmp_path: Path, text: str, where: str
) -> None:
    message = error_of(write(tmp_path, text))
    assert f": {where}: the Stripe key never goes in the TOML" in message
    assert "51Habcdef" not in message


@pytest.mark.parametrize(
    "text",
    [
        '[reader.simulated]\ncard = "4242424242424242"\n',
        '[reader.simulated]\ncard = "4242 4242 4242 4242"\n',
        "[reader.simulated]\ncard = 4242424242424242\n",
        '[stripe]\nterminal_id = "kiosk #4000056655665556"\n',
    ],
)
def test_a_card_number_in_the_file_is_never_echoed(tmp_path: Path, text: str) -> None:
    message = error_of(write(tmp_path, text))
    assert "must be" in message
    assert "not something that looks like a card number (not shown)" in message
    assert not re.search(r"\d{4}[ -]?\d{4}", message.split(str(tmp_path))[-1])


def test_a_file_that_is_not_utf8_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "readerhost.toml"
    path.write_bytes(b'[log]\nlevel = "info"\n# caf\xe9\n')
    assert error_of(path) == f"{path}: line 3: not UTF-8 text; save the file as UTF-8"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "[log]\nlevel = 'info'\n\n[api]\n# the POS\nsockt = '/x.sock'\n",
            "line 6: unknown key [api] sockt",
            id="key",
        ),
        pytest.param(
            "[api]\nmax_clients = 4\nmax_clients_ = 0\n", "line 3: unknown key [api] max_clients_", id="similar-key"
        ),
        pytest.param(
            "[stripe]\nread_timeout_s = 0\n", "line 2: [stripe] read_timeout_s must be a number above 0", id="value"
        ),
        pytest.param("[log]\n\n[apu]  # typo\n", "line 3: unknown table [apu]", id="table"),
        pytest.param("\n\nsocket = '/x.sock'\n", "line 3: unknown key socket outside any table", id="outside-tables"),
        pytest.param("[reader]\nsimulated = 'visa'\n", "line 2: [reader.simulated] must be a table", id="not-a-table"),
        pytest.param("[reader]\nserial.port = 1\n", "line 2: unknown key [reader.serial] port", id="dotted-key"),
        pytest.param(
            "reader.serial.baudrate = 1\n", "line 1: [reader.serial] baudrate must be", id="dotted-from-the-top"
        ),
        pytest.param(
            "[reader.serial]\nbaudrate = 9600\n[ reader . 'ble' ]\n\"address\" = 'x'\n",
            "line 4: [reader.ble] address must be a Bluetooth address",
            id="quoted-and-spaced",
        ),
        pytest.param(
            "[reader]\nserial = { device = '/dev/x', port = 1 }\n",
            "line 2: unknown key [reader.serial] port",
            id="inline",
        ),
        pytest.param("[api]\n'max clients' = 3\n", 'line 2: unknown key [api] "max clients"', id="quoted-key"),
        pytest.param(
            '[api]\nsocket = """\nsockt = 1\n"""\nsockt = 2\n',
            "line 5: unknown key [api] sockt",
            id="after-a-long-string",
        ),
        pytest.param(
            "[gpio]\nled_rgb_pins = [\n  1,\n  2,\n]\n",
            "line 2: [gpio] led_rgb_pins must be three",
            id="multi-line-value",
        ),
    ],
)
def test_a_mistake_in_the_file_names_its_line(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    assert error_of(path).startswith(f"{path}: {expected}")


def test_the_line_of_a_key_is_found_in_the_text_or_left_out() -> None:
    text = '[api]\nsocket = "/x.sock"\n\n[reader]\nserial = { baudrate = 9600 }\n[[pos]]\nname = "till"\n'
    assert line_of(text, ("api",)) == 1
    assert line_of(text, ("api", "socket")) == 2
    assert line_of(text, ("reader", "serial", "baudrate")) == 5
    assert line_of(text, ("pos", "name")) == 7
    assert line_of(text, ("store", "path")) is None  # not in the file: the message then names no line
    assert line_of(text, ("api", "max_clients")) is None


def test_a_value_with_a_newline_stays_on_one_line(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, '[log]\nlevel = "info\\nwarning"\n'))
    path = tmp_path / "readerhost.toml"
    assert message == f'{path}: line 2: [log] level must be one of debug, info, warning, error, not "info\\nwarning"'


def test_a_stripe_smart_reader_is_configured_by_its_id_or_a_registration_code(tmp_path: Path) -> None:
    by_id = load(
        write(tmp_path, '[reader]\ndriver = "stripe_terminal"\n[reader.stripe_terminal]\nreader_id = "tmr_F1"\n')
    )
    assert by_id.reader_settings(stripe_terminal.SETTINGS).reader_id == "tmr_F1"
    text = '[reader]\ndriver = "stripe_terminal"\n[reader.stripe_terminal]\nregistration_code = "simulated-wpe"\n'
    registering = load(write(tmp_path, text, "r.toml"))
    assert registering.reader_settings(stripe_terminal.SETTINGS).registration_code == "simulated-wpe"
    message = error_of(write(tmp_path, '[reader.stripe_terminal]\nreader_id = "pi_123"\n', "bad.toml"))
    assert '[reader.stripe_terminal] reader_id must be a Stripe id starting with "tmr_"' in message


def test_a_serial_reader_is_configured_by_its_device(tmp_path: Path) -> None:
    path = write(tmp_path, '[reader]\ndriver = "serial"\ncard_wait_s = 30\n[reader.serial]\ndevice = "tty-link"\n')
    config = load(path)
    assert (config.reader.driver, config.reader.card_wait_s) == ("serial", 30)
    assert config.reader_settings(serial.SETTINGS).device == str(tmp_path / "tty-link")  # relative to the file's folder
    assert config.reader_settings(serial.SETTINGS).baudrate == 115_200


def test_a_ble_reader_may_be_found_by_address_or_by_scanning(tmp_path: Path) -> None:
    scanning = load(write(tmp_path, '[reader]\ndriver = "ble"\n'))
    assert (scanning.reader.driver, scanning.reader_settings(ble.SETTINGS).address) == ("ble", "")
    named = load(write(tmp_path, '[reader]\ndriver = "ble"\n[reader.ble]\naddress = "C0:FF:EE:12:34:56"\n', "b.toml"))
    assert named.reader_settings(ble.SETTINGS).address == "C0:FF:EE:12:34:56"


# -- the socket -------------------------------------------------------------------------------


def test_the_socket_path_rules(tmp_path: Path) -> None:
    config = Config()
    configured = dataclasses.replace(config, api=dataclasses.replace(config.api, socket="/srv/kiosk/pos.sock"))
    cwd = tmp_path / "work"
    runtime = {"RUNTIME_DIRECTORY": "/run/readerhost", "XDG_RUNTIME_DIR": "/run/user/1000"}

    assert resolve_socket_path(config, {}, cwd) == cwd / "readerhost-api.sock"
    assert resolve_socket_path(config, {"XDG_RUNTIME_DIR": "/run/user/1000"}, cwd) == Path(
        "/run/user/1000/readerhost/api.sock"
    )
    assert resolve_socket_path(config, runtime, cwd) == Path("/run/readerhost/api.sock")
    assert resolve_socket_path(config, {"RUNTIME_DIRECTORY": "/run/a:/run/b"}, cwd) == Path("/run/a/api.sock")
    assert resolve_socket_path(configured, runtime, cwd) == Path("/srv/kiosk/pos.sock")
    assert resolve_socket_path(configured, {**runtime, "READERHOST_SOCKET": "/tmp/t.sock"}, cwd) == Path("/tmp/t.sock")
    assert resolve_socket_path(config, {"READERHOST_SOCKET": "rel.sock"}, cwd) == cwd / "rel.sock"
    assert resolve_socket_path(config, {"READERHOST_SOCKET": ""}, cwd) == cwd / "readerhost-api.sock"
    assert resolve_socket_path(config, {"XDG_RUNTIME_DIR": "relative"}, cwd) == cwd / "readerhost-api.sock"


def test_a_configured_relative_socket_is_relative_to_the_config_file(tmp_path: Path) -> None:
    config = load(write(tmp_path, '[api]\nsocket = "run/api.sock"\n'))
    assert resolve_socket_path(config, {"RUNTIME_DIRECTORY": "/run/readerhost"}, Path("/")) == tmp_path / "run/api.sock"


def test_a_socket_path_too_long_for_af_unix_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_socket_path(Config(), {"READERHOST_SOCKET": "/run/" + "s" * 120}, tmp_path)
    assert str(caught.value).startswith("READERHOST_SOCKET: the socket path /run/sss")
    assert "too long for a Unix socket (125 bytes, at most 107)" in str(caught.value)


def test_the_plain_json_rpc_socket_is_there_only_when_configured_relative_to_the_config_file(tmp_path: Path) -> None:
    assert resolve_jsonrpc_socket_path(Config(), tmp_path) is None
    config = load(write(tmp_path, '[api]\njsonrpc_socket = "run/jsonrpc.sock"\n'))
    assert resolve_jsonrpc_socket_path(config, Path("/")) == tmp_path / "run/jsonrpc.sock"
    with pytest.raises(ConfigError) as caught:
        resolve_jsonrpc_socket_path(load(write(tmp_path, f'[api]\njsonrpc_socket = "/run/{"j" * 120}"\n')), tmp_path)
    assert "[api] jsonrpc_socket: the socket path /run/jjj" in str(caught.value)
    assert "too long for a Unix socket (125 bytes, at most 107)" in str(caught.value)


# -- the store --------------------------------------------------------------------------------


def test_the_store_path_rules(tmp_path: Path) -> None:
    config = Config()
    home = tmp_path / "home"
    configured = dataclasses.replace(config, store=dataclasses.replace(config.store, path="/srv/kiosk/pay.db"))
    state = {"STATE_DIRECTORY": "/var/lib/readerhost", "XDG_STATE_HOME": "/home/k/.state"}

    assert resolve_store_path(config, {}, home) == home / ".local/state/readerhost/readerhost.db"
    assert resolve_store_path(config, {"XDG_STATE_HOME": "/home/k/.state"}, home) == Path(
        "/home/k/.state/readerhost/readerhost.db"
    )
    assert (
        resolve_store_path(config, {"XDG_STATE_HOME": "relative"}, home)
        == home / ".local/state/readerhost/readerhost.db"
    )
    assert resolve_store_path(config, state, home) == Path("/var/lib/readerhost/readerhost.db")
    assert resolve_store_path(config, {"STATE_DIRECTORY": "/var/lib/a:/var/lib/b"}, home) == Path(
        "/var/lib/a/readerhost.db"
    )
    assert resolve_store_path(configured, state, home) == Path("/srv/kiosk/pay.db")


# -- the Stripe key ---------------------------------------------------------------------------


def key_file(tmp_path: Path, content: str, mode: int, name: str = "stripe.key") -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="ascii")
    path.chmod(mode)
    return path


def test_the_key_comes_from_the_environment_first(tmp_path: Path) -> None:
    path = key_file(tmp_path, LIVE_KEY, 0o600)
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    key_file(credentials, LIVE_KEY, 0o400, "stripe-api-key")
    config = config_with(api_key_file=str(path))
    env = {"STRIPE_API_KEY": f" {TEST_KEY}\n", "CREDENTIALS_DIRECTORY": str(credentials)}
    assert resolve_api_key(config, env) == TEST_KEY
    assert resolve_api_key(config, {**env, "STRIPE_API_KEY": ""}) == LIVE_KEY  # empty means unset


def test_the_key_file_beats_the_systemd_credential(tmp_path: Path) -> None:
    path = key_file(tmp_path, f"{TEST_KEY}\n", 0o600)
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    key_file(credentials, LIVE_KEY, 0o400, "stripe-api-key")
    assert resolve_api_key(config_with(api_key_file=str(path)), {"CREDENTIALS_DIRECTORY": str(credentials)}) == TEST_KEY


def test_the_key_from_the_systemd_credential(tmp_path: Path) -> None:
    key_file(tmp_path, f"{LIVE_KEY}\n", 0o400, "stripe-api-key")
    assert resolve_api_key(Config(), {"CREDENTIALS_DIRECTORY": str(tmp_path)}) == LIVE_KEY


def test_a_credentials_directory_without_the_key_means_no_key(tmp_path: Path) -> None:
    assert resolve_api_key(Config(), {"CREDENTIALS_DIRECTORY": str(tmp_path)}) is None
    assert resolve_api_key(Config(), {}) is None


def test_a_relative_key_file_is_relative_to_the_config_file(tmp_path: Path) -> None:
    key_file(tmp_path, TEST_KEY, 0o600)
    config = load(write(tmp_path, '[stripe]\napi_key_file = "stripe.key"\n'))
    assert config.stripe.api_key_file == str(tmp_path / "stripe.key")
    assert resolve_api_key(config, {}) == TEST_KEY


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o640, 0o440])
def test_a_key_file_private_to_its_user_and_group_is_accepted(tmp_path: Path, mode: int) -> None:
    path = key_file(tmp_path, f"{TEST_KEY}\n", mode)
    assert resolve_api_key(config_with(api_key_file=str(path)), {}) == TEST_KEY


@pytest.mark.parametrize(
    ("mode", "who"),
    [
        (0o644, "readable or writable by others (mode 0644)"),
        (0o604, "readable or writable by others (mode 0604)"),
        (0o602, "readable or writable by others (mode 0602)"),
        (0o620, "writable by its group (mode 0620)"),
        (0o660, "writable by its group (mode 0660)"),
    ],
)
def test_a_key_file_others_can_read_or_change_is_refused_with_the_fix(tmp_path: Path, mode: int, who: str) -> None:
    path = key_file(tmp_path, TEST_KEY, mode)
    config = load(write(tmp_path, f'[stripe]\napi_key_file = "{path}"\n'))
    with pytest.raises(ConfigError) as caught:
        resolve_api_key(config, {})
    message = str(caught.value)
    assert message == (
        f"{path} ([stripe] api_key_file in {tmp_path / 'readerhost.toml'}): the Stripe key file is {who}; "
        f"fix it with: chmod 600 {path}"
    )
    assert TEST_KEY not in message


def test_a_loose_systemd_credential_is_refused_too(tmp_path: Path) -> None:
    key_file(tmp_path, TEST_KEY, 0o644, "stripe-api-key")
    with pytest.raises(
        ConfigError, match=r"the systemd credential stripe-api-key\): .* \(mode 0644\); fix it with: chmod 600"
    ):
        resolve_api_key(Config(), {"CREDENTIALS_DIRECTORY": str(tmp_path)})


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "the file is empty; put the Stripe secret key in it"),
        ("  \n\n", "the file is empty; put the Stripe secret key in it"),
        ("4242424242424242\n", "does not hold a Stripe secret key"),
        ("pk_test_51Hpublishable\n", "does not hold a Stripe secret key"),
        ("STRIPE_API_KEY=sk_test_51Hsecret\n", "does not hold a Stripe secret key"),
        ("sk_test_51Hone sk_test_51Htwo\n", "does not hold a Stripe secret key"),
        ("sk_51Hsecret\n", "does not hold a Stripe secret key"),
        ("sk_test_caf\u00e9\n", "does not hold a Stripe secret key"),
    ],
)
def test_a_key_file_without_a_key_is_refused_without_echoing_it(tmp_path: Path, content: str, expected: str) -> None:
    path = key_file(tmp_path, "", 0o600)
    path.write_bytes(content.encode())
    with pytest.raises(ConfigError) as caught:
        resolve_api_key(config_with(api_key_file=str(path)), {})
    message = str(caught.value)
    assert message.startswith(f"{path} ([stripe] api_key_file in built-in defaults): ")
    assert expected in message
    for word in content.split():
        assert word not in message


def test_a_missing_key_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_api_key(config_with(api_key_file=str(tmp_path / "absent.key")), {})
    assert str(caught.value) == (
        f"cannot read {tmp_path / 'absent.key'} ([stripe] api_key_file in built-in defaults): No such file or directory"
    )


def test_a_junk_key_in_the_environment_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_api_key(Config(), {"STRIPE_API_KEY": "pk_live_51Hpublishable"})
    assert str(caught.value).startswith("STRIPE_API_KEY: does not hold a Stripe secret key")
    assert "51Hpublishable" not in str(caught.value)


def test_an_api_base_without_a_key(tmp_path: Path) -> None:
    for local in ("http://127.0.0.1:12111", "http://localhost:12111", "http://[::1]:12111", "https://127.0.0.2"):
        assert resolve_api_key(config_with(api_base=local), {}) == EMULATOR_KEY
    config = load(write(tmp_path, '[stripe]\napi_base = "https://stripe-proxy.example.com"\n'))
    with pytest.raises(ConfigError) as caught:
        resolve_api_key(config, {})
    assert str(caught.value).startswith(
        f'{tmp_path / "readerhost.toml"}: [stripe] api_base is "https://stripe-proxy.example.com" '
        "but no Stripe key was found: set STRIPE_API_KEY, [stripe] api_key_file or the systemd credential "
    )


# -- the mode ---------------------------------------------------------------------------------


def test_mode_of_each_case() -> None:
    default = Config()
    local = config_with(api_base="http://127.0.0.1:12111")
    remote = config_with(api_base="https://stripe-proxy.example.com")

    assert mode_of(None, default) == "emulator"
    assert mode_of(None, local) == "emulator"
    assert mode_of(EMULATOR_KEY, local) == "emulator"
    assert mode_of(resolve_api_key(local, {}), local) == "emulator"
    assert mode_of(EMULATOR_KEY, default) == "emulator"
    assert mode_of(EMULATOR_KEY, remote) == "test"
    assert mode_of(TEST_KEY, default) == "test"
    assert mode_of("rk_test_51Hrestricted", default) == "test"
    assert mode_of(TEST_KEY, local) == "test"
    assert mode_of(LIVE_KEY, default) == "live"
    assert mode_of("rk_live_51Hrestricted", remote) == "live"
    with pytest.raises(ConfigError, match=r"^built-in defaults: \[stripe\] api_base is .* no Stripe key was found"):
        mode_of(None, remote)


# -- import hygiene ---------------------------------------------------------------------------


def test_importing_the_config_loads_neither_stripe_nor_the_simulator() -> None:
    code = (
        "import sys\n"
        "import readerhost.daemon.config\n"
        "loaded = sorted(m for m in sys.modules if m == 'stripe' or m.startswith(('stripe.', 'readerhost.sim')))\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[display]\nkind = 'lcd'\n", "[display] kind"),
        ("[display]\nrotate = 4\n", "[display] rotate"),
        ("[gpio]\nok_pin = 40\n", "[gpio] ok_pin"),
        ("[gpio]\nled_rgb_pins = [1, 2]\n", "[gpio] led_rgb_pins"),
        ("[gpio]\nhold_s = 0\n", "[gpio] hold_s"),
    ],
)
def test_display_and_gpio_mistakes_name_their_key(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in error_of(write(tmp_path, text))


def test_display_and_gpio_settings_are_read(tmp_path: Path) -> None:
    text = "[display]\nkind = 'sh1106'\nheight = 32\n\n[gpio]\nenabled = true\nbuzzer_pin = 18\nled_pin = -1\n"
    config = load_config(str(write(tmp_path, text)), {})
    assert (config.display.kind, config.display.height) == ("sh1106", 32)
    assert (config.gpio.enabled, config.gpio.buzzer_pin, config.gpio.led_pin) == (True, 18, None)
