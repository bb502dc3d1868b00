"""The settings vocabulary: each declared default within its own bounds, kinds that read TOML values
strictly, sections built in code checked by the same declaration, and fields typed for mypy."""

from __future__ import annotations

import dataclasses
from typing import Any, assert_type

import pytest

from readerhost.daemon.config import Config, sections
from readerhost.drivers.display import DisplaySettings
from readerhost.drivers.gpio import GpioSettings
from readerhost.drivers.reader import ReaderSettings
from readerhost.drivers.reader.serial import SerialSettings
from readerhost.drivers.reader.simulated import SimulatedSettings
from readerhost.drivers.settings import (
    Choice,
    FilePath,
    Flag,
    Ids,
    Int,
    Kind,
    Number,
    Pin,
    Pins,
    Refused,
    Text,
    kind_of,
)


def test_every_declared_default_is_within_its_own_bounds() -> None:
    # Construction trusts a declared default (it does not check it): this is where each is checked.
    checked = 0
    for section in sections():
        for item in dataclasses.fields(section.cls):
            assert kind_of(item).problem(item.default) is None, f"[{section.name}] {item.name}"
            checked += 1
    assert checked >= 50


def test_each_section_is_a_frozen_dataclass_of_settings() -> None:
    names = [section.name for section in sections()]
    assert len(names) == len(set(names))
    assert all(section.kinds() for section in sections())
    with pytest.raises(AttributeError):
        SerialSettings().baudrate = 9600  # type: ignore[misc]


def test_mypy_sees_each_field_with_its_type() -> None:
    # assert_type is checked by mypy (./dev test runs it on the tests) and is a no-op at run time.
    assert assert_type(SerialSettings().baudrate, int) == 115_200
    assert assert_type(SerialSettings().device, str) == ""
    assert assert_type(GpioSettings().led_rgb_pins, tuple[int, int, int] | None) is None
    assert assert_type(GpioSettings().buzzer_pin, int | None) is None
    assert assert_type(DisplaySettings().dim_after_s, float) == 60.0
    assert assert_type(ReaderSettings().card_wait_s, int) == 60
    assert assert_type(Config().stripe.terminal_id, str) == "readerhost"


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: DisplaySettings(width=16), "DisplaySettings: width must be a whole number from 32 to 256, not 16"),
        (lambda: DisplaySettings(kind="lcd"), "kind must be one of none, ssd1306, sh1106, ssd1309, terminal"),
        (lambda: GpioSettings(hold_s=0), "GpioSettings: hold_s must be a number above 0, not 0"),
        (lambda: GpioSettings(ok_pin=40), "ok_pin must be a BCM pin number from 0 to 27, or -1 for none, not 40"),
        (lambda: GpioSettings(led_rgb_pins=(1, 2, 99)), "led_rgb_pins must be three BCM pin numbers"),
        (lambda: SerialSettings(device="~/tty"), "device must be an absolute path (~ is not expanded)"),
        (lambda: SimulatedSettings(card="gold"), "card must be one of the emulator's test cards (visa,"),
        (lambda: ReaderSettings(cancel_confirm_s=float("nan")), "cancel_confirm_s must be a number above 0"),
    ],
)
def test_a_section_built_in_code_is_checked_by_its_declaration(make: Any, words: str) -> None:
    with pytest.raises(ValueError, match="must be") as caught:
        make()
    assert words in str(caught.value)


def read(kind: Kind[Any], value: object) -> Any:
    return kind.read(value, "/etc/readerhost")


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        (Int(0, 10), 10, 10),
        (Number(), -1, -1.0),
        (Number(at_least=0), 0, 0.0),
        (Flag(), False, False),
        (Pin(), -1, None),
        (Pin(), 27, 27),
        (Pins(), [], None),
        (Pins(), [5, 6, 13], (5, 6, 13)),
        (Ids(), [0, 1000], (0, 1000)),
        (Ids(), [], ()),
        (Choice("a", "b"), "b", "b"),
        (Text(), "", ""),
        (FilePath(), "", ""),
        (FilePath(), "keys/stripe.key", "/etc/readerhost/keys/stripe.key"),
        (FilePath(), "/run/x.sock", "/run/x.sock"),
    ],
)
def test_kinds_read_what_a_file_may_hold(kind: Kind[Any], value: object, expected: object) -> None:
    result = read(kind, value)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("kind", "value", "must"),
    [
        (Int(0, 10), True, "a whole number from 0 to 10"),
        (Int(0, 10), 2.0, "a whole number from 0 to 10"),
        (Int(1), 0, "a whole number of at least 1"),
        (Number(above=0), 0, "a number above 0"),
        (Number(above=0), False, "a number above 0"),
        (Number(), float("inf"), "a number"),
        (Flag(), 1, "true or false"),
        (Pin(), 28, "a BCM pin number from 0 to 27, or -1 for none"),
        (Pin(), -2, "a BCM pin number from 0 to 27, or -1 for none"),
        (Pin(), True, "a BCM pin number from 0 to 27, or -1 for none"),
        (Pins(), [1, 2], "three BCM pin numbers [red, green, blue], or [] for none"),
        (Ids(), [-1], "a list of whole numbers from 0 to 4294967294, like [1000, 1001]"),
        (Ids(), 1000, "a list of whole numbers from 0 to 4294967294, like [1000, 1001]"),
        (Choice("a", "b"), "c", "one of a, b"),
        (Text(), 3, "a string in double quotes"),
        (FilePath(), "a\0b", "a path without NUL characters"),
    ],
)
def test_kinds_refuse_saying_what_a_value_must_be(kind: Kind[Any], value: object, must: str) -> None:
    with pytest.raises(Refused) as caught:
        read(kind, value)
    assert caught.value.must == must
