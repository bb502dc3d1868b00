"""ReaderDevice in-process, over asyncio queues: the rules that need short timers or direct knobs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from readerhost.drivers.reader.link.codec import FrameDecoder, LinkCodecError, Message, MessageType, encode
from readerhost.sim.reader_device import DeviceIdentity, DeviceScript, LinkTimings, ReaderDevice
from readerhost.sim.reader_device.device import garbled

COLLECT = {"collection": 1, "amount": 500, "currency": "usd", "wait_s": 30}
FAST = LinkTimings(ack_timeout_s=0.05, retransmissions=3, host_silence_s=0.3)


class Host:
    """The far end of queues a device serves: sends messages, ACKs and returns the device's."""

    def __init__(self, device: ReaderDevice) -> None:
        self.to_device: asyncio.Queue[bytes] = asyncio.Queue()
        self.from_device: asyncio.Queue[bytes] = asyncio.Queue()
        self.task = asyncio.create_task(device.serve(self.to_device.get, self.from_device.put))
        self._decoder = FrameDecoder()
        self._pending: list[Message | LinkCodecError] = []
        self.acks: list[int] = []

    def send(self, kind: MessageType, seq: int, body: Mapping[str, Any] | None = None) -> None:
        self.to_device.put_nowait(encode(Message(kind, seq, body or {})))

    async def next(self, timeout: float = 2.0) -> Message:
        """The next device message (not an ACK; those are kept in `acks`), acknowledged."""
        async with asyncio.timeout(timeout):
            while True:
                while not self._pending:
                    self._pending += self._decoder.feed(await self.from_device.get())
                item = self._pending.pop(0)
                if isinstance(item, Message) and item.type is MessageType.ACK:
                    self.acks.append(item.body["ack"])
                elif isinstance(item, Message):
                    self.send(MessageType.ACK, 0, {"ack": item.seq})
                    return item

    async def hello(self) -> Message:
        self.send(MessageType.HELLO, 0, {"versions": [1]})
        return await self.next()

    async def close(self) -> None:
        self.to_device.put_nowait(b"")
        await asyncio.wait_for(self.task, 2)


