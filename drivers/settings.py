"""Settings a component declares for itself: one frozen dataclass per TOML table, each key's default
and bounds written once, in its field (Klipper's `config.getint("x", 5, minval=1)`, as data).

    @dataclass(frozen=True)
    class SerialSettings(Settings):
        device: str = setting("", FilePath())
        baudrate: int = setting(115_200, Int(50, 4_000_000))

    SETTINGS = Section("reader.serial", SerialSettings, required=_needs_a_device)

The daemon's loader (daemon/config.py) reads every declared section from the file with these
kinds, and names the file, line, table and key of any mistake. A section built in code is checked
by the same declaration (`Settings.__post_init__`).

Why here, in drivers/ and not in the daemon: the drivers are the lowest layer, and each declares
its own section; the daemon imports the drivers, never the other way. Standard library only, no
side effects at import.
"""

from __future__ import annotations

import math
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import Field, dataclass, field, fields
from typing import Any, Generic, TypeVar, cast

T = TypeVar("T")
S = TypeVar("S", bound="Settings")

MAX_ID = 2**32 - 2  # uid_t/gid_t; 2**32 - 1 is (uid_t) -1, "no id"
MAX_PIN = 27  # the Pi's BCM GPIO numbers on its 40-pin header
_KIND = "readerhost.kind"  # the field metadata key holding a setting's Kind


class Refused(ValueError):
    """A value a setting cannot take; `must` says what it must be ("a whole number from 0 to 10")."""

    def __init__(self, must: str) -> None:
        super().__init__(must)
        self.must = must


class Kind(ABC, Generic[T]):
    """What values a setting takes: how a TOML value is read, and the bounds of a value."""

    @abstractmethod
    def read(self, value: object, folder: str) -> T:
        """The TOML `value` as the setting's value; Refused when its type or bounds are wrong.
        `folder` is the configuration file's folder (relative paths are taken from there)."""

    @abstractmethod
    def problem(self, value: T) -> str | None:
        """What a value must be when `value` is out of bounds; None when it is fine."""

    def _checked(self, value: T) -> T:
        must = self.problem(value)
        if must is not None:
            raise Refused(must)
        return value


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # bool is an int in Python, never in a file


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class Text(Kind[str]):
    """A string; `check` returns what it must be when it is not acceptable."""

    def __init__(self, check: Callable[[str], str | None] | None = None) -> None:
        self._check = check

    def read(self, value: object, folder: str) -> str:
        if not isinstance(value, str):
            raise Refused("a string in double quotes")
        return self._checked(value)

    def problem(self, value: str) -> str | None:
        return None if self._check is None else self._check(value)


class Choice(Kind[str]):
    def __init__(self, *choices: str) -> None:
        self.choices = choices
        self._must = f"one of {', '.join(choices)}"

    def read(self, value: object, folder: str) -> str:
        if not isinstance(value, str):
            raise Refused(self._must)
        return self._checked(value)

    def problem(self, value: str) -> str | None:
        return None if value in self.choices else self._must


class FilePath(Kind[str]):
    """A file system path; a relative one is taken relative to the configuration file's folder."""

    def read(self, value: object, folder: str) -> str:
        if not isinstance(value, str):
            raise Refused("a string in double quotes")
        value = self._checked(value)
        return os.path.join(folder, value) if value and not os.path.isabs(value) else value

    def problem(self, value: str) -> str | None:
        if "\0" in value:
            return "a path without NUL characters"
        if value.startswith("~"):
            return "an absolute path (~ is not expanded), or one relative to this file's folder"
        return None


class Int(Kind[int]):
    def __init__(self, low: int, high: int | None = None) -> None:
        self.low, self.high = low, high
        self._must = f"a whole number of at least {low}" if high is None else f"a whole number from {low} to {high}"

    def read(self, value: object, folder: str) -> int:
        if not _is_int(value):
            raise Refused(self._must)
        return self._checked(cast(int, value))

    def problem(self, value: int) -> str | None:
        if value < self.low or (self.high is not None and value > self.high):
            return self._must
        return None


class Number(Kind[float]):
    """A finite number (an integer is one too), optionally bounded below, and above."""

    def __init__(
        self, *, above: float | None = None, at_least: float | None = None, at_most: float | None = None
    ) -> None:
        self.above, self.at_least, self.at_most = above, at_least, at_most
        self._must = "a number"
        if above is not None:
            self._must = f"a number above {above:g}"
        elif at_least is not None:
            self._must = f"a number of at least {at_least:g}"
        if at_most is not None:
            self._must += f" and at most {at_most:g}"

    def read(self, value: object, folder: str) -> float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise Refused(self._must)
        return self._checked(float(value))

    def problem(self, value: float) -> str | None:
        too_low = (self.above is not None and value <= self.above) or (
            self.at_least is not None and value < self.at_least
        )
        too_high = self.at_most is not None and value > self.at_most
        return self._must if too_low or too_high or not math.isfinite(value) else None


