"""The deterministic simulation of the money core (reliability/simulation): a CI slice of seeds
with no violation, the same seed played twice giving the same trace, and a deliberate mistake in
the daemon caught by the invariant checker and replayed exactly from its seed."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from typing import Any

import pytest

from readerhost.daemon.payments import gateway
from readerhost.daemon.payments.gateway import StripeGateway
from readerhost.daemon.payments.increments import Increments
from readerhost.daemon.payments.outcomes import Declined, Outcome, Refused, Succeeded
from readerhost.daemon.payments.store import Operation
from reliability.__main__ import main as reliability_main
from reliability.simulation.run import SeedResult, run_seeds, simulate
from reliability.simulation.scheduler import Stalled, VirtualLoop, VirtualTime
from reliability.simulation.world import World

CI_SEEDS = 200


def test_a_slice_of_seeds_keeps_every_invariant() -> None:
    result = run_seeds(0, CI_SEEDS)
    failures = [f"seed {o.seed}: {[str(v) for v in o.violations]} {o.problems[:3]}" for o in result.failed]
    assert not failures, "\n".join(failures)
    # The slice exercises what it is for: faults of every kind, crashes, and payments through them.
    assert result.crashes > 0
    assert result.payments > CI_SEEDS
    assert {"reset_before", "reset_after", "lost", "in_flight", "error_500", "burst"} <= set(result.faults)
    # ... and the steps each addition to the simulation is for (docs/reliability.md): a key in flight
    # met by a retry, orders paid again, increments raised and declined.
    met = result.exercised
    for figure in ("requests held in flight", "409s met", "attempts after an order's first"):
        assert met[figure] > 0, met
    for figure in ("increments succeeded", "increments declined"):
        assert met[figure] > 0, met


def test_one_seed_replays_the_same_trace_and_another_seed_does_not() -> None:
    first, again, other = simulate(11), simulate(11), simulate(12)
    assert len(first.trace) > 5
    assert first.requests > 0
    assert (first.trace_hash, len(first.trace), first.requests) == (again.trace_hash, len(again.trace), again.requests)
    assert other.trace_hash != first.trace_hash


class FreshKeys:
    """The mistake: every create sent under a new key (a retry that does not learn the truth first).
    The keys are numbered from 0 in each run, so that a run of the mistaken daemon replays too."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        create = StripeGateway.create_intent
        self.counter = itertools.count()

        def fresh_key(gateway: StripeGateway, **params: Any) -> Outcome:
            params["idempotency_key"] = f"{params['idempotency_key']}:{next(self.counter)}"
            return create(gateway, **params)

        monkeypatch.setattr(StripeGateway, "create_intent", fresh_key)

    def simulate(self, seed: int) -> SeedResult:
        self.counter = itertools.count()
        return simulate(seed)


@pytest.fixture
def fresh_keys(monkeypatch: pytest.MonkeyPatch) -> FreshKeys:
    return FreshKeys(monkeypatch)


def test_a_known_mistake_is_caught_and_its_seed_replays(fresh_keys: FreshKeys, monkeypatch: pytest.MonkeyPatch) -> None:
    seed = next((seed for seed in range(300) if fresh_keys.simulate(seed).violations), None)
    assert seed is not None, "the mistake went unnoticed in 300 seeds"
    caught = fresh_keys.simulate(seed)
    assert "one_intent_per_attempt" in {v.rule for v in caught.violations}
    replayed = fresh_keys.simulate(seed)
    # The same run (the ids are random, their places in the trace are not): the same violations.
    assert replayed.trace_hash == caught.trace_hash
    assert [v.rule for v in replayed.violations] == [v.rule for v in caught.violations]
    monkeypatch.undo()  # the daemon as it is: the same seed is clean
    assert simulate(seed).clean


def first_failing(seeds: range) -> SeedResult:
    outcome = next((o for o in map(simulate, seeds) if o.violations), None)
    assert outcome is not None, f"the mistake went unnoticed in seeds {seeds.start}-{seeds.stop - 1}"
    return outcome


