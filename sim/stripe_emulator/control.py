"""The control interface under /_emulator/ (see docs/stripe-emulator.md): JSON in, JSON out, no key."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from .clock import ClockError
from .emulator import StripeEmulator
from .faults import FaultSpecError
from .terminal_readers import ReaderControlError

ControlAnswer = tuple[int, Any]


class ControlError(ValueError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def handle_control(emulator: StripeEmulator, method: str, path: str, query: str, body: bytes) -> ControlAnswer:
    try:
        return _dispatch(emulator, method, path, query, body)
    except (ControlError, ReaderControlError) as error:
        return error.status, {"error": {"message": str(error)}}
    except (FaultSpecError, ClockError, ValueError) as error:
        return 400, {"error": {"message": str(error)}}


def _dispatch(emulator: StripeEmulator, method: str, path: str, query: str, body: bytes) -> ControlAnswer:
    route = path.removeprefix("/_emulator/").rstrip("/")
    if route == "faults" and method == "POST":
        return 200, {"id": emulator.add_fault(_json_object(body)).id}
    if route == "faults" and method == "GET":
        return 200, [rule.to_json() for rule in emulator.faults.armed()]
    if route == "faults" and method == "DELETE":
        removed = len(emulator.faults.armed())
        emulator.faults.clear()
        return 200, {"removed": removed}
    if route.startswith("faults/") and method == "DELETE":
        if not emulator.faults.remove(route.removeprefix("faults/")):
            raise ControlError(404, f"no armed fault rule with id {route.removeprefix('faults/')!r}")
        return 200, {"removed": 1}
    if route == "clock" and method == "POST":
        return 200, {"now": _move_clock(emulator, _json_object(body))}
    if route == "clock" and method == "GET":
        return 200, {"now": emulator.clock.timestamp()}
    if route == "journal" and method == "GET":
        since = _since(query)
        return 200, [entry.to_json() for entry in emulator.journal_entries(since)]
    if route == "rate_limit" and method == "POST":
        per_second = _json_object(body).get("per_second", "missing")
        if per_second is not None and (isinstance(per_second, bool) or not isinstance(per_second, (int, float))):
            raise ControlError(400, "per_second must be a positive number, or null to turn the limit off")
        emulator.set_rate_limit(per_second)
        return 200, {"per_second": per_second}
    if route == "search_lag" and method == "POST":
        seconds = _json_object(body).get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            raise ControlError(400, "seconds must be a number of seconds (0 makes search read-after-write)")
        emulator.set_search_lag(seconds)
        return 200, {"seconds": seconds}
    if route == "search_available" and method == "POST":
        available = _json_object(body).get("available")
        if not isinstance(available, bool):
            raise ControlError(400, "available must be true or false (false: search is refused, as in India)")
        emulator.set_search_available(available)
        return 200, {"available": available}
    if route.startswith("terminal/readers/") and method == "POST":
        return 200, emulator.configure_reader(route.removeprefix("terminal/readers/"), _json_object(body))
    if route == "increment_declines" and method == "POST":
        spec = _json_object(body)
        waiting = emulator.decline_increments(spec.get("times", 1), spec.get("decline_code", "insufficient_funds"))
        return 200, {"waiting": waiting}
    if route == "reset" and method == "POST":
        emulator.reset()
        return 200, {}
    raise ControlError(404, f"no control endpoint {method} {path}")


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError) as error:
        raise ControlError(400, f"the body is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise ControlError(400, "the body must be a JSON object")
    return value


def _move_clock(emulator: StripeEmulator, spec: dict[str, Any]) -> int:
    if set(spec) == {"advance_s"} and _is_number(spec["advance_s"]):
        return int(emulator.advance_clock(spec["advance_s"]))
    if set(spec) == {"set"} and _is_number(spec["set"]):
        return int(emulator.set_clock(spec["set"]))
    raise ControlError(400, 'send {"advance_s": <seconds>} or {"set": <unix seconds>}')


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _since(query: str) -> int:
    values = parse_qs(query).get("since", ["0"])
    try:
        since = int(values[-1])
    except ValueError:
        raise ControlError(400, f"since must be a journal sequence number; got {values[-1]!r}") from None
    if since < 0:
        raise ControlError(400, "since must not be negative")
    return since
