"""The reader link protocol's codec (docs/reader-link-protocol.md §§ 2-4): bytes to messages and
back, with no I/O. Both transports and the device emulator use it.

A frame is COBS(payload + CRC-32) followed by 0x00; a payload is type, flags, seq and a JSON body.
Decoding never raises anything but `LinkCodecError`: a bad frame is the far side's fault, and
the caller logs it and carries on at the next frame.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

MAX_PAYLOAD = 1024
HEADER = struct.Struct(">BBH")  # type, flags, seq
# COBS adds at most one byte per 254, plus the CRC and the delimiter.
MAX_ENCODED = MAX_PAYLOAD + 4 + MAX_PAYLOAD // 254 + 2
DISCARD_AFTER = 1300  # bytes without a delimiter: the far side is not speaking this protocol
MAX_SEQ = 65535
MAX_COLLECTION = 4_294_967_295
MAX_AMOUNT = 99_999_999
MAX_METADATA_KEYS = 10  # an offline COLLECT's metadata: the host's order metadata (docs/reader-link-protocol.md 9.3)

OPTIONS = ("swipe", "insert", "tap")
DISPLAY_MESSAGES = (
    "retry_card",
    "insert_card",
    "insert_or_swipe_card",
    "swipe_card",
    "remove_card",
    "multiple_contactless_cards_detected",
    "try_another_read_method",
    "try_another_card",
    "card_removed_too_early",
)
CARD_EVENTS = ("card_inserted", "card_removed")
READ_METHODS = (
    "contact_emv",
    "contactless_emv",
    "magnetic_stripe_fallback",
    "magnetic_stripe_track2",
    "contactless_magstripe_mode",
)
ERROR_CODES = (
    "card_read_timed_out",
    "card_read_failed",
    "card_removed",
    "reader_busy",
    "reader_battery_critically_low",
    "not_collecting",
    "unsupported_version",
    "malformed_message",
    "internal_error",
    "stripe_unreachable",  # version 2: the device's SDK could not reach Stripe
    "stripe_refused",  # version 2: Stripe refused the SDK's request
)
WALLETS = ("apple_pay", "google_pay", "samsung_pay")
# A PaymentIntent's statuses, as PROCESSED and PROCESS_FAILED report them (version 2).
INTENT_STATUSES = (
    "requires_payment_method",
    "requires_confirmation",
    "requires_action",
    "processing",
    "requires_capture",
    "succeeded",
    "canceled",
)


class MessageType(IntEnum):
    ACK = 0x00
    HELLO = 0x01
    COLLECT = 0x02
    CANCEL = 0x03
    PING = 0x04
    TOKEN = 0x05
    TOKEN_FAILED = 0x06
    PROCESS = 0x07
    LIST_STORED = 0x08
    WELCOME = 0x41
    INPUT_OPTIONS = 0x42
    DISPLAY_MESSAGE = 0x43
    CARD = 0x44
    COLLECTED = 0x45
    ERROR = 0x46
    CANCELED = 0x47
    BATTERY = 0x48
    TOKEN_REQUEST = 0x49
    PROCESSED = 0x4A
    PROCESS_FAILED = 0x4B
    STORED = 0x4C
    FORWARDED = 0x4D

    @property
    def from_host(self) -> bool:
        return 0x01 <= self.value <= 0x3F


@dataclass(frozen=True)
class Message:
    type: MessageType
    seq: int
    body: Mapping[str, Any] = field(default_factory=dict)


class LinkCodecError(ValueError):
    """A frame or message that does not follow the protocol."""


class FrameError(LinkCodecError):
    """The frame itself is damaged (COBS, CRC, length): it is dropped unacknowledged."""


class MessageError(LinkCodecError):
    """The frame arrived intact but its message is malformed: acknowledge `seq`, then drop it."""

    def __init__(self, message: str, seq: int, type_code: int) -> None:
        super().__init__(message)
        self.seq = seq
        self.type_code = type_code


# -- bodies ---------------------------------------------------------------------------------------

_Check = Callable[[Any], bool]


def _integer(low: int, high: int) -> _Check:
    return lambda v: type(v) is int and low <= v <= high


def _one_of(values: tuple[str, ...]) -> _Check:
    return lambda v: isinstance(v, str) and v in values


def _text(longest: int) -> _Check:
    return lambda v: isinstance(v, str) and 0 < len(v) <= longest and v.isprintable()


def one_line(text: str, longest: int = 200) -> str:
    """`text` as a message's text field must be: one printable line of at most `longest` characters
    (an error text from elsewhere, such as stripe-python's, may span lines)."""
    line = " ".join(text.split())
    return "".join(c for c in line if c.isprintable())[:longest]


def _metadata(v: Any) -> bool:
    """Order metadata for a PaymentIntent (Stripe's limits: keys of at most 40 characters, values of 500)."""
    return (
        isinstance(v, dict)
        and len(v) <= MAX_METADATA_KEYS
        and all(_reference(k) and len(k) <= 40 and isinstance(x, str) and len(x) <= 500 for k, x in v.items())
    )


def _currency(v: Any) -> bool:
    return isinstance(v, str) and len(v) == 3 and v.isascii() and v.isalpha() and v.islower()


def _reference(v: Any) -> bool:
    return isinstance(v, str) and 0 < len(v) <= 255 and v.isascii() and v.isprintable() and " " not in v


def _last4(v: Any) -> bool:
    return isinstance(v, str) and len(v) == 4 and v.isascii() and v.isdigit()


def _brand(v: Any) -> bool:
    return isinstance(v, str) and 0 < len(v) <= 32 and v.isascii() and v.replace("_", "").isalpha() and v.islower()


def _options(v: Any) -> bool:
    return isinstance(v, list) and 0 < len(v) <= len(OPTIONS) and all(o in OPTIONS for o in v)


def _versions(v: Any) -> bool:
    return isinstance(v, list) and 0 < len(v) <= 16 and all(_integer(1, 255)(x) for x in v)


def _battery(v: Any) -> bool:
    return v is None or _integer(0, 100)(v)


def _optional_collection(v: Any) -> bool:
    return v is None or _integer(1, MAX_COLLECTION)(v)


def _flag(v: Any) -> bool:
    return isinstance(v, bool)


def _code(v: Any) -> bool:
    """An error code of Stripe's or the SDK's: a lower-case word with underscores."""
    return isinstance(v, str) and 0 < len(v) <= 64 and v.isascii() and v.replace("_", "").isalnum() and v.islower()


def _optional_status(v: Any) -> bool:
    return v is None or _one_of(INTENT_STATUSES)(v)


def _intent_id(v: Any) -> bool:
    return isinstance(v, str) and v.startswith("pi_") and _reference(v) and len(v) <= 64


def _client_secret(v: Any) -> bool:
    return isinstance(v, str) and "_secret_" in v and _reference(v)


def _token(v: Any) -> bool:
    return isinstance(v, str) and 0 < len(v) <= 512 and _reference(v)


_COLLECTION = _integer(1, MAX_COLLECTION)

# Required fields and their checks; the optional ones are in _OPTIONAL.
_FIELDS: dict[MessageType, dict[str, _Check]] = {
    MessageType.ACK: {"ack": _integer(0, MAX_SEQ)},
    MessageType.HELLO: {"versions": _versions},
    MessageType.COLLECT: {
        "collection": _COLLECTION,
        "amount": _integer(1, MAX_AMOUNT),
        "currency": _currency,
        "wait_s": _integer(1, 3600),
    },
    MessageType.CANCEL: {"collection": _COLLECTION},
    MessageType.PING: {},
    MessageType.TOKEN: {"secret": _token},
    MessageType.TOKEN_FAILED: {"message": _text(200)},
    MessageType.PROCESS: {"collection": _COLLECTION, "payment_intent": _intent_id, "client_secret": _client_secret},
    MessageType.LIST_STORED: {},
    MessageType.WELCOME: {"version": _integer(1, 255), "model": _text(64), "serial": _text(64), "firmware": _text(64)},
    MessageType.INPUT_OPTIONS: {"collection": _COLLECTION, "options": _options},
    MessageType.DISPLAY_MESSAGE: {"collection": _COLLECTION, "message": _one_of(DISPLAY_MESSAGES)},
    MessageType.CARD: {"collection": _COLLECTION, "event": _one_of(CARD_EVENTS)},
    MessageType.COLLECTED: {
        "collection": _COLLECTION,
        "brand": _brand,
        "last4": _last4,
        "read_method": _one_of(READ_METHODS),
    },
    MessageType.ERROR: {"collection": _optional_collection, "code": _one_of(ERROR_CODES), "message": _text(200)},
    MessageType.CANCELED: {"collection": _COLLECTION},
    MessageType.BATTERY: {"battery": _integer(0, 100), "charging": _flag},
    MessageType.TOKEN_REQUEST: {},
    MessageType.PROCESSED: {
        "collection": _COLLECTION,
        "payment_intent": _intent_id,
        "status": _one_of(INTENT_STATUSES),
    },
    MessageType.PROCESS_FAILED: {
        "collection": _COLLECTION,
        "code": _code,
        "message": _text(200),
        "payment_intent_status": _optional_status,
    },
    MessageType.STORED: {
        "offline_ref": _reference,
        "amount": _integer(1, MAX_AMOUNT),
        "currency": _currency,
        "brand": _brand,
        "last4": _last4,
        "stored_at": _integer(0, 2**40),
    },
    MessageType.FORWARDED: {"offline_ref": _reference, "payment_intent": _intent_id},
}
_OPTIONAL: dict[MessageType, dict[str, _Check]] = {
    MessageType.HELLO: {"host": _text(64)},
    MessageType.WELCOME: {"battery": _battery, "charging": _flag},
    # Version 2's COLLECT names the PaymentIntent; its COLLECTED names it instead of a reference.
    MessageType.COLLECT: {
        "payment_intent": _intent_id,
        "client_secret": _client_secret,
        "offline": _flag,
        "metadata": _metadata,  # with offline: what the SDK puts on the PaymentIntent it makes when forwarding
    },
    MessageType.COLLECTED: {"reference": _reference, "payment_intent": _intent_id, "wallet": _one_of(WALLETS)},
    MessageType.STORED: {"collection": _COLLECTION, "read_method": _one_of(READ_METHODS)},  # of the collection it ended
}


def check_body(kind: MessageType, body: Mapping[str, Any]) -> str | None:
    """What is wrong with `body` for a message of this type, or None. Unknown fields are allowed."""
    for name, check in _FIELDS[kind].items():
        if name not in body:
            return f"{kind.name}: missing field {name!r}"
        if not check(body[name]):
            return f"{kind.name}: invalid {name!r}"
    for name, check in _OPTIONAL.get(kind, {}).items():
        if name in body and not check(body[name]):
            return f"{kind.name}: invalid {name!r}"
    return None


# -- COBS -----------------------------------------------------------------------------------------


def cobs_encode(data: bytes) -> bytes:
    out = bytearray()
    block = bytearray()
    for byte in data:
        if byte == 0:
            out.append(len(block) + 1)
            out += block
            block.clear()
        else:
            block.append(byte)
            if len(block) == 254:
                out.append(255)
                out += block
                block.clear()
    out.append(len(block) + 1)
    out += block
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(data):
        code = data[i]
        if code == 0:
            raise FrameError("COBS: zero byte inside a frame")
        end = i + code
        if end > len(data):
            raise FrameError("COBS: block runs past the end of the frame")
        block = data[i + 1 : end]
        if 0 in block:
            raise FrameError("COBS: zero byte inside a frame")
        out += block
        i = end
        if code != 255 and i < len(data):
            out.append(0)
    return bytes(out)


# -- frames ---------------------------------------------------------------------------------------


def encode(message: Message) -> bytes:
    """The frame for `message`, delimiter included. ValueError for a message we must not send."""
    problem = check_body(message.type, message.body)
    if problem is not None:
        raise ValueError(problem)
    if not 0 <= message.seq <= MAX_SEQ:
        raise ValueError(f"seq {message.seq} out of range")
    body = json.dumps(dict(message.body), separators=(",", ":"), ensure_ascii=False).encode() if message.body else b""
    payload = HEADER.pack(message.type, 0, message.seq) + body
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"{message.type.name}: payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    return cobs_encode(payload + struct.pack(">I", zlib.crc32(payload))) + b"\x00"


def decode_frame(frame: bytes) -> Message:
    """One frame, without its delimiter, to a message; FrameError or MessageError otherwise."""
    data = cobs_decode(frame)
    if len(data) < HEADER.size + 4:
        raise FrameError(f"frame too short ({len(data)} bytes)")
    payload, crc = data[:-4], struct.unpack(">I", data[-4:])[0]
    if len(payload) > MAX_PAYLOAD:
        raise FrameError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    if zlib.crc32(payload) != crc:
        raise FrameError("CRC mismatch")
    type_code, _flags, seq = HEADER.unpack_from(payload)
    try:
        kind = MessageType(type_code)
    except ValueError:
        raise MessageError(f"unknown message type 0x{type_code:02x}", seq, type_code) from None
    raw = payload[HEADER.size :]
    body: Any = {}
    if raw:
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise MessageError(f"{kind.name}: body is not JSON", seq, type_code) from None
        if not isinstance(body, dict):
            raise MessageError(f"{kind.name}: body is not a JSON object", seq, type_code)
    problem = check_body(kind, body)
    if problem is not None:
        raise MessageError(problem, seq, type_code)
    return Message(kind, seq, body)


class FrameDecoder:
    """Splits a byte stream at 0x00 and decodes each frame: feed bytes, get messages and errors."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._discarding = False

    def feed(self, data: bytes) -> list[Message | LinkCodecError]:
        results: list[Message | LinkCodecError] = []
        for piece_end, piece in _pieces(data):
            if self._discarding:
                self._discarding = not piece_end
                continue
            self._buffer += piece
            if len(self._buffer) > DISCARD_AFTER:
                results.append(FrameError(f"more than {DISCARD_AFTER} bytes without a frame delimiter"))
                self._buffer.clear()
                self._discarding = not piece_end
                continue
            if not piece_end:
                continue
            frame = bytes(self._buffer)
            self._buffer.clear()
            if not frame:
                continue  # a lone delimiter flushes; it is not an error
            try:
                results.append(decode_frame(frame))
            except LinkCodecError as error:
                results.append(error)
        return results


def _pieces(data: bytes) -> list[tuple[bool, bytes]]:
    """`data` split after each delimiter: (ends_with_delimiter, bytes before it)."""
    parts = data.split(b"\x00")
    return [(True, part) for part in parts[:-1]] + ([(False, parts[-1])] if parts[-1] else [])
