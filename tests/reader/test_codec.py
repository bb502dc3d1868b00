"""The reader link codec: exact bytes, round trips, and hostile input (hypothesis)."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from readerhost.drivers.reader.link.codec import (
    CARD_EVENTS,
    DISPLAY_MESSAGES,
    ERROR_CODES,
    MAX_PAYLOAD,
    OPTIONS,
    READ_METHODS,
    FrameDecoder,
    FrameError,
    LinkCodecError,
    Message,
    MessageError,
    MessageType,
    cobs_decode,
    cobs_encode,
    decode_frame,
    encode,
    one_line,
)


def test_a_ping_is_the_bytes_the_protocol_document_shows() -> None:
    assert encode(Message(MessageType.PING, 7)) == bytes.fromhex("02 04 01 06 07 30 42 dd e8 00")


def test_the_crc_is_zlibs_crc32_big_endian_over_the_payload() -> None:
    frame = encode(Message(MessageType.ACK, 0, {"ack": 3}))
    data = cobs_decode(frame[:-1])
    assert data[-4:] == zlib.crc32(data[:-4]).to_bytes(4, "big")


def test_an_encoded_frame_has_exactly_one_zero_byte_at_its_end() -> None:
    body = {"collection": 1, "amount": 256, "currency": "eur", "wait_s": 60}
    frame = encode(Message(MessageType.COLLECT, 256, body))
    assert frame.count(0) == 1
    assert frame.endswith(b"\x00")


@given(st.binary(max_size=3000))
def test_cobs_round_trips_and_never_emits_zero(data: bytes) -> None:
    encoded = cobs_encode(data)
    assert 0 not in encoded
    assert cobs_decode(encoded) == data


def _messages() -> st.SearchStrategy[Message]:
    collection = st.integers(1, 2**32 - 1)
    seq = st.integers(1, 65535)
    text = st.text(alphabet="abcxyzABC 0123-_.éü€✓", min_size=1, max_size=40)
    bodies = {
        MessageType.ACK: st.fixed_dictionaries({"ack": st.integers(0, 65535)}),
        MessageType.COLLECT: st.fixed_dictionaries(
            {
                "collection": collection,
                "amount": st.integers(1, 99_999_999),
                "currency": st.sampled_from(["eur", "usd", "jpy"]),
                "wait_s": st.integers(1, 3600),
            }
        ),
        MessageType.CANCEL: st.fixed_dictionaries({"collection": collection}),
        MessageType.INPUT_OPTIONS: st.fixed_dictionaries(
            {"collection": collection, "options": st.lists(st.sampled_from(OPTIONS), min_size=1, max_size=3)}
        ),
        MessageType.DISPLAY_MESSAGE: st.fixed_dictionaries(
            {"collection": collection, "message": st.sampled_from(DISPLAY_MESSAGES)}
        ),
        MessageType.CARD: st.fixed_dictionaries({"collection": collection, "event": st.sampled_from(CARD_EVENTS)}),
        MessageType.COLLECTED: st.fixed_dictionaries(
            {
                "collection": collection,
                "reference": st.from_regex(r"pm_[A-Za-z0-9_]{1,60}", fullmatch=True),
                "brand": st.sampled_from(["visa", "mastercard", "amex"]),
                "last4": st.from_regex(r"[0-9]{4}", fullmatch=True),
                "read_method": st.sampled_from(READ_METHODS),
            }
        ),
        MessageType.ERROR: st.fixed_dictionaries(
            {"collection": st.none() | collection, "code": st.sampled_from(ERROR_CODES), "message": text}
        ),
        MessageType.WELCOME: st.fixed_dictionaries(
            {"version": st.just(1), "model": text, "serial": text, "firmware": text},
            optional={"battery": st.none() | st.integers(0, 100), "charging": st.booleans()},
        ),
    }
    return st.sampled_from(list(bodies)).flatmap(lambda kind: st.builds(Message, st.just(kind), seq, bodies[kind]))


@given(_messages())
def test_every_valid_message_round_trips(message: Message) -> None:
    decoded = FrameDecoder().feed(encode(message))
    assert decoded == [message]


@given(st.lists(_messages(), min_size=1, max_size=5), st.data())
def test_a_stream_cut_anywhere_decodes_to_the_same_messages(messages: list[Message], data: st.DataObject) -> None:
    stream = b"".join(encode(m) for m in messages)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    decoder = FrameDecoder()
    out: list[object] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        out += decoder.feed(stream[start:end])
    assert out == messages


@settings(max_examples=500)
@given(st.binary(max_size=2000))
def test_random_bytes_give_only_codec_errors(data: bytes) -> None:
    for item in FrameDecoder().feed(data):
        assert isinstance(item, Message | LinkCodecError)


@settings(max_examples=500)
@given(_messages(), st.data())
def test_a_damaged_frame_is_reported_and_the_next_one_still_decodes(message: Message, data: st.DataObject) -> None:
    frame = bytearray(encode(message))
    position = data.draw(st.integers(0, len(frame) - 2))
    frame[position] ^= data.draw(st.integers(1, 255))
    good = encode(Message(MessageType.PING, 9))
    results = FrameDecoder().feed(bytes(frame) + good)
    assert results[-1] == Message(MessageType.PING, 9)
    for item in results[:-1]:
        # A flipped byte may turn into a delimiter and split the frame; never a different valid message.
        assert isinstance(item, LinkCodecError) or item == message


def test_a_frame_with_a_bad_crc_is_a_frame_error() -> None:
    frame = bytearray(encode(Message(MessageType.PING, 1)))
    frame[-2] ^= 0x01
    (error,) = FrameDecoder().feed(bytes(frame))
    assert isinstance(error, FrameError)
    assert "CRC" in str(error)


def test_endless_bytes_without_a_delimiter_are_discarded_until_the_next_one() -> None:
    decoder = FrameDecoder()
    results = decoder.feed(b"\x01" * 5000)
    assert len(results) == 1
    assert isinstance(results[0], FrameError)
    assert decoder.feed(b"\x01\x01" + b"\x00" + encode(Message(MessageType.PING, 2))) == [Message(MessageType.PING, 2)]


def _raw_frame(payload: bytes) -> bytes:
    return cobs_encode(payload + zlib.crc32(payload).to_bytes(4, "big")) + b"\x00"


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (bytes([0x7E, 0, 0, 5]), "unknown message type 0x7e"),
        (bytes([0x02, 0, 0, 5]) + b"[1]", "not a JSON object"),
        (bytes([0x02, 0, 0, 5]) + b"\xff{", "not JSON"),
        (bytes([0x02, 0, 0, 5]) + b'{"collection":1}', "missing field 'amount'"),
        (bytes([0x02, 0, 0, 5]) + b'{"collection":1,"amount":0,"currency":"eur","wait_s":5}', "invalid 'amount'"),
        (
            bytes([0x45, 0, 0, 5])
            + b'{"collection":1,"reference":"pm_x","brand":"visa","last4":"42424","read_method":"contact_emv"}',
            "invalid 'last4'",
        ),
        (bytes([0x00, 0, 0, 5]) + b'{"ack":true}', "invalid 'ack'"),
    ],
)
def test_an_intact_but_malformed_message_names_the_problem_and_keeps_its_seq(payload: bytes, problem: str) -> None:
    (error,) = FrameDecoder().feed(_raw_frame(payload))
    assert isinstance(error, MessageError)
    assert problem in str(error)
    assert error.seq == 5


def test_a_payload_over_the_limit_is_refused_both_ways() -> None:
    with pytest.raises(ValueError, match="exceeds"):
        encode(
            Message(
                MessageType.ERROR,
                1,
                {"collection": None, "code": "internal_error", "message": "x" * 200, "pad": "y" * 2000},
            )
        )
    (error,) = FrameDecoder().feed(_raw_frame(bytes([0x04, 0, 0, 1]) + b" " * MAX_PAYLOAD))
    assert isinstance(error, FrameError)


def test_unknown_fields_are_allowed_for_later_versions() -> None:
    (message,) = FrameDecoder().feed(_raw_frame(bytes([0x04, 0, 0, 1]) + b'{"future":1}'))
    assert message == Message(MessageType.PING, 1, {"future": 1})


def test_decode_frame_rejects_a_frame_too_short_to_hold_a_header() -> None:
    with pytest.raises(FrameError, match="too short"):
        decode_frame(cobs_encode(b"\x04\x00"))


def test_an_offline_collect_carries_order_metadata_within_stripes_limits() -> None:
    body = {"collection": 1, "amount": 1250, "currency": "eur", "wait_s": 60, "offline": True}
    order = {"order_id": "O-1", "terminal_id": "kiosk-1", "payment_id": "pay_1"}
    message = Message(MessageType.COLLECT, 3, {**body, "metadata": order})
    assert FrameDecoder().feed(encode(message)) == [message]
    for bad in ({f"k{n}": "v" for n in range(11)}, {"k" * 41: "v"}, {"order_id": 7}, ["order_id"]):
        with pytest.raises(ValueError, match="invalid 'metadata'"):
            encode(Message(MessageType.COLLECT, 3, {**body, "metadata": bad}))


def test_one_line_makes_any_text_a_message_field() -> None:
    stripes = "Unexpected error communicating with Stripe. If this problem persists,\nlet us know.\n\n(Network error)"
    assert (
        one_line(stripes)
        == "Unexpected error communicating with Stripe. If this problem persists, let us know. (Network error)"
    )
    assert one_line("a\x00b\tc", 3) == "ab "
    message = Message(MessageType.PROCESS_FAILED, 1, {"collection": 1, "code": "stripe_unreachable",
                      "message": one_line(stripes * 5), "payment_intent_status": None})  # fmt: skip
    assert FrameDecoder().feed(encode(message)) == [message]
