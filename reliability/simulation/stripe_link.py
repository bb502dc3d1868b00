"""Stripe for the simulation: the emulator's core behind the real stripe-python, with no network.

`EmulatorTransport` is a `stripe.HTTPClient`: stripe-python builds, signs, encodes and retries each
request as it always does, and the transport hands it to `StripeEmulator.handle` instead of a socket.
Before each request the seed may arm one of the emulator's own fault rules for it, so a fault means
exactly what it means in the emulator's HTTP server.

A request held in flight (the emulator's `delay_during`: its key claimed, its execution still to
come) is served on a thread of its own that runs only while the loop's thread waits for it, and is
released by a timer of the loop: the hand-over is strict, so no ordering is left to chance. Until
then a request under its key meets Stripe's 409 `idempotency_key_in_use`.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import threading
import urllib.parse
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import stripe
from requests.structures import CaseInsensitiveDict

from sim.stripe_emulator.emulator import ApiRequest, ApiResponse, StripeEmulator

READ_TIMEOUT_S = 20.0  # the daemon's default read timeout: how long a lost response is waited for

# (fault, weight): what a faulty request meets. "lost" is the emulator's reset_after noticed only at
# the read timeout (a response delayed past it); "in_flight" is a keyed request Stripe is still
# executing when the read timeout passes (delay_during); "burst" is a run of 429s for every request.
FAULTS = (
    ("reset_before", 3),
    ("reset_after", 3),
    ("lost", 2),
    ("in_flight", 3),
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

    def draw(self, *, can_hold: bool) -> str | None:
        """`can_hold`: the request has a key to hold in flight, and no other rule is armed (one would
        be taken instead of this one's, and this one's left for a later request)."""
        if not self.active or self.rng.random() >= self.rate:
            return None
        faults = [(kind, weight) for kind, weight in FAULTS if can_hold or kind != "in_flight"]
        kind: str = self.rng.choices([kind for kind, _ in faults], [weight for _, weight in faults])[0]
        self.fired[kind] += 1
        return kind


# How long Stripe goes on executing a request held in flight: always past the read timeout, so its
# client gives up first, and its retries (stripe-python's at once, the worker's after its backoff)
# can meet the 409.
IN_FLIGHT_HOLDS_S = (25.0, 40.0, 90.0)


class HeldRequest(threading.Thread):
    """A request the emulator serves on this thread; it runs only while the loop's thread waits."""

    def __init__(self, emulator: StripeEmulator, request: ApiRequest) -> None:
        super().__init__(name="readerhost-sim-held-request", daemon=True)
        self._emulator = emulator
        self._request = request
        self._turn = threading.Event()  # the loop's turn again: the request paused or was answered
        self._resume = threading.Event()
        self.paused = False
        self.response: ApiResponse | None = None

    def run(self) -> None:
        try:
            self.response = self._emulator.handle(self._request)
        finally:
            self._turn.set()

    def pause(self) -> None:
        """On this thread, where the emulator's delay_during waits: hand the turn back until released."""
        self.paused = True
        self._turn.set()
        self._resume.wait()

    def serve(self) -> ApiResponse | None:
        """The answer, or None: the request is held in flight (its key claimed, nothing applied yet)."""
        self.start()
        self._turn.wait()
        if self.paused:
            return None
        self.join()
        return self.response

    def release(self) -> ApiResponse:
        """Stripe executes it now; its answer goes to nobody (its client gave up at the read timeout)."""
        self._resume.set()
        self.join()
        assert self.response is not None
        return self.response


def hold_in_flight(_seconds: float) -> None:
    """The emulator's delay fault in the simulation: the held request's thread waits to be released."""
    thread = threading.current_thread()
    if not isinstance(thread, HeldRequest):
        raise AssertionError("a delay fault met outside a held request: the simulation armed it for another")
    thread.pause()


class EmulatorTransport(stripe.HTTPClient):
    name = "readerhost-simulation"

    def __init__(
        self,
        emulator: StripeEmulator,
        faults: FaultDraw,
        note: Callable[[str], None],
        schedule: Callable[[float, Callable[[], None]], asyncio.TimerHandle],
    ) -> None:
        """`note` writes each exchange into the run's trace; `schedule` sets a timer on the loop (a
        held request's release: Stripe's, so a crash of the core must spare it)."""
        super().__init__()
        self._emulator = emulator
        self._faults = faults
        self._note = note
        self._schedule = schedule
        self.requests = 0
        self.held: dict[HeldRequest, asyncio.TimerHandle] = {}  # requests Stripe is still executing
        self.holds = 0  # requests held in flight, in all
        self.in_use = 0  # 409 idempotency_key_in_use answers met
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
        keyed = request.method == "POST" and "idempotency-key" in request.headers
        fault = self._faults.draw(can_hold=keyed and not self._emulator.faults.armed())
        hold_s = self._faults.rng.choice(IN_FLIGHT_HOLDS_S) if fault == "in_flight" else 0.0
        if fault is not None:
            self._arm(fault, request, hold_s)
        self.requests += 1
        sent = urllib.parse.unquote(body or parts.query)
        key = request.headers.get("idempotency-key", "-")
        exchange = f"{request.method} {request.path} {sent} key {key} [{fault}]"
        if fault == "in_flight":
            held = HeldRequest(self._emulator, request)
            served = held.serve()
            if served is None:
                self._hold(held, hold_s, exchange)
                self._lost_pending += READ_TIMEOUT_S
                raise stripe.APIConnectionError(  # type: ignore[no-untyped-call]  # stripe-python leaves it untyped
                    "the simulated request timed out", should_retry=True
                )
            response = served  # replayed, refused or 409: nothing to hold
        else:
            response = self._emulator.handle(request)
        answer = "" if response.reset_connection else json.dumps(response.body, sort_keys=True)
        status = 0 if response.reset_connection else response.status
        if status == 409:
            self.in_use += 1
        self._note(f"{exchange} -> {status} {_gist(response.body)}")
        if response.reset_connection:
            if fault == "lost":
                self._lost_pending += READ_TIMEOUT_S
            raise stripe.APIConnectionError(  # type: ignore[no-untyped-call]  # stripe-python leaves it untyped
                "the simulated connection was reset", should_retry=True
            )
        return answer, response.status, CaseInsensitiveDict(response.headers)

    def _hold(self, held: HeldRequest, seconds: float, exchange: str) -> None:
        self.holds += 1
        self._note(f"{exchange} -> held in flight for {seconds:.0f} s")

        def release() -> None:
            del self.held[held]
            response = held.release()
            self._note(f"{exchange} -> applied after its hold: {response.status} {_gist(response.body)}")

        self.held[held] = self._schedule(seconds, release)

    def release_all(self) -> None:
        """The run ends with requests still held (a bound was reached): Stripe executes them now."""
        for held, timer in list(self.held.items()):
            timer.cancel()
            del self.held[held]
            held.release()

    def _arm(self, fault: str, request: ApiRequest, hold_s: float) -> None:
        only_this = {"method": request.method, "path": "^" + re.escape(request.path) + "$", "times": 1}
        if fault == "in_flight":
            self._emulator.add_fault({**only_this, "action": "delay_during", "seconds": hold_s})
        elif fault == "burst":
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
