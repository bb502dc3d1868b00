"""What the money core keeps in memory per payment is released once the payment is done: a kiosk
runs for months, and a structure that grows with every payment grows the daemon without bound
(issue 21: the worker kept every idempotency key it ever sent)."""

from __future__ import annotations

from pathlib import Path

from conftest import EmulatorHandle
from support.payments_core import run, running_core

from readerhost.daemon.payments.model import State


def test_the_worker_forgets_each_key_once_its_operation_is_settled(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with running_core(stripe_emulator, tmp_path / "store.db") as core:
            for number in range(12):
                payment = await core.authorise(f"K-{number}")
                await core.service.capture(payment.payment_id)
                await core.until_state(payment.payment_id, State.CAPTURED)
            await core.until_queue_empty()
            # 36 operations were sent (create, confirm, capture of each); none is still in flight.
            assert len(core.journal("payment_intent.capture")) == 12
            assert core.worker._first_sent == {}  # the structure that grew is the one asserted on

    run(scenario())
