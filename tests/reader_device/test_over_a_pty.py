"""The emulator as a real process on a real pty, driven by a pyserial host: the protocol's device
rules as a host sees them on the wire."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import serial
from support.link_host import acks, device_messages, raw_frame

from readerhost.drivers.reader.link.codec import FrameError, Message, MessageType, encode

from .conftest import OpenHost, StartEmulator

COLLECT = {"collection": 1, "amount": 1250, "currency": "eur", "wait_s": 30}


def collect(n: int, wait_s: int = 30) -> dict[str, object]:
    return {**COLLECT, "collection": n, "wait_s": wait_s}


def test_hello_is_welcomed_with_the_identity(start_emulator: StartEmulator, open_host: OpenHost) -> None:
    emulator = start_emulator("--model", "Acme R1", "--serial", "R1-77", "--firmware", "2.3", "--battery", "42")
    host = open_host(emulator.pty)

    host.send(MessageType.HELLO, {"versions": [1]})
    items = host.until(MessageType.WELCOME)

    assert acks(items) == [0]
    welcome = device_messages(items)[-1]
    assert welcome.seq == 0
    assert welcome.body == {
        "version": 1,
        "model": "Acme R1",
        "serial": "R1-77",
        "firmware": "2.3",
        "battery": 42,
        "charging": False,
    }
    assert emulator.event("welcome") == {"event": "welcome", "version": 1}


def test_version_negotiation_picks_the_highest_common_or_refuses(
    start_emulator: StartEmulator, open_host: OpenHost
) -> None:
    host = open_host(start_emulator("--versions", "1,2", "--stripe-api-base", "http://127.0.0.1:9").pty)

    assert host.hello([1, 2, 3]).body["version"] == 2

    refused = host.hello([3, 4])
    assert refused.type is MessageType.ERROR
    assert refused.body["code"] == "unsupported_version"
    assert refused.body["collection"] is None

    # Refused, the device ignores requests: the COLLECT is acknowledged and nothing else comes.
    seq = host.send(MessageType.COLLECT, collect(1))
    assert [item for item in host.quiet_for(0.7) if not (isinstance(item, Message) and item.body == {"ack": seq})] == []
    assert host.hello([1]).body["version"] == 1


def test_a_collection_with_prompts_and_a_presented_card(start_emulator: StartEmulator, open_host: OpenHost) -> None:
    emulator = start_emulator("--card", "none", "--prompt", "retry_card", "--prompt", "insert_card")
    host = open_host(emulator.pty)
    host.hello()

    host.send(MessageType.COLLECT, collect(7))
    assert emulator.event("collecting") == {"event": "collecting", "collection": 7, "amount": 1250, "currency": "eur"}
    assert emulator.control({"present": "mastercard"}) == {"ok": True}
    items = host.until(MessageType.COLLECTED)

    messages = device_messages(items)
    assert [(m.type, m.seq) for m in messages] == [
        (MessageType.INPUT_OPTIONS, 1),
        (MessageType.DISPLAY_MESSAGE, 2),
        (MessageType.DISPLAY_MESSAGE, 3),
        (MessageType.COLLECTED, 4),
    ]
    assert messages[0].body == {"collection": 7, "options": ["tap", "insert", "swipe"]}
    assert [m.body["message"] for m in messages[1:3]] == ["retry_card", "insert_card"]
    assert messages[3].body == {
        "collection": 7,
        "reference": "pm_card_present_mastercard",
        "brand": "mastercard",
        "last4": "4444",
        "read_method": "contactless_emv",
    }
    assert emulator.event("collected")["reference"] == "pm_card_present_mastercard"
    assert emulator.control({"present": "visa"}) == {"error": "no collection is waiting for a card"}


def test_cancel_is_answered_canceled_at_once_and_again_when_nothing_is_collecting(
    start_emulator: StartEmulator, open_host: OpenHost
) -> None:
    emulator = start_emulator("--card", "none")
    host = open_host(emulator.pty)
    host.hello()
    host.send(MessageType.COLLECT, collect(3))
    emulator.event("collecting")
    host.until(MessageType.INPUT_OPTIONS)

    sent = time.monotonic()
    host.send(MessageType.CANCEL, {"collection": 3})
    canceled = device_messages(host.until(MessageType.CANCELED))

    assert time.monotonic() - sent < 1.0
    assert [(m.type, m.body) for m in canceled] == [(MessageType.CANCELED, {"collection": 3})]
    assert emulator.event("canceled") == {"event": "canceled", "collection": 3, "was_collecting": True}

    host.send(MessageType.CANCEL, {"collection": 3})
    again = device_messages(host.until(MessageType.ERROR))
    assert [m.type for m in again] == [MessageType.CANCELED, MessageType.ERROR]
    assert again[0].body == {"collection": 3}
    assert again[1].body["code"] == "not_collecting"
    assert again[1].body["collection"] is None


def test_cancel_after_the_result_gets_canceled_and_not_collecting(
    start_emulator: StartEmulator, open_host: OpenHost
) -> None:
    host = open_host(start_emulator("--present-after", "0").pty)
    host.hello()
    host.send(MessageType.COLLECT, collect(4))
    host.until(MessageType.COLLECTED)

    host.send(MessageType.CANCEL, {"collection": 4})
    answers = device_messages(host.until(MessageType.ERROR))

    assert [(m.type, m.body.get("code")) for m in answers] == [
        (MessageType.CANCELED, None),
        (MessageType.ERROR, "not_collecting"),
    ]


def test_a_second_collect_is_reader_busy_and_the_first_goes_on(
    start_emulator: StartEmulator, open_host: OpenHost
) -> None:
    emulator = start_emulator("--card", "none")
    host = open_host(emulator.pty)
    host.hello()
    host.send(MessageType.COLLECT, collect(1))
    emulator.event("collecting")

    host.send(MessageType.COLLECT, collect(2))
    busy = device_messages(host.until(MessageType.ERROR))[-1]
    assert busy.body["code"] == "reader_busy"
    assert busy.body["collection"] == 2

    assert emulator.control({"present": "visa"}) == {"ok": True}
    collected = device_messages(host.until(MessageType.COLLECTED))[-1]
    assert collected.body["collection"] == 1


def test_no_card_within_wait_s_is_card_read_timed_out(start_emulator: StartEmulator, open_host: OpenHost) -> None:
    emulator = start_emulator("--card", "none")
    host = open_host(emulator.pty)
    host.hello()

    sent = time.monotonic()
    host.send(MessageType.COLLECT, collect(5, wait_s=1))
    error = device_messages(host.until(MessageType.ERROR))[-1]

    assert 0.9 < time.monotonic() - sent < 2.0
    assert error.body["collection"] == 5
    assert error.body["code"] == "card_read_timed_out"
    assert emulator.event("error") == {"event": "error", "collection": 5, "code": "card_read_timed_out"}


def test_garbled_frames_are_recovered_by_retransmission(start_emulator: StartEmulator, open_host: OpenHost) -> None:
    emulator = start_emulator()
    host = open_host(emulator.pty)
    assert emulator.control({"garble_next": 3}) == {"ok": True}

    sent = time.monotonic()
    host.send(MessageType.HELLO, {"versions": [1]})
    items = host.until(MessageType.WELCOME)

    # The ACK and two tries of WELCOME arrive damaged; the second retransmission gets through.
    assert sum(isinstance(item, FrameError) for item in items) == 3
    assert [m.seq for m in device_messages(items)] == [0]
    assert 0.9 < time.monotonic() - sent < 2.0  # within the 2 s after which the link would be lost
    host.send(MessageType.COLLECT, collect(1))
    assert device_messages(host.until(MessageType.COLLECTED))[0].type is MessageType.INPUT_OPTIONS


def test_no_ack_after_three_retransmissions_loses_the_link(start_emulator: StartEmulator, open_host: OpenHost) -> None:
    emulator = start_emulator()
    host = open_host(emulator.pty, auto_ack=False)
    host.send(MessageType.HELLO, {"versions": [1]})

    items = host.quiet_for(2.3)
    emulator.event("link_lost", timeout=1.0)

    welcomes = device_messages(items)
    assert [(m.type, m.seq) for m in welcomes] == [(MessageType.WELCOME, 0)] * 4  # the first try and 3 more


def test_a_repeated_seq_is_acked_again_and_not_processed_again(
    start_emulator: StartEmulator, open_host: OpenHost
) -> None:
    emulator = start_emulator("--card", "none")
    host = open_host(emulator.pty)
    host.hello()
    frame = encode(Message(MessageType.COLLECT, 1, collect(1)))

    host.port.write(frame)
    host.port.write(frame)  # as if our first ACK had been lost
    emulator.event("collecting")
    host.send(MessageType.CANCEL, {"collection": 1}, seq=2)
    items = host.until(MessageType.CANCELED)

    assert acks(items) == [1, 1, 2]
    assert [m.type for m in device_messages(items)] == [MessageType.INPUT_OPTIONS, MessageType.CANCELED]


@pytest.mark.parametrize(
    ("type_code", "body"),
    [
        (MessageType.COLLECT, b'{"collection": 1, "amount": "12", "currency": "eur", "wait_s": 5}'),
        (MessageType.COLLECT, b"[1, 2]"),
        (0x30, b""),  # a type nobody defined
        (MessageType.COLLECTED, b""),  # a device message, from the host
    ],
    ids=["bad-field", "not-an-object", "unknown-type", "wrong-direction"],
)
def test_a_malformed_message_is_acked_then_answered_malformed_message(
    start_emulator: StartEmulator, open_host: OpenHost, type_code: int, body: bytes
) -> None:
    host = open_host(start_emulator().pty)
    host.hello()

    host.port.write(raw_frame(type_code, 9, body))
    items = host.until(MessageType.ERROR)

    assert acks(items) == [9]
    error = device_messages(items)[-1]
    assert error.body["code"] == "malformed_message"
    assert error.body["collection"] is None
    host.send(MessageType.PING, seq=10)
    assert acks(host.until(MessageType.ACK)) == [10]  # the link goes on


def test_unplug_fails_the_hosts_port_and_replug_brings_it_back_under_the_link(
    start_emulator: StartEmulator, open_host: OpenHost, tmp_path: Path
) -> None:
    link = tmp_path / "usb-readerhost_emulator-if00"
    emulator = start_emulator("--link", str(link))
    assert emulator.line() == f"link: {link}"
    assert os.readlink(link) == emulator.pty
    host = open_host(str(link))
    host.hello()

    assert emulator.control({"unplug": True}) == {"ok": True}
    with pytest.raises(serial.SerialException):
        host.port.read(1)
    assert not link.is_symlink()
    assert emulator.control({"unplug": True}) == {"error": "not plugged in"}

    answer = emulator.control({"replug": True})
    assert answer["ok"] is True
    assert os.readlink(link) == answer["pty"]
    again = open_host(str(link))
    assert again.hello().type is MessageType.WELCOME


def test_a_hung_device_sends_no_acks_until_it_answers_again(start_emulator: StartEmulator, open_host: OpenHost) -> None:
    emulator = start_emulator()
    host = open_host(emulator.pty)
    host.hello()

    assert emulator.control({"stop_answering": True}) == {"ok": True}
    host.send(MessageType.PING)
    assert host.quiet_for(0.6) == []

    assert emulator.control({"stop_answering": False}) == {"ok": True}
    seq = host.send(MessageType.PING)  # a new seq: the first one was never heard
    assert acks(host.until(MessageType.ACK)) == [seq]


def test_battery_changes_are_sent_when_they_count(start_emulator: StartEmulator, open_host: OpenHost) -> None:
    emulator = start_emulator("--battery", "80")
    host = open_host(emulator.pty)
    host.hello()

    assert emulator.control({"battery": 78}) == {"ok": True}  # less than 5 points: not worth a message
    assert emulator.control({"battery": 15}) == {"ok": True}
    assert emulator.control({"battery": 15, "charging": True}) == {"ok": True}
    items = host.read_until(lambda m: m.type is MessageType.BATTERY and m.body["charging"])

    assert [m.body for m in device_messages(items)] == [
        {"battery": 15, "charging": False},
        {"battery": 15, "charging": True},
    ]