def test_a_daemon_that_takes_a_key_in_flight_for_a_refusal_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The mistake: Stripe's 409 `idempotency_key_in_use` read as a refusal (the request ended) instead
    of a request still executing under the key. The simulation holds requests in flight past the read
    timeout, so a retry meets the 409, and the first request is applied after the daemon gave up."""
    believed = gateway._outcome_of_error

    def in_use_refused(error: Any) -> Outcome:
        if error.http_status == 409:
            return Refused("idempotency key in use", code="idempotency_key_in_use")
        return believed(error)

    monkeypatch.setattr(gateway, "_outcome_of_error", in_use_refused)
    caught = first_failing(range(60))
    assert any("held in flight" in line for line in caught.trace)
    assert caught.exercised["409s met"] > 0
    assert {"settled", "capture_once", "refund_settled"} & {v.rule for v in caught.violations}, caught.violations
    monkeypatch.undo()  # the daemon as it is: the same seed is clean
    assert simulate(caught.seed).clean


def test_a_daemon_that_takes_a_declined_increment_for_a_raised_hold_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The mistake: an increment the issuer declined recorded as raised (the hold Stripe sent back
    with the decline read as the new one). The simulation's issuer declines some increments."""
    settle = Increments.settle

    def declined_raised(increments: Increments, op: Operation, outcome: Outcome) -> None:
        if isinstance(outcome, Declined) and outcome.intent is not None:
            outcome = Succeeded(dataclasses.replace(outcome.intent, amount=int(op.params["amount"])))
        settle(increments, op, outcome)

    monkeypatch.setattr(Increments, "settle", declined_raised)
    caught = first_failing(range(150))
    assert "increment_settled" in {v.rule for v in caught.violations}, caught.violations
    monkeypatch.undo()
    assert simulate(caught.seed).clean


def test_a_state_told_but_never_committed_is_caught() -> None:
    def tell_unstored(world: World) -> None:
        world.record.told.add(("pay_never_stored", "captured"))

    outcome = simulate(3, before_check=tell_unstored)
    assert [v.rule for v in outcome.violations] == ["told_in_store"]


def test_the_loop_jumps_over_waits_in_virtual_time() -> None:
    clock = VirtualTime()
    loop = VirtualLoop(clock)

    async def a_day_of_backoff() -> float:
        await asyncio.sleep(86_400)
        return loop.time()

    started = time.monotonic()
    try:
        assert loop.run_until_complete(a_day_of_backoff()) == pytest.approx(86_400)
    finally:
        loop.close()
    assert time.monotonic() - started < 5


def test_a_world_waiting_for_nothing_is_reported_stalled() -> None:
    loop = VirtualLoop(VirtualTime())

    async def forever() -> None:
        await asyncio.Event().wait()  # nothing will ever set it, and no timer runs

    try:
        with pytest.raises(Stalled):
            loop.run_until_complete(forever())
    finally:
        loop.close()


def test_the_command_line_runs_seeds_and_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert reliability_main(["--only", "sim", "--seed", "5", "--seeds", "3", "--no-write"]) == 0
    out = capsys.readouterr().out
    assert "| seeds (each a fresh world: orders, faults, crashes, clock jumps) | 3 (from 5) |" in out
    assert "| seeds that failed (invariant violations, stalls, unexpected exceptions) | 0 |" in out


def test_a_range_shared_among_processes_gives_the_figures_of_one_process() -> None:
    seeds = 60  # more than one chunk, so the two workers each play some
    alone, shared = run_seeds(40, seeds), run_seeds(40, seeds, jobs=2)
    figures = [
        (r.payments, r.requests, r.crashes, r.faults, round(r.virtual_s, 6), r.longest_s) for r in (alone, shared)
    ]
    assert figures[0] == figures[1]
    assert alone.payments > seeds
    assert (shared.seeds, shared.failed) == (seeds, [])
