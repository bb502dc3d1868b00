"""A burst of 429s answered to several requests in flight together pauses the queue once, not once
per answer (found by the fault soak: a 12-request burst stalled every payment for a minute)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from conftest import EmulatorHandle
from support.payments_core import FAST_WORKER, run, running_core

from readerhost.daemon.payments.model import State


def test_one_burst_of_429s_pauses_the_queue_once(stripe_emulator: EmulatorHandle, tmp_path: Path) -> None:
    settings = dataclasses.replace(FAST_WORKER, rate_limit_pause_s=2.0, backoff_cap_s=60.0, concurrency=4)

    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db", worker_settings=settings) as core:
            payments = [await core.authorise(f"B-{n}") for n in range(4)]
            rule = stripe_emulator.emulator.add_fault(
                {"method": "POST", "path": "/capture$", "action": "rate_limit", "times": 4}
            )
            for payment in payments:
                await core.service.capture(payment.payment_id)
            await core.until(lambda: rule.fired >= 4, what="the burst")
            burst_over = time.monotonic()
            for payment in payments:
                await core.until_state(payment.payment_id, State.CAPTURED, timeout=30.0)
            # One pause of 2 s (and the retries' own backoff), not 2 + 4 + 8 + 16 s.
            assert time.monotonic() - burst_over < 8.0
            assert len(core.journal("payment_intent.capture")) == 4

    run(scenario())
