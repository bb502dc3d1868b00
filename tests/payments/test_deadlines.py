"""Capture deadlines in view: `capture_before` in the payment object and in payment.list's filter,
the nearest one in status.get, and `payment.deadline` events (with their journal entries) at the
configured lead times before it.

The lead times are reached with the emulator's clock: Stripe's clock and the watch's clock are
moved on together (as days passing would), to a moment a lead time (plus a second) before the
authorisation's deadline, so that each lead comes within a second, without waiting a day.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from conftest import EmulatorHandle
from support.daemon import LineClient, of_type, running_daemon, subscribed_when_connected
from support.payments_core import Clocks, Core, running_core

from readerhost.daemon.journal import MessageId
from readerhost.daemon.payments.deadlines import DeadlineWatch
from readerhost.daemon.payments.events import Event
from readerhost.daemon.payments.model import Payment, State, rfc3339

CONFIG = """
[reader.simulated]
present_after_s = -1
"""


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 60))


async def authorised(pos: LineClient, order_id: str) -> dict[str, Any]:
    started = await pos.call("payment.start", {"order_id": order_id, "amount": 1500, "currency": "usd"})
    payment_id = started["result"]["payment_id"]
    await pos.event(of_type("reader.input_options", payment_id=payment_id))
    await pos.call("reader.present", {"card": "visa"})
    event = await pos.event(of_type("payment.state", payment_id=payment_id, state="authorized"))
    payment: dict[str, Any] = event["params"]["data"]
    return payment


def test_capture_before_is_in_the_payment_the_list_filter_and_the_status(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_daemon(tmp_path, CONFIG) as daemon:
            pos = await subscribed_when_connected(daemon.socket_path)
            payment = await authorised(pos, "D-1")
            stored = daemon.parts.store.payment(payment["payment_id"])
            assert stored is not None
            assert stored.capture_before is not None
            due = stored.capture_before
            assert due > time.time() + 86_400  # Stripe's window for a card_present authorisation
            assert payment["capture_before"] == rfc3339(due)  # RFC 3339, from Stripe's charge

            async def listed(before: float) -> list[str]:
                found = await pos.call("payment.list", {"capture_before_lt": rfc3339(before)})
                return [p["payment_id"] for p in found["result"]["payments"]]

            assert await listed(due + 1) == [payment["payment_id"]]
            assert await listed(due) == []  # strictly before
            wrong = await pos.call("payment.list", {"capture_before_lt": "tomorrow"})
            assert wrong["error"]["data"]["field"] == "capture_before_lt"

            status = (await pos.call("status.get"))["result"]
            assert status["deadline"] == {
                "payment_id": payment["payment_id"],
                "order_id": "D-1",
                "capture_before": payment["capture_before"],
            }
            assert daemon.parts.status.technician_info()["deadline"].payment_id == payment["payment_id"]
            await pos.call("payment.capture", {"payment_id": payment["payment_id"]})
            await pos.event(of_type("payment.state", payment_id=payment["payment_id"], state="captured"))
            assert (await pos.call("status.get"))["result"]["deadline"] is None  # none waits for a capture
            assert daemon.parts.status.technician_info()["deadline"] is None
            await pos.close()

    run(scenario())


@contextlib.asynccontextmanager
async def watching(core: Core, clocks: Clocks) -> AsyncIterator[DeadlineWatch]:
    # It looks again every 0.2 s here: a jump of the clock is seen as a Pi's wall clock jump would be.
    watch = DeadlineWatch(core.store, core.events, (86_400.0, 7_200.0), clock=clocks.now, recheck_s=0.2)
    task = asyncio.create_task(watch.run())
    try:
        yield watch
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def deadlines_told(core: Core) -> list[Event]:
    return [e for e in core.seen if e.type == "payment.deadline"]


def due_of(payment: Payment) -> int:
    assert payment.capture_before is not None
    return payment.capture_before


def test_deadline_events_and_journal_entries_arrive_at_their_lead_times(
    stripe_emulator: EmulatorHandle, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="readerhost.daemon.payments.deadlines")
    clocks = Clocks(stripe_emulator)

    async def scenario() -> None:
        async with (
            running_core(stripe_emulator, tmp_path / "store.db", clock=clocks.now) as core,
            watching(core, clocks) as watch,
        ):
            payment = await core.authorise("L-1")
            due = due_of(payment)
            assert deadlines_told(core) == []  # days ahead: nothing to say yet
            # Time passes until 24 h and 1.5 s before the deadline: the 24 h lead comes 1.5 s later.
            clocks.advance(due - 86_400 - 1.5 - clocks.now())
            await core.until(lambda: len(deadlines_told(core)) == 1, what="the 24 h lead")
            [day] = deadlines_told(core)
            assert 86_400 - 3.0 < day.data["remaining_s"] <= 86_400  # told at its lead time, not before
            clocks.advance(due - 7_200 - 1.0 - clocks.now())
            await core.until(lambda: len(deadlines_told(core)) == 2, what="the 2 h lead")
            day, two_hours = deadlines_told(core)
            assert (day.topic, day.data["lead_s"], two_hours.data["lead_s"]) == ("payment", 86_400, 7_200)
            assert two_hours.data | {"remaining_s": 0} == {
                "payment_id": payment.payment_id,
                "order_id": "L-1",
                "state": "authorized",
                "payment_intent": payment.payment_intent,
                "capture_before": rfc3339(due),
                "lead_s": 7_200,
                "remaining_s": 0,
            }
            assert 7_200 - 3.0 < two_hours.data["remaining_s"] <= 7_200
            clocks.advance(3_600)  # an hour on: nothing more is said (each lead once)
            watch.announce_due()
            assert len(deadlines_told(core)) == 2

    asyncio.run(scenario())
    entries = [
        r for r in caplog.records if getattr(r, "journal", {}).get("MESSAGE_ID") == MessageId.CAPTURE_DEADLINE_NEAR
    ]
    assert [e.journal["LEAD_S"] for e in entries] == [86_400, 7_200]  # type: ignore[attr-defined]
    fields = entries[-1].journal  # type: ignore[attr-defined]
    assert fields["ORDER_ID"] == "L-1"
    assert fields["CAPTURE_BEFORE"].endswith("Z")  # RFC 3339 for a person; the raw value beside it
    assert rfc3339(fields["CAPTURE_BEFORE_UNIX"]) == fields["CAPTURE_BEFORE"]
    assert fields["CAPTURE_BEFORE"] in entries[-1].getMessage()


def test_a_restart_past_both_leads_tells_the_nearest_once_and_a_captured_payment_is_not_told(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    clocks = Clocks(stripe_emulator)

    async def scenario() -> None:
        db = tmp_path / "store.db"
        async with running_core(stripe_emulator, db, clock=clocks.now) as core:
            left = await core.authorise("R-1")
            taken = await core.authorise("R-2")
            await core.service.capture(taken.payment_id)
            await core.until_state(taken.payment_id, State.CAPTURED)
        # The daemon was down while both leads came and went.
        clocks.advance(due_of(left) - 3_600 - clocks.now())
        async with running_core(stripe_emulator, db, clock=clocks.now) as core, watching(core, clocks) as watch:
            await core.until(lambda: len(deadlines_told(core)) == 1, what="the nearest lead")
            [told] = deadlines_told(core)
            assert (told.data["payment_id"], told.data["lead_s"]) == (left.payment_id, 7_200)
            watch.announce_due()
            assert len(deadlines_told(core)) == 1

    asyncio.run(scenario())