class Events:
    """A device's on_event listener that a test can wait on."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self._changed = asyncio.Event()

    def __call__(self, name: str, fields: Mapping[str, Any]) -> None:
        self.names.append(name)
        self._changed.set()

    async def wait(self, name: str, timeout: float = 2.0) -> None:
        async with asyncio.timeout(timeout):
            while name not in self.names:
                self._changed.clear()
                await self._changed.wait()


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 10))


def test_card_events_surround_a_contact_read() -> None:
    async def scenario() -> None:
        device = ReaderDevice(script=DeviceScript(card="interac", present_after_s=0, card_events=True))
        host = Host(device)
        await host.hello()
        host.send(MessageType.COLLECT, 1, COLLECT)
        kinds = [await host.next() for _ in range(4)]
        assert [(m.type, m.body.get("event")) for m in kinds] == [
            (MessageType.INPUT_OPTIONS, None),
            (MessageType.CARD, "card_inserted"),
            (MessageType.CARD, "card_removed"),
            (MessageType.COLLECTED, None),
        ]
        assert kinds[3].body["read_method"] == "contact_emv"
        assert kinds[3].body["reference"] == "pm_card_present_interac"
        await host.close()

    run(scenario)


def test_a_scripted_error_ends_the_collection() -> None:
    async def scenario() -> None:
        device = ReaderDevice(script=DeviceScript(error="card_read_failed", present_after_s=0))
        host = Host(device)
        await host.hello()
        host.send(MessageType.COLLECT, 1, COLLECT)
        assert (await host.next()).type is MessageType.INPUT_OPTIONS
        error = await host.next()
        assert (error.type, error.body["code"], error.body["collection"]) == (MessageType.ERROR, "card_read_failed", 1)
        await host.close()

    run(scenario)


def test_present_and_wait_collecting() -> None:
    async def scenario() -> None:
        events: list[tuple[str, Mapping[str, Any]]] = []
        device = ReaderDevice(script=DeviceScript(card=None), on_event=lambda name, f: events.append((name, f)))
        host = Host(device)
        await host.hello()
        assert device.present("visa") is False  # nothing is collecting: a tap does nothing
        with pytest.raises(ValueError, match="unknown test card"):
            device.present("no_such_card")
        host.send(MessageType.COLLECT, 1, {**COLLECT, "collection": 42})
        assert await device.wait_collecting() == 42
        waiting = device.collecting
        assert waiting == 42
        assert device.present("amex") is True
        await host.next()
        collected = await host.next()
        assert collected.body["brand"] == "amex"
        assert device.collecting is None
        assert [name for name, _ in events] == ["welcome", "collecting", "collected"]
        await host.close()

    run(scenario)


def test_messages_before_a_hello_are_acked_and_ignored() -> None:
    async def scenario() -> None:
        device = ReaderDevice(script=DeviceScript(present_after_s=0))
        host = Host(device)
        host.send(MessageType.COLLECT, 1, COLLECT)
        welcome = await host.hello()
        assert host.acks == [1, 0]
        assert welcome.type is MessageType.WELCOME  # the first device message: the COLLECT did nothing
        await host.close()

    run(scenario)


def test_a_hello_mid_collection_resets_the_device() -> None:
    async def scenario() -> None:
        device = ReaderDevice(script=DeviceScript(card=None))
        host = Host(device)
        await host.hello()
        host.send(MessageType.COLLECT, 1, COLLECT)
        assert (await host.next()).seq == 1
        await device.wait_collecting()

        welcome = await host.hello()
        assert (welcome.type, welcome.seq) == (MessageType.WELCOME, 0)
        assert device.collecting is None
        host.send(MessageType.COLLECT, 1, {**COLLECT, "collection": 2})  # seq 1 again: new numbering, not a repeat
        options = await host.next()
        assert (options.seq, options.body["collection"]) == (1, 2)
        await host.close()

    run(scenario)


def test_host_silence_ends_the_collection_and_waits_for_hello() -> None:
    async def scenario() -> None:
        events = Events()
        device = ReaderDevice(script=DeviceScript(card=None), timings=FAST, on_event=events)
        host = Host(device)
        await host.hello()
        host.send(MessageType.COLLECT, 1, COLLECT)
        await host.next()
        await device.wait_collecting()

        await events.wait("host_silent")  # FAST: 0.3 s without a byte from the host
        assert device.collecting is None
        assert device.present("visa") is False
        assert "canceled" not in events.names
        await host.close()

    run(scenario)


def test_no_ack_loses_the_link_after_three_retransmissions() -> None:
    async def scenario() -> None:
        events = Events()
        device = ReaderDevice(timings=FAST, on_event=events)
        to_device: asyncio.Queue[bytes] = asyncio.Queue()
        sent: list[bytes] = []

        async def send(frame: bytes) -> None:
            sent.append(frame)

        task = asyncio.create_task(device.serve(to_device.get, send))
        to_device.put_nowait(encode(Message(MessageType.HELLO, 0, {"versions": [1]})))
        await events.wait("link_lost")
        decoded = [m for frame in sent for m in FrameDecoder().feed(frame)]
        assert [(m.type, m.seq) for m in decoded if isinstance(m, Message)] == [
            (MessageType.ACK, 0),
            *[(MessageType.WELCOME, 0)] * 4,
        ]
        to_device.put_nowait(b"")
        await task

    run(scenario)


def test_battery_messages_follow_the_five_point_rule() -> None:
    async def scenario() -> None:
        device = ReaderDevice(DeviceIdentity(battery=None))
        host = Host(device)
        assert (await host.hello()).body["battery"] is None
        device.set_battery(50)  # from no battery at all: a change
        device.set_battery(47)
        device.set_battery(45)  # 5 below the 50 reported
        device.set_battery(45, charging=True)
        bodies = [(await host.next()).body for _ in range(3)]
        assert bodies == [
            {"battery": 50, "charging": False},
            {"battery": 45, "charging": False},
            {"battery": 45, "charging": True},
        ]
        assert device.identity.battery == 45
        assert (await host.hello()).body["charging"] is True
        with pytest.raises(ValueError, match="0-100"):
            device.set_battery(101)
        await host.close()

    run(scenario)


def test_drop_link_makes_serve_return() -> None:
    async def scenario() -> None:
        device = ReaderDevice()
        host = Host(device)
        await host.hello()
        assert device.serving
        device.drop_link()
        await asyncio.wait_for(host.task, 2)
        assert not device.serving

    run(scenario)


def test_received_records_every_intact_message_and_counts_damaged_frames() -> None:
    async def scenario() -> None:
        device = ReaderDevice()
        host = Host(device)
        await host.hello()
        host.to_device.put_nowait(garbled(encode(Message(MessageType.PING, 1))))
        host.send(MessageType.PING, 1)
        host.send(MessageType.PING, 1)
        host.send(MessageType.CANCEL, 2, {"collection": 9})
        await host.next()
        assert device.frame_errors == 1
        kinds = [(m.type, m.seq) for m in device.received]
        assert kinds == [
            (MessageType.HELLO, 0),
            (MessageType.ACK, 0),
            (MessageType.PING, 1),
            (MessageType.PING, 1),
            (MessageType.CANCEL, 2),
        ]
        assert host.acks == [0, 1, 1, 2]
        await host.close()

    run(scenario)


def test_script_values_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown test card"):
        DeviceScript(card="visa_platinum")
    with pytest.raises(ValueError, match="display message"):
        DeviceScript(prompts=("hello",))
    with pytest.raises(ValueError, match="error code"):
        DeviceScript(error="oops")
    with pytest.raises(ValueError, match="unknown script field"):
        DeviceScript().updated({"colour": "red"})
    assert DeviceScript().updated({"card": None, "prompts": ["retry_card"]}) == DeviceScript(
        card=None, prompts=("retry_card",)
    )
    with pytest.raises(ValueError, match="versions"):
        DeviceIdentity(versions=())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(noise=st.binary(max_size=600), cuts=st.lists(st.integers(min_value=1, max_value=40), max_size=30))
def test_noise_then_a_hello_in_any_pieces_is_welcomed(noise: bytes, cuts: list[int]) -> None:
    """Whatever arrives first, a flush and a HELLO cut anywhere get a WELCOME (§ 2: resynchronise at 0x00)."""

    async def scenario() -> None:
        device = ReaderDevice()
        host = Host(device)
        stream = noise + b"\x00" + encode(Message(MessageType.HELLO, 0, {"versions": [1]}))
        for cut in cuts:
            piece, stream = stream[:cut], stream[cut:]
            if piece:
                host.to_device.put_nowait(piece)
        host.to_device.put_nowait(stream)
        while (message := await host.next()).type is not MessageType.WELCOME:
            assert message.type is MessageType.ERROR  # noise that happened to be a malformed message
        await host.close()

    run(scenario)
