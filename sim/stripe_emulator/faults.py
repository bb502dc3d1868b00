"""Fault rules: what goes wrong with the next matching requests, in the order the rules were added."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

from .ids import new_id

ACTIONS = (
    "reset_before",  # connection reset; nothing applied
    "reset_after",  # applied (and saved under its key), then the connection is reset
    "delay_before",  # wait, then apply
    "delay_during",  # apply after a wait during which the idempotency key is in flight
    "delay_after",  # apply, then wait before answering
    "error",  # a 5xx api_error answer; nothing applied
    "rate_limit",  # a 429 answer; nothing applied
    "down",  # every matching request is reset until the rule is removed
)
DELAYS = ("delay_before", "delay_during", "delay_after")
ERROR_STATUSES = (500, 502, 503)


class FaultSpecError(ValueError):
    """A fault rule that cannot be armed, with the field at fault in the message."""


@dataclass
class FaultRule:
    id: str
    method: str | None
    path: str
    action: str
    times: int
    status: int | None = None
    should_retry: bool | None = None
    seconds: float | None = None
    fired: int = 0
    pattern: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.pattern = re.compile(self.path)

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and self.pattern.search(path) is not None

    def exhausted(self) -> bool:
        return self.action != "down" and self.times != -1 and self.fired >= self.times

    def to_json(self) -> dict[str, Any]:
        rule: dict[str, Any] = {
            "id": self.id,
            "method": self.method,
            "path": self.path,
            "action": self.action,
            "times": self.times,
            "fired": self.fired,
        }
        for name in ("status", "should_retry", "seconds"):
            if getattr(self, name) is not None:
                rule[name] = getattr(self, name)
        return rule


def rule_from_json(spec: object) -> FaultRule:
    """Validate a rule as sent to POST /_emulator/faults."""
    if not isinstance(spec, dict):
        raise FaultSpecError("a fault rule must be a JSON object")
    known = {"method", "path", "action", "times", "status", "should_retry", "seconds"}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise FaultSpecError(f"unknown field {unknown[0]!r}; known fields: {', '.join(sorted(known))}")
    action = spec.get("action")
    if action not in ACTIONS:
        raise FaultSpecError(f"action must be one of {', '.join(ACTIONS)}; got {action!r}")
    method = spec.get("method")
    if method is not None and (not isinstance(method, str) or method.upper() not in ("GET", "POST", "DELETE")):
        raise FaultSpecError(f"method must be GET, POST or DELETE; got {method!r}")
    path = spec.get("path", ".*")
    if not isinstance(path, str):
        raise FaultSpecError("path must be a regular expression in a string")
    try:
        re.compile(path)
    except re.error as exc:
        raise FaultSpecError(f"path is not a valid regular expression: {exc}") from None
    times = spec.get("times", 1)
    if isinstance(times, bool) or not isinstance(times, int) or (times < 1 and times != -1):
        raise FaultSpecError(f"times must be a positive integer or -1 (until removed); got {times!r}")
    status = spec.get("status")
    if action == "error":
        status = 500 if status is None else status
        if status not in ERROR_STATUSES:
            raise FaultSpecError(f"status for an error fault must be one of 500, 502, 503; got {status!r}")
    elif status is not None:
        raise FaultSpecError("status applies to the error action only")
    should_retry = spec.get("should_retry")
    if should_retry is not None and (action != "error" or not isinstance(should_retry, bool)):
        raise FaultSpecError("should_retry must be true or false, and applies to the error action only")
    seconds = spec.get("seconds")
    if action in DELAYS:
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds <= 300:
            raise FaultSpecError(f"{action} needs seconds between 0 and 300; got {seconds!r}")
    elif seconds is not None:
        raise FaultSpecError("seconds applies to the delay actions only")
    return FaultRule(
        id=new_id("flt", 14),
        method=method.upper() if isinstance(method, str) else None,
        path=path,
        action=action,
        times=times,
        status=status,
        should_retry=should_retry,
        seconds=float(seconds) if seconds is not None else None,
    )


class FaultTable:
    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self._fired = threading.Condition(self._lock)

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self._rules.append(rule)
            return rule

    def take(self, method: str, path: str) -> FaultRule | None:
        """The first armed rule matching the request, counted as fired."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path):
                    rule.fired += 1
                    if rule.exhausted():
                        self._rules.remove(rule)
                    self._fired.notify_all()
                    return rule
            return None

    def wait_fired(self, rule: FaultRule, times: int = 1, timeout: float | None = None) -> bool:
        """Block until `rule` has fired `times` times (True), or the timeout passes (False)."""
        with self._fired:
            return self._fired.wait_for(lambda: rule.fired >= times, timeout)

    def armed(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def remove(self, rule_id: str) -> bool:
        with self._lock:
            before = len(self._rules)
            self._rules = [rule for rule in self._rules if rule.id != rule_id]
            return len(self._rules) != before

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
