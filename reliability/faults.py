"""Random Stripe faults, drawn from a seeded generator and armed on the emulator while a run goes on.

Every Stripe endpoint the daemon uses can be hit: create, confirm, capture, cancel (POST), and
retrieve and list (GET, which the daemon uses to learn the truth and to probe). The kinds are the
emulator's fault actions, with the variants that matter: delays longer than the daemon's read
timeout, 5xx with and without `Stripe-Should-Retry`, bursts of 429s, and Stripe down for seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from readerhost.sim.stripe_emulator import StripeEmulator

ENDPOINTS: tuple[tuple[str, str], ...] = (
    ("POST", r"^/v1/payment_intents$"),  # create
    ("POST", r"/confirm$"),
    ("POST", r"/capture$"),
    ("POST", r"/cancel$"),
    ("GET", r"^/v1/payment_intents/pi_"),  # retrieve (learning the truth)
    ("GET", r"^/v1/payment_intents$"),  # list (learning the truth of a create; the health probe)
    ("POST", r"^/v1/refunds$"),  # refund
    ("GET", r"^/v1/refunds"),  # list (learning the truth of a refund)
)


def kind_of(spec: dict[str, Any]) -> str:
    """The name a fault is counted under in the figures."""
    action = str(spec["action"])
    if action == "error":
        retry = spec.get("should_retry")
        suffix = "" if retry is None else (" retry" if retry else " no-retry")
        return f"error {spec['status']}{suffix}"
    if action == "rate_limit":
        return "429 burst"
    return action.replace("_", " ")


def draw(rng: random.Random, read_timeout_s: float) -> tuple[dict[str, Any], float]:
    """One fault rule, and how long to keep it armed (0: until it has fired `times`)."""
    method, path = rng.choice(ENDPOINTS)
    spec: dict[str, Any] = {"method": method, "path": path, "times": rng.choice((1, 1, 2, 3))}
    roll = rng.random()
    hold = 0.0
    if roll < 0.15:
        spec["action"] = "reset_before"
    elif roll < 0.35:
        spec["action"] = "reset_after"
    elif roll < 0.50:
        spec["action"] = rng.choice(("delay_before", "delay_during", "delay_after"))
        spec["seconds"] = round(read_timeout_s * rng.uniform(1.2, 2.5), 2)  # past the client's timeout
    elif roll < 0.72:
        spec["action"] = "error"
        spec["status"] = rng.choice((500, 502, 503))
        choice = rng.choice((None, True, False))
        if choice is not None:
            spec["should_retry"] = choice
    elif roll < 0.92:
        spec["action"] = "rate_limit"
        spec["times"] = rng.randint(3, 12)
    else:
        spec = {"action": "down", "path": r"^/v1/"}  # every endpoint: Stripe unreachable for a while
        hold = rng.uniform(1.0, 4.0)
    return spec, hold


@dataclass
class FaultInjector:
    """Arms random faults every so often until stopped; counts those that fired, by kind."""

    emulator: StripeEmulator
    rng: random.Random
    read_timeout_s: float
    mean_gap_s: float = 0.6
    max_armed_s: float = 8.0
    rules: list[tuple[str, Any]] = field(default_factory=list)  # (kind, the armed FaultRule)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        armed_at: list[tuple[float, str]] = []
        while not self._stopping.is_set():
            # A rule on an endpoint seldom used would wait for its request for long: retire it, so
            # that faults do not pile up on (say) cancels and the mix stays as drawn.
            while armed_at and loop.time() - armed_at[0][0] > self.max_armed_s:
                self.emulator.faults.remove(armed_at.pop(0)[1])
            spec, hold = draw(self.rng, self.read_timeout_s)
            rule = self.emulator.add_fault(spec)
            armed_at.append((loop.time(), rule.id))
            self.rules.append((kind_of(spec), rule))
            if hold:
                # "Stripe down for a while": the outage lasts `hold` seconds of the run's time.
                await self._pause(hold)
                self.emulator.faults.remove(rule.id)
            await self._pause(self.rng.expovariate(1.0 / self.mean_gap_s))

    async def _pause(self, seconds: float) -> None:
        # The schedule of the chaos, not a synchronisation: a stop request cuts it short.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def stop(self) -> None:
        self._stopping.set()
        self.emulator.faults.clear()

    def fired(self) -> Counter[str]:
        """How many requests each kind of fault hit (a `down` counts every request it reset)."""
        counts: Counter[str] = Counter()
        for kind, rule in self.rules:
            if rule.fired:
                counts[kind] += rule.fired
        return counts
