"""The reader registry: each driver is its module (settings, capabilities, one entry point) plus
one line in DRIVERS; what a driver declares it can do is what its reader does, and anything else
is answered UNSUPPORTED from one place."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import pytest
from support import pretend_reader

from readerhost.daemon.config import ConfigError, load_config
from readerhost.drivers.reader import DRIVERS, Driver, ReaderSettings
from readerhost.drivers.reader.base import (
    OPERATIONS,
    Capability,
    Cart,
    ReaderBase,
    ReaderContext,
    RefundOrder,
    Unsupported,
)
from readerhost.drivers.reader.stripe_terminal import TerminalApi

WITH_PRETEND: Mapping[str, Driver] = {**DRIVERS, "pretend": pretend_reader}
CART = Cart("eur", (), None, 100)


def opened(name: str, drivers: Mapping[str, Driver] = WITH_PRETEND) -> Any:
    """The driver's reader as the daemon opens it (not started: nothing is reached), on settings
    that satisfy the driver's own required checks."""
    driver = drivers[name]
    required = {
        "serial": {"device": "/dev/null"},
        "stripe_terminal": {"reader_id": "tmr_1"},
        "pretend": {"greeting": "hi"},
    }
    settings = driver.SETTINGS.cls(**required.get(name, {}))
    # Opening reaches nothing: the smart reader's API client is made, never called.
    context = ReaderContext(
        ReaderSettings(driver=name), lambda kind, data: None, terminal_api=lambda: cast(TerminalApi, object())
    )
    return driver.open_reader(settings, context)


@pytest.mark.parametrize("name", list(WITH_PRETEND))
def test_a_driver_is_its_module_its_table_and_its_entry_point(name: str) -> None:
    driver = WITH_PRETEND[name]
    assert driver.SETTINGS.name == f"reader.{name}"
    reader = opened(name)
    assert isinstance(reader, ReaderBase)
    assert reader.driver == name
    assert reader.capabilities == driver.CAPABILITIES


@pytest.mark.parametrize("name", list(WITH_PRETEND))
def test_what_a_driver_declares_is_what_its_reader_overrides(name: str) -> None:
    reader = opened(name)
    for operation, capability in OPERATIONS.items():
        overridden = getattr(type(reader), operation) is not getattr(ReaderBase, operation)
        assert overridden == (capability in WITH_PRETEND[name].CAPABILITIES), f"{name}: {operation}"


@pytest.mark.parametrize("name", list(WITH_PRETEND))
def test_an_operation_a_reader_lacks_is_unsupported_naming_the_reader(name: str) -> None:
    reader = opened(name)
    if Capability.PRESENTS_TEST_CARDS not in reader.capabilities:
        with pytest.raises(Unsupported) as caught:
            reader.present("visa")
        assert (caught.value.code, caught.value.message) == (
            "UNSUPPORTED",
            f"the {name} reader takes real cards, not test cards",
        )
        assert caught.value.capability is Capability.PRESENTS_TEST_CARDS
    if Capability.SHOWS_CART not in reader.capabilities:
        with pytest.raises(Unsupported, match=f"^the {name} reader has no screen for a cart$"):
            asyncio.run(reader.show_cart(CART))
    if Capability.REFUNDS_AT_READER not in reader.capabilities:
        order = RefundOrder("pi_1", 100, {"refund_id": "R-1"}, "key")
        with pytest.raises(Unsupported, match=f"^the {name} reader cannot refund at the reader$"):
            asyncio.run(reader.refund(order, SilentListener()))


class SilentListener:
    def input_options(self, options: list[str]) -> None:
        pass

    def display_message(self, message: str) -> None:
        pass

    def card_event(self, event: str) -> None:
        pass


def test_the_capabilities_of_the_drivers() -> None:
    capabilities = {name: driver.CAPABILITIES for name, driver in DRIVERS.items()}
    assert capabilities == {
        "simulated": {Capability.PRESENTS_TEST_CARDS, Capability.STORES_OFFLINE},
        "serial": {Capability.STORES_OFFLINE},
        "ble": {Capability.STORES_OFFLINE, Capability.PAIRS},
        "stripe_terminal": {
            Capability.SHOWS_CART,
            Capability.CONFIRMS_ITSELF,
            Capability.TAKES_TIPS,
            Capability.REGISTERS,
            Capability.REFUNDS_AT_READER,
        },
    }


def test_opening_a_link_reader_loads_no_radio_or_serial_library_until_it_connects() -> None:
    code = (
        "import sys\n"
        "from readerhost.daemon.config import load_config\n"
        "from readerhost.drivers.reader import DRIVERS, ReaderSettings\n"
        "from readerhost.drivers.reader.base import ReaderContext\n"
        "from readerhost.drivers.reader.serial import SerialSettings\n"
        "from readerhost.drivers.reader.ble import BleSettings\n"
        "load_config(None, {}, system_path=__import__('pathlib').Path('/nonexistent'))\n"
        "context = ReaderContext(ReaderSettings(), lambda kind, data: None)\n"
        "DRIVERS['serial'].open_reader(SerialSettings(device='/dev/null'), context)\n"
        "DRIVERS['ble'].open_reader(BleSettings(), context)\n"
        "print(sorted(m for m in ('serial', 'bleak', 'stripe') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# -- adding a driver: its module and one line in the registry --------------------------------------


def load(tmp_path: Path, text: str, drivers: Mapping[str, Driver] = WITH_PRETEND) -> Any:
    path = tmp_path / "readerhost.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(str(path), {}, system_path=tmp_path / "absent.toml", drivers=drivers)


def error_of(tmp_path: Path, text: str, drivers: Mapping[str, Driver] = WITH_PRETEND) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, drivers)
    return str(caught.value).removeprefix(f"{tmp_path / 'readerhost.toml'}: ")


def test_a_registered_driver_s_table_is_read_from_its_declaration(tmp_path: Path) -> None:
    config = load(tmp_path, '[reader]\ndriver = "pretend"\n[reader.pretend]\ngreeting = "hello"\nvolume = 11\n')
    settings = config.reader_settings(pretend_reader.SETTINGS)
    assert settings == pretend_reader.PretendSettings("hello", 11)
    reader = opened("pretend")
    asyncio.run(reader.show_cart(CART))
    assert reader.carts == [CART]


def test_a_registered_driver_s_mistakes_are_told_like_any_other(tmp_path: Path) -> None:
    assert error_of(tmp_path, "[reader.pretend]\nvolume = 12\n") == (
        "line 2: [reader.pretend] volume must be a whole number from 0 to 11, not 12"
    )
    assert error_of(tmp_path, "[reader.pretend]\n\nvolum = 1\n").startswith(
        "line 3: unknown key [reader.pretend] volum (did you mean volume? known: greeting, volume)"
    )
    assert error_of(tmp_path, '[reader]\ndriver = "pretend"\n') == (
        "[reader.pretend] greeting: the pretend reader needs something to say"
    )
    known = "driver, card_wait_s, cancel_confirm_s, reconnect_max_s, simulated, serial, ble, stripe_terminal, pretend"
    assert error_of(tmp_path, "[reader]\npretnd = {}\n").endswith(f"(did you mean pretend? known: {known})")


def test_a_driver_not_in_the_registry_is_refused(tmp_path: Path) -> None:
    message = error_of(tmp_path, '[reader]\ndriver = "pretend"\n', DRIVERS)
    assert message == 'line 2: [reader] driver must be one of simulated, serial, ble, stripe_terminal, not "pretend"'
    assert "unknown key [reader] pretend" in error_of(tmp_path, '[reader.pretend]\ngreeting = "hi"\n', DRIVERS)
