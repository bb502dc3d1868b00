"""The POS protocol's wire format as a client sees it: the banner, requests, responses, events.

Shared by the asyncio and the blocking client; pure functions, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .errors import INTERNAL_ERROR, INVALID_REQUEST, IncompatibleProtocol, ProtocolError, ReaderhostError, error_from

SUPPORTED_MAJOR = 1  # this client speaks protocol 1.x; minor versions only add
MAX_FRAME = 64 * 1024  # the daemon refuses (and disconnects) longer request lines
MAX_LINE = 16 * 1024 * 1024  # the longest line accepted from the daemon (a payment list of 500 fits)
DEFAULT_CALL_TIMEOUT = 30.0
MAX_KEPT_EVENTS = 10_000  # events received and not yet taken; beyond this the oldest are dropped (a seq gap)
# The daemon's words, written again because this library ships alone (it imports nothing of the
# daemon); tests/client/test_method_table.py holds them to the daemon's definitions.
TOPICS = ("payment", "reader", "display", "queue", "system")
TERMINAL_STATES = frozenset({"captured", "canceled", "failed"})


class ProtocolVersion(NamedTuple):
    major: int
    minor: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


@dataclass(frozen=True)
class Banner:
    """The `hello` notification the daemon sends first on every connection."""

    protocol: ProtocolVersion
    daemon: str
    boot_id: str
    mode: str
    params: dict[str, Any] = field(default_factory=dict)  # everything, including fields newer daemons add


@dataclass(frozen=True)
class Event:
    """One server event: `seq` grows by one per event within a `boot_id` (a gap means some were lost)."""

    topic: str
    type: str
    seq: int
    boot_id: str
    at: str
    data: dict[str, Any]

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Event:
        data = params.get("data")
        seq = params.get("seq")
        return cls(
            topic=str(params.get("topic", "")),
            type=str(params.get("type", "")),
            seq=seq if isinstance(seq, int) and not isinstance(seq, bool) else -1,
            boot_id=str(params.get("boot_id", "")),
            at=str(params.get("at", "")),
            data=data if isinstance(data, dict) else {},
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic, "type": self.type, "seq": self.seq, "boot_id": self.boot_id,
            "at": self.at, "data": self.data,
        }  # fmt: skip


@dataclass(frozen=True)
class Response:
    id: int | str | None
    result: Any = None
    error: ReaderhostError | None = None


Message = Response | Event | None  # None: a notification this client has no use for


def parse_banner(line: bytes) -> Banner:
    """The banner from the first line; the daemon's refusal (FORBIDDEN, BUSY) is raised as its error."""
    message = _load(line)
    if "error" in message and "id" in message:
        raise error_from(message["error"])
    params = message.get("params")
    if message.get("method") != "hello" or not isinstance(params, dict):
        raise ProtocolError(INVALID_REQUEST, "the socket did not greet with readerhostd's banner")
    version = params.get("protocol")
    major = version.get("major") if isinstance(version, dict) else None
    minor = version.get("minor", 0) if isinstance(version, dict) else 0
    if not isinstance(major, int) or not isinstance(minor, int):
        raise ProtocolError(INVALID_REQUEST, "the daemon's banner has no protocol version")
    if major != SUPPORTED_MAJOR:
        raise IncompatibleProtocol(
            f"readerhostd speaks protocol {major}.{minor}; this client speaks {SUPPORTED_MAJOR}.x: "
            "update the client (or the daemon)"
        )
    return Banner(
        ProtocolVersion(major, minor),
        str(params.get("daemon", "")),
        str(params.get("boot_id", "")),
        str(params.get("mode", "")),
        params,
    )


def encode_request(request_id: int, method: str, params: Mapping[str, Any] | None) -> bytes:
    request: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        request["params"] = dict(params)
    line = json.dumps(request, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
    if len(line) > MAX_FRAME:
        raise ProtocolError(
            INVALID_REQUEST,
            f"the request is {len(line)} bytes; the daemon accepts at most {MAX_FRAME}",
            {"reason": "FRAME_TOO_LARGE"},
        )
    return line


def decode(line: bytes) -> Message:
    """One line from the daemon; ProtocolError for a line that is not a JSON object."""
    message = _load(line)
    if "id" in message and ("result" in message or "error" in message):
        if "error" in message:
            return Response(message["id"], error=error_from(message["error"]))
        return Response(message["id"], result=message["result"])
    params = message.get("params")
    if message.get("method") == "event" and isinstance(params, dict):
        return Event.from_params(params)
    return None


def _load(line: bytes) -> dict[str, Any]:
    try:
        message = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ProtocolError(INTERNAL_ERROR, "the daemon sent a line that is not JSON") from None
    if not isinstance(message, dict):
        raise ProtocolError(INTERNAL_ERROR, "the daemon sent a line that is not a JSON object")
    return message
