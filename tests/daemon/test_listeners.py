"""A listener of the payment core cannot fail a payment (docs/payments.md, "The promise").

The kiosk's screen is one of the payment core's listeners. Here its I²C bus breaks with an error
that is not a panel I/O error (so the display driver lets it through, as it does for bugs): the UI
listener raises on every event. Payments must still complete for the POS, the other listeners
(the POS's events) must still hear everything, and the journal must say so once.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from support.daemon import LineClient, of_type, running_daemon
from support.oled import RecordingBus

from readerhost.daemon.journal import MessageId

KIOSK = """
[display]
kind = "ssd1306"

[reader.simulated]
present_after_s = -1
"""


class BreakingBus(RecordingBus):
    """A bus that works until told to break, then raises a bug-like error on every write."""

    broken = False

    def write_i2c_block_data(self, addr: int, ctrl: int, data: list[int]) -> None:
        if self.broken:
            raise RuntimeError("a bug below the UI")
        super().write_i2c_block_data(addr, ctrl, data)


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 60))


def test_a_listener_that_raises_on_every_event_does_not_stop_payments(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bus = BreakingBus()

    async def scenario() -> None:
        async with running_daemon(tmp_path, KIOSK, display_bus=bus) as daemon:
            pos = await LineClient.connect(daemon.socket_path)
            await pos.receive()  # the banner
            await pos.call("events.subscribe", {"topics": ["payment", "reader", "queue"]})
            bus.broken = True
            for number in range(1, 4):
                order = f"L-{number}"
                started = await pos.call("payment.start", {"order_id": order, "amount": 1250, "currency": "usd"})
                assert "result" in started, started  # the POS gets its answer, not an internal error
                payment_id = started["result"]["payment_id"]
                await pos.event(lambda e: e["type"] == "reader.input_options")
                assert (await pos.call("reader.present", {"card": "visa"}))["result"] == {}
                await pos.event(of_type("payment.state", payment_id=payment_id, state="authorized"))
                captured = await pos.call("payment.capture", {"payment_id": payment_id})
                assert captured["result"]["state"] == "capturing"
                await pos.event(of_type("payment.state", payment_id=payment_id, state="captured"))
                # The queue's events are published after the state's: they still reach the POS.
                await pos.event(of_type("queue.changed", pending=0))
            status = (await pos.call("status.get"))["result"]
            assert status["reader"]["state"] == "ready"
            assert status["queue"]["pending"] == 0
            await pos.close()

    with caplog.at_level(logging.ERROR):
        run(scenario())
    failures = [r for r in caplog.records if getattr(r, "journal", {}).get("MESSAGE_ID") == MessageId.LISTENER_FAILED]
    assert len(failures) == 1, [r.getMessage() for r in failures]  # once per listener and kind of error
    record = failures[0]
    assert "UiController.on_event" in record.getMessage()
    assert "RuntimeError" in record.getMessage()
    assert record.exc_info is not None  # with its traceback, for the bug report
    # The panel still fails when the daemon stops: that step is logged, and the others ran.
    stopping = [r for r in caplog.records if r.getMessage().startswith("stopping the screen and buttons failed")]
    assert len(stopping) == 1
