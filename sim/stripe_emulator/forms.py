"""Stripe's request encoding: form fields with bracketed keys, read through a strict accessor.

`metadata[order_id]=A1` becomes {"metadata": {"order_id": "A1"}}; `expand[0]=x` and `expand[]=x`
become lists. `Params` hands out typed values and remembers what was read, so anything a
handler did not ask for is refused as an unknown parameter, as Stripe does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

from .errors import invalid_request, missing_param, unknown_param

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")

FormValue = Any  # str, or a nested dict / list of them


def parse_form(encoded: str) -> dict[str, FormValue]:
    """Decode a query string or form body into nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(encoded, keep_blank_values=True, strict_parsing=False):
        match = _KEY.match(key)
        if match is None:
            raise invalid_request(f"Invalid parameter name: {key}", param=key)
        path = [match.group(1), *_SEGMENT.findall(match.group(2))]
        _insert(root, path, value, key)
    return {name: _listify(value) if isinstance(value, dict) else value for name, value in root.items()}


def _insert(node: dict[str, Any], path: list[str], value: str, key: str) -> None:
    for depth, segment in enumerate(path):
        last = depth == len(path) - 1
        if segment == "":  # `name[]=x`: append, numbered after what is already there
            segment = str(len(node))
        if last:
            if isinstance(node.get(segment), dict):
                raise invalid_request(f"Invalid parameter: {key} mixes a value and a hash", param=key)
            node[segment] = value
            return
        child = node.setdefault(segment, {})
        if not isinstance(child, dict):
            raise invalid_request(f"Invalid parameter: {key} mixes a value and a hash", param=key)
        node = child


def _listify(node: dict[str, Any]) -> Any:
    converted = {k: _listify(v) if isinstance(v, dict) else v for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


class Params:
    """Typed, strict access to one request's parameters."""

    def __init__(self, values: dict[str, FormValue], *, always_allowed: Iterable[str] = ("expand",)) -> None:
        self._values = values
        self._read: set[str] = set(always_allowed)

    def _take(self, name: str, required: bool) -> FormValue | None:
        self._read.add(name)
        value = self._values.get(name)
        if value is None or value == "":
            if required:
                raise missing_param(name)
            return None
        return value

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def raw(self, name: str) -> FormValue | None:
        """The value as sent (a string, a hash or a list), for parameters of more than one shape."""
        return self._take(name, False)

    def string(self, name: str, *, required: bool = False, max_length: int = 5000) -> str | None:
        value = self._take(name, required)
        if value is None:
            return None
        if not isinstance(value, str):
            raise invalid_request(f"Invalid string: {name} must be a string", param=name)
        if len(value) > max_length:
            raise invalid_request(
                f"Invalid string: {value[:20]}...; must be at most {max_length} characters", param=name
            )
        return value

    def required_string(self, name: str, *, max_length: int = 5000) -> str:
        value = self.string(name, required=True, max_length=max_length)
        assert value is not None  # string() raised parameter_missing otherwise
        return value

    def required_integer(self, name: str) -> int:
        value = self.integer(name, required=True)
        assert value is not None  # integer() raised parameter_missing otherwise
        return value

    def integer(self, name: str, *, required: bool = False) -> int | None:
        value = self._take(name, required)
        if value is None:
            return None
        if not isinstance(value, str) or not re.fullmatch(r"-?\d+", value):
            raise invalid_request(f"Invalid integer: {value}", param=name, code="parameter_invalid_integer")
        return int(value)

    def boolean(self, name: str) -> bool | None:
        value = self._take(name, False)
        if value is None:
            return None
        if value not in ("true", "false"):
            raise invalid_request(f"Invalid boolean: {value}", param=name)
        return bool(value == "true")

    def choice(self, name: str, choices: tuple[str, ...], *, required: bool = False) -> str | None:
        value = self.string(name, required=required)
        if value is not None and value not in choices:
            listed = ", ".join(choices[:-1]) + f", or {choices[-1]}" if len(choices) > 1 else choices[0]
            raise invalid_request(f"Invalid {name}: must be one of {listed}", param=name)
        return value

    def string_list(self, name: str) -> list[str] | None:
        value = self._take(name, False)
        if value is None:
            return None
        if isinstance(value, str):  # Stripe accepts a lone value for a one-item list
            value = [value]
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise invalid_request(f"Invalid array: {name}", param=name)
        return value

    def mapping(self, name: str) -> dict[str, FormValue] | None:
        value = self._take(name, False)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise invalid_request(f"Invalid object: {name} must be a hash", param=name)
        return value

    def expand(self) -> list[str]:
        return self.string_list("expand") or []

    def reject_unknown(self) -> None:
        """Refuse any parameter the handler did not read, naming the first one."""
        for name in self._values:
            if name not in self._read:
                value = self._values[name]
                raise unknown_param(f"{name}[{next(iter(value))}]" if isinstance(value, dict) and value else name)


def no_expansions(params: Params) -> None:
    """Refuse any `expand[]`: the object has nothing the emulator expands."""
    for path in params.expand():
        raise invalid_request(f"This property cannot be expanded ({path}).", param="expand")
