"""The one pace of the daemon's own requests to Stripe: whoever asks, turns come 1/rate apart."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from readerhost.daemon.payments.pacing import Allowance, Pacer


def test_callers_sharing_a_pacer_take_turns_at_its_rate() -> None:
    async def scenario() -> list[float]:
        pacer = Pacer(20.0)  # one turn every 0.05 s
        turns: list[float] = []

        async def caller(times: int) -> None:
            for _ in range(times):
                await pacer.turn()
                turns.append(time.monotonic())

        await asyncio.gather(caller(3), caller(3))  # a worker and a health check, say
        return turns

    turns = asyncio.run(asyncio.wait_for(scenario(), 10))
    assert len(turns) == 6
    gaps = [later - earlier for earlier, later in itertools.pairwise(turns)]
    assert all(gap >= 0.05 - 0.005 for gap in gaps), gaps  # never two turns closer than 1/rate


def test_a_turn_after_a_quiet_spell_is_not_delayed_and_a_second_one_is() -> None:
    now = [100.0]  # the pacer's clock, moved by the test
    pacer = Pacer(1.0, clock=lambda: now[0])

    async def timed_turn() -> float:
        started = time.monotonic()
        await pacer.turn()
        return time.monotonic() - started

    async def scenario() -> tuple[float, float, float]:
        first = await timed_turn()
        now[0] += 5.0  # a quiet spell, longer than a turn
        second = await timed_turn()
        now[0] += 0.8  # 0.2 s before the next turn is due
        third = await timed_turn()
        return first, second, third

    first, second, third = asyncio.run(asyncio.wait_for(scenario(), 10))
    assert (first < 0.05, second < 0.05) == (True, True)
    assert third >= 0.2 - 0.01


@pytest.mark.parametrize("rate", [0.0, -1.0])
def test_a_rate_that_cannot_pace_is_refused(rate: float) -> None:
    with pytest.raises(ValueError, match="requests_per_second must be above 0"):
        Pacer(rate)


def test_an_allowance_gives_a_burst_then_one_per_period_and_a_refusal_takes_nothing() -> None:
    now = [1000.0]
    allowance = Allowance(3, 60.0, clock=lambda: now[0])
    assert [allowance.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert allowance.take() == pytest.approx(60.0)  # refused: the next in a minute
    now[0] += 45.0
    assert allowance.take() == pytest.approx(15.0)  # the refusal above took nothing from the refill
    now[0] += 15.0
    assert allowance.take() == 0.0
    assert allowance.take() == pytest.approx(60.0)
    now[0] += 3600.0  # a long quiet spell refills the burst, no more
    assert [allowance.take() for _ in range(4)] == [0.0, 0.0, 0.0, pytest.approx(60.0)]


@pytest.mark.parametrize(("burst", "every_s"), [(0, 60.0), (3, 0.0)])
def test_an_allowance_that_allows_nothing_is_refused(burst: int, every_s: float) -> None:
    with pytest.raises(ValueError, match="an allowance needs"):
        Allowance(burst, every_s)
