"""Stripe for the simulation: the emulator's core behind the real stripe-python, with no network.

`EmulatorTransport` is a `stripe.HTTPClient`: stripe-python builds, signs, encodes and retries each
request as it always does, and the transport hands it to `StripeEmulator.handle` instead of a socket.
Before each request the seed may arm one of the emulator's own fault rules for it, so a fault means
exactly what it means in the emulator's HTTP server.
"""

from __future__ import annotations

import json
import random
import re
import urllib.parse
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import stripe
from requests.structures import CaseInsensitiveDict

from sim.stripe_emulator.emulator import ApiRequest, StripeEmulator

READ_TIMEOUT_S = 20.0  # the daemon's default read timeout: how long a lost response is waited for

# (fault, weight): what a faulty request meets. "lost" is the emulator's reset_after noticed only at
# the read timeout (a response delayed past it); "burst" is a run of 429s for every request.
FAULTS = (
    ("reset_before", 3),
    ("reset_after", 3),
    ("lost", 2),
    ("error_500", 1),
    ("error_502", 1),
    ("error_503", 1),
    ("burst", 1),
)


@dataclass
class FaultDraw:
    """Which requests meet which fault: `rate` of them, while `active`; counted by kind."""

    rng: random.Random
    rate: float
    active: bool = True
    fired: Counter[str] = field(default_factory=Counter)

    def draw(self) -> str | None:
        if not self.active or self.rng.random() >= self.rate:
            return None
        kinds = [kind for kind, _ in FAULTS]
        kind: str = self.rng.choices(kinds, [weight for _, weight in FAULTS])[0]
        self.fired[kind] += 1
        return kind


class EmulatorTransport(stripe.HTTPClient):
    name = "readerhost-simulation"

    def __init__(self, emulator: StripeEmulator, faults: FaultDraw, note: Callable[[str], None]) -> None:
        """`note` writes each exchange into the run's trace."""
        super().__init__()
        self._emulator = emulator
        self._faults = faults
        self._note = note
        self.requests = 0
        self._lost_pending = 0.0

    def take_lost_delay(self) -> float:
        """The read timeout the last call waited out (a response lost after applying), once."""
        delay, self._lost_pending = self._lost_pending, 0.0
        return delay

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: list[str] | None = None,
    ) -> tuple[str, int, Mapping[str, str]]:
        parts = urllib.parse.urlsplit(url)
        body = post_data.decode() if isinstance(post_data, bytes) else post_data or ""
        request = ApiRequest(
            method.upper(), parts.path, parts.query, body, {k.lower(): v for k, v in (headers or {}).items()}
        )
        fault = self._faults.draw()
        if fault is not None:
            self._arm(fault, request)
        response = self._emulator.handle(request)
        answer = "" if response.reset_connection else json.dumps(response.body, sort_keys=True)
        status = 0 if response.reset_connection else response.status
        self.requests += 1
        sent = urllib.parse.unquote(body or parts.query)
        key = request.headers.get("idempotency-key", "-")
        self._note(f"{request.method} {request.path} {sent} key {key} [{fault}] -> {status} {_gist(response.body)}")
        if response.reset_connection:
            if fault == "lost":
                self._lost_pending += READ_TIMEOUT_S
            raise stripe.APIConnectionError(  # type: ignore[no-untyped-call]  # stripe-python leaves it untyped
                "the simulated connection was reset", should_retry=True
            )
        return answer, response.status, CaseInsensitiveDict(response.headers)

    def _arm(self, fault: str, request: ApiRequest) -> None:
        only_this = {"method": request.method, "path": "^" + re.escape(request.path) + "$", "times": 1}
        if fault == "burst":
            self._emulator.add_fault({"action": "rate_limit", "times": self._faults.rng.randint(1, 6)})
        elif fault.startswith("error_"):
            self._emulator.add_fault({**only_this, "action": "error", "status": int(fault.removeprefix("error_"))})
        else:
            self._emulator.add_fault({**only_this, "action": "reset_after" if fault == "lost" else fault})

    def request_stream(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: list[str] | None = None,
    ) -> tuple[Any, int, Mapping[str, str]]:
        raise NotImplementedError("the daemon streams nothing from Stripe")

    def close(self) -> None:
        pass

    def _sleep_time_seconds(self, num_retries: int) -> float:
        # stripe-python sleeps between its own retries with time.sleep: in virtual time that wait is
        # not simulated (the retry follows at once; the worker's own backoff is simulated).
        return 0.0


_GIST = ("id", "object", "status", "amount", "amount_capturable", "amount_received", "payment_intent")


def _gist(body: dict[str, Any]) -> str:
    """What the trace keeps of an answer: its object's identity, state and amounts (a receipt's
    cryptogram and the like are random, and nothing the daemon does may depend on them)."""
    error = body.get("error")
    if isinstance(error, dict):
        return f"error {error.get('type')} {error.get('code')}"
    if body.get("object") == "list" or body.get("object") == "search_result":
        return "list [" + ", ".join(_gist(item) for item in body.get("data", []) if isinstance(item, dict)) + "]"
    return " ".join(f"{name}={body[name]}" for name in _GIST if name in body)