class Flag(Kind[bool]):
    def read(self, value: object, folder: str) -> bool:
        if not isinstance(value, bool):
            raise Refused("true or false")
        return value

    def problem(self, value: bool) -> str | None:
        return None


class Pin(Kind[int | None]):
    """A GPIO (BCM) pin number, or none: -1 in the file, None in the settings."""

    _MUST = f"a BCM pin number from 0 to {MAX_PIN}, or -1 for none"

    def read(self, value: object, folder: str) -> int | None:
        if not _is_int(value):
            raise Refused(self._MUST)
        return None if value == -1 else self._checked(cast(int, value))

    def problem(self, value: int | None) -> str | None:
        return None if value is None or 0 <= value <= MAX_PIN else self._MUST


class Pins(Kind[tuple[int, int, int] | None]):
    """An RGB LED's three pins [red, green, blue], or none: [] in the file, None in the settings."""

    _MUST = "three BCM pin numbers [red, green, blue], or [] for none"

    def read(self, value: object, folder: str) -> tuple[int, int, int] | None:
        if value == []:
            return None
        if not isinstance(value, list) or len(value) != 3 or not all(_is_int(pin) for pin in value):
            raise Refused(self._MUST)
        return self._checked((value[0], value[1], value[2]))

    def problem(self, value: tuple[int, int, int] | None) -> str | None:
        if value is None or (len(value) == 3 and all(0 <= pin <= MAX_PIN for pin in value)):
            return None
        return self._MUST


class Ids(Kind[tuple[int, ...]]):
    """User or group ids: a list of whole numbers."""

    _MUST = f"a list of whole numbers from 0 to {MAX_ID}, like [1000, 1001]"

    def read(self, value: object, folder: str) -> tuple[int, ...]:
        if not isinstance(value, list) or not all(_is_int(item) for item in value):
            raise Refused(self._MUST)
        return self._checked(tuple(value))

    def problem(self, value: tuple[int, ...]) -> str | None:
        return None if all(0 <= item <= MAX_ID for item in value) else self._MUST


class Leads(Kind[tuple[float, ...]]):
    """Lead times in seconds before a moment: a list of positive numbers, kept largest first."""

    _MUST = "a list of numbers of seconds above 0, like [86400, 7200]"

    def read(self, value: object, folder: str) -> tuple[float, ...]:
        if not isinstance(value, list) or not all(_is_number(item) for item in value):
            raise Refused(self._MUST)
        return self._checked(tuple(sorted({float(item) for item in value}, reverse=True)))

    def problem(self, value: tuple[float, ...]) -> str | None:
        return None if all(math.isfinite(v) and v > 0 for v in value) else self._MUST


def setting(default: T, kind: Kind[T]) -> T:
    """A settings field: its default, and the Kind that reads and bounds its values."""
    return field(default=default, metadata={_KIND: kind})


def kind_of(item: Field[Any]) -> Kind[Any]:
    """The Kind a settings field was declared with."""
    kind = item.metadata.get(_KIND)
    if not isinstance(kind, Kind):
        raise TypeError(f"the settings field {item.name} is not declared with setting(default, kind)")
    return kind


class Settings:
    """The base of a settings section (a frozen dataclass of `setting` fields).

    Built in code, a section refuses (ValueError) a value its declaration refuses. A declared
    default is not checked here (tests/drivers/test_settings.py checks every one): checking it would
    run, say, the simulated reader's card check, which loads the emulator's card table, in every daemon.
    """

    def __post_init__(self) -> None:
        for item in fields(cast(Any, self)):
            value = getattr(self, item.name)
            if value == item.default:
                continue
            must = kind_of(item).problem(value)
            if must is not None:
                raise ValueError(f"{type(self).__name__}: {item.name} must be {must}, not {value!r}")


@dataclass(frozen=True)
class Missing:
    """What a section lacks when its component is in use: the key, and why it is needed."""

    key: str
    why: str


@dataclass(frozen=True)
class Section(Generic[S]):
    """A TOML table (`name`, dotted for a sub-table: "reader.serial") and the settings it holds.
    `required` says what the section lacks when its component is in use (a reader driver chosen)."""

    name: str
    cls: type[S]
    required: Callable[[S], Missing | None] | None = None

    def kinds(self) -> dict[str, Kind[Any]]:
        """Each key of the table, and its Kind, in declaration order."""
        return {item.name: kind_of(item) for item in fields(cast(Any, self.cls))}

    def missing(self, settings: S) -> Missing | None:
        return None if self.required is None else self.required(settings)
