"""The host side of the reader link (LinkReader) against the device emulator, joined in memory:
collections, prompts, cancels that always complete, lost links and reconnection."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest
from support.link_pipe import PipeTransport
from support.reader_notices import Notices, Prompts

from readerhost.drivers.reader.base import ReaderError
from readerhost.drivers.reader.link.reader import LinkReader, LinkSettings
from readerhost.drivers.reader.link.session import LinkTimings
from readerhost.sim.reader_device.device import DeviceIdentity, DeviceScript, ReaderDevice
from readerhost.sim.reader_device.script import LinkTimings as DeviceTimings

WAIT_S = 10.0
FAST = LinkSettings(
    card_wait_s=30,
    cancel_confirm_s=0.5,
    hello_timeout_s=1.0,
    backoff_min_s=0.01,
    backoff_max_s=0.05,
    timings=LinkTimings(ack_timeout_s=0.1, retransmissions=2, keepalive_s=0.5),
)
DEVICE_TIMINGS = DeviceTimings(ack_timeout_s=0.1, retransmissions=2)
WAITING = DeviceScript(card=None)  # the card comes when a test presents it


def in_loop(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test in a fresh event loop (the project runs asyncio tests without a plugin)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


class Rig:
    def __init__(self, device: ReaderDevice, transport: PipeTransport, reader: LinkReader, notices: Notices) -> None:
        self.device, self.transport, self.reader, self.notices = device, transport, reader, notices

    def collect(self, amount: int = 1250) -> asyncio.Task[Any]:
        return asyncio.create_task(self.reader.collect(amount, "eur", Prompts()))


@contextlib.asynccontextmanager
async def rig(
    script: DeviceScript = WAITING, identity: DeviceIdentity | None = None, settings: LinkSettings = FAST
) -> AsyncIterator[Rig]:
    device = ReaderDevice(identity or DeviceIdentity(), script, timings=DEVICE_TIMINGS)
    transport = PipeTransport(device)
    notices = Notices()
    reader = LinkReader(transport, settings, notices, "readerhostd test")
    await reader.start()
    try:
        yield Rig(device, transport, reader, notices)
    finally:
        await reader.stop()


async def connected(r: Rig, count: int = 1) -> dict[str, Any]:
    return await r.notices.wait_for("reader.connected", count)


@in_loop
async def test_the_reader_connects_and_tells_who_it_is() -> None:
    async with rig(identity=DeviceIdentity(serial="EMU-0042", battery=64)) as r:
        notice = await connected(r)
        assert notice == {"id": "EMU-0042", "model": "readerhost-emulator", "reason": "connected"}
        status = r.reader.status()
        assert status["state"] == "ready"
        assert (status["id"], status["serial"], status["firmware"], status["battery"]) == (
            "EMU-0042",
            "EMU-0042",
            "1.0.0",
            64,
        )
        assert status["link"]["connected"] is True
        assert status["link"]["transport"] == "pipe"


@in_loop
async def test_a_collection_relays_every_prompt_and_returns_the_card() -> None:
    script = DeviceScript(card="mastercard", present_after_s=0, prompts=("retry_card",), card_events=True)
    async with rig(script) as r:
        await connected(r)
        prompts = Prompts()
        method = await asyncio.wait_for(r.reader.collect(2500, "eur", prompts), WAIT_S)
        assert (method.reference, method.brand, method.last4) == ("pm_card_present_mastercard", "mastercard", "4444")
        assert method.read_method == "contact_emv"
        assert prompts.seen == [
            ("options", ["tap", "insert", "swipe"]),
            ("message", "retry_card"),
            ("card", "card_inserted"),
            ("card", "card_removed"),
        ]
        collect = next(m for m in r.device.received if m.type.name == "COLLECT")
        assert collect.body["amount"] == 2500
        assert collect.body["currency"] == "eur"
        assert collect.body["wait_s"] == 30
        assert r.reader.status()["state"] == "ready"


@in_loop
async def test_without_a_link_a_collection_fails_at_once_saying_why() -> None:
    device = ReaderDevice(timings=DEVICE_TIMINGS)
    transport = PipeTransport(device)
    transport.unplug()
    reader = LinkReader(transport, FAST, Notices(), "test")
    await reader.start()
    try:
        await asyncio.wait_for(transport.attempted.wait(), WAIT_S)
        with pytest.raises(ReaderError, match=r"not connected \(unplugged\)") as error:
            await reader.collect(100, "eur", Prompts())
        assert error.value.code == "READER_UNAVAILABLE"
        assert reader.status()["link"]["last_error"] == "unplugged"
    finally:
        await reader.stop()


@in_loop
async def test_unplugged_mid_collection_the_collection_fails_and_the_reader_comes_back_by_itself() -> None:
    async with rig() as r:
        await connected(r)
        collecting = r.collect()
        await asyncio.wait_for(r.device.wait_collecting(), WAIT_S)
        r.transport.unplug()
        with pytest.raises(ReaderError, match="link was lost") as error:
            await asyncio.wait_for(collecting, WAIT_S)
        assert error.value.code == "READER_UNAVAILABLE"
        lost = await r.notices.wait_for("reader.disconnected")
        assert lost["id"] == "EMU-0001"
        assert lost["reason"]
        assert r.reader.status()["state"] == "disconnected"
        r.transport.plug_in()
        back = await connected(r, 2)
        assert back["reason"] == "reconnected"
        again = r.collect()
        await asyncio.wait_for(r.device.wait_collecting(), WAIT_S)
        r.device.present("visa")
        assert (await asyncio.wait_for(again, WAIT_S)).reference == "pm_card_present_visa"


@in_loop
async def test_three_reconnect_cycles() -> None:
    async with rig() as r:
        await connected(r)
        for cycle in range(2, 5):
            r.transport.unplug()
            await r.notices.wait_for("reader.disconnected", cycle - 1)
            r.transport.plug_in()
            await connected(r, cycle)
        assert r.reader.status()["link"]["connections"] == 4


@in_loop
async def test_a_cancel_is_confirmed_by_the_device_and_the_next_collection_works() -> None:
    async with rig() as r:
        await connected(r)
        collecting = r.collect()
        number = await asyncio.wait_for(r.device.wait_collecting(), WAIT_S)
        collecting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(collecting, WAIT_S)
        cancel = next(m for m in r.device.received if m.type.name == "CANCEL")
        assert cancel.body == {"collection": number}
        assert r.device.collecting is None
        assert r.notices.count("reader.disconnected") == 0  # confirmed: no need to reset the link
        again = r.collect()
        await asyncio.wait_for(r.device.wait_collecting(), WAIT_S)
        r.device.present("amex")
        assert (await asyncio.wait_for(again, WAIT_S)).brand == "amex"


@in_loop
async def test_a_cancel_completes_in_bounded_time_when_the_device_stops_answering() -> None:
    async with rig() as r:
        await connected(r)
        collecting = r.collect()
        await asyncio.wait_for(r.device.wait_collecting(), WAIT_S)
        r.device.stop_answering()
        started = time.monotonic()
        collecting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(collecting, WAIT_S)
        # Bounded by cancel_confirm_s (0.5 s), with room for a loaded machine: never the device's silence.
        assert time.monotonic() - started < FAST.cancel_confirm_s + 5.0
        lost = await r.notices.wait_for("reader.disconnected")
        assert "cancel" in lost["reason"].lower() or "no acknowledgement" in lost["reason"]
        r.device.stop_answering(False)
        await connected(r, 2)  # the new HELLO reset the device
        assert r.device.collecting is None


@in_loop
async def test_a_hung_device_is_noticed_by_the_keepalive() -> None:
    async with rig() as r:
        await connected(r)
        r.device.stop_answering()
        lost = await r.notices.wait_for("reader.disconnected")
        assert "PING" in lost["reason"]


@in_loop
async def test_the_devices_own_error_ends_the_collection_with_its_code() -> None:
    async with rig(DeviceScript(card=None, error="card_read_failed", present_after_s=0)) as r:
        await connected(r)
        with pytest.raises(ReaderError) as error:
            await asyncio.wait_for(r.reader.collect(100, "eur", Prompts()), WAIT_S)
        assert error.value.code == "card_read_failed"


@in_loop
async def test_no_card_within_the_wait_ends_the_collection() -> None:
    settings = LinkSettings(**{**FAST.__dict__, "card_wait_s": 1})
    async with rig(settings=settings) as r:
        await connected(r)
        with pytest.raises(ReaderError) as error:
            await asyncio.wait_for(r.reader.collect(100, "eur", Prompts()), WAIT_S)
        assert error.value.code == "card_read_timed_out"


@in_loop
async def test_garbled_frames_are_logged_and_recovered_by_retransmission(caplog: pytest.LogCaptureFixture) -> None:
    async with rig(DeviceScript(card="visa", present_after_s=0)) as r:
        await connected(r)
        r.device.garble_next(2)
        with caplog.at_level(logging.WARNING, logger="readerhost.reader"):
            method = await asyncio.wait_for(r.reader.collect(100, "eur", Prompts()), WAIT_S)
        assert method.reference == "pm_card_present_visa"
        assert sum("dropped a damaged frame" in m for m in caplog.messages) == 2


@in_loop
async def test_a_device_speaking_another_version_is_never_used_and_the_status_says_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="readerhost.reader"):
        async with rig(identity=DeviceIdentity(versions=(2,))) as r:
            async with asyncio.timeout(WAIT_S):
                # Three connections in a row, each refused for the version.
                while r.transport.attempts < 4 or "version" not in str(r.reader.status()["link"]["last_error"]):
                    await r.transport.connected.wait()
                    r.transport.connected.clear()
            assert r.notices.count("reader.connected") == 0
            with pytest.raises(ReaderError, match="version"):
                await r.reader.collect(100, "eur", Prompts())
    # Said once, not at every attempt.
    assert sum("does not speak protocol version" in m for m in caplog.messages) == 1


@in_loop
async def test_battery_reports_reach_the_status_and_a_low_battery_the_log(caplog: pytest.LogCaptureFixture) -> None:
    async with rig(DeviceScript(card="visa", present_after_s=0)) as r:
        await connected(r)
        with caplog.at_level(logging.WARNING, logger="readerhost.reader"):
            r.device.set_battery(12)
            # The device sends one message at a time, in order: once a collection's card is in,
            # the BATTERY message before it has been delivered.
            await asyncio.wait_for(r.reader.collect(100, "eur", Prompts()), WAIT_S)
        assert (r.reader.status()["battery"], r.reader.status()["charging"]) == (12, False)
        assert any("battery low: 12%" in m for m in caplog.messages)


class BrokenPrompts(Prompts):
    def input_options(self, options: list[str]) -> None:
        raise RuntimeError("a bug in whoever listens")


@in_loop
async def test_a_bug_while_handling_the_device_costs_a_link_reset_not_the_reader(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with rig(DeviceScript(card="visa", present_after_s=0)) as r:
        await connected(r)
        with caplog.at_level(logging.ERROR, logger="readerhost.reader"), pytest.raises(ReaderError) as error:
            await asyncio.wait_for(r.reader.collect(100, "eur", BrokenPrompts()), WAIT_S)
        assert error.value.code == "READER_UNAVAILABLE"
        assert any("failed handling what the device sent" in m for m in caplog.messages)
        await connected(r, 2)
        method = await asyncio.wait_for(r.reader.collect(100, "eur", Prompts()), WAIT_S)
        assert method.reference == "pm_card_present_visa"


@in_loop
async def test_a_message_goes_on_as_soon_as_its_ack_arrives_not_when_the_ack_timeout_ends() -> None:
    # With a 30 s ACK timeout, waiting out the timeout on every send would blow the test's 10 s.
    patient = LinkSettings(**{**FAST.__dict__, "timings": LinkTimings(ack_timeout_s=30.0, keepalive_s=60.0)})
    async with rig(DeviceScript(card="visa", present_after_s=0), settings=patient) as r:
        await connected(r)
        for _ in range(3):
            method = await asyncio.wait_for(r.reader.collect(100, "eur", Prompts()), WAIT_S)
            assert method.reference == "pm_card_present_visa"
