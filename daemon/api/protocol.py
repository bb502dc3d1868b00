"""The wire format: one JSON-RPC 2.0 object per line, and the error vocabulary of the POS protocol."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

# 1.1: reader.present, display.changed; 1.2: link readers; 1.3: tipping, card wallet and network, tip,
# receipt, reader.register and reader.locations, payment.refund; 1.4: orders paid again (order_attempt,
# closed_by, payment.close, payment.list's order_id), status.get's stripe.state, reader.pair, reader.refused,
# flexible authorisations (payment.start's incremental and extended, payment.increment, increment.updated),
# the autopilot (payment.unattended, status.get's unattended, reconcile.run's unattended); 1.5: the plain
# JSON-RPC socket (no banner, connections own no payment) and session.hello; 1.6: reconcile.run rationed
# (BUSY while one runs, and beyond a few in a row)
PROTOCOL_VERSION = {"major": 1, "minor": 6}
MAX_FRAME = 64 * 1024

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

# Application errors: codes >= 1000, one per reason, stable for integrators.
REASON_CODES = {
    "BUSY": 1001,
    "READER_UNAVAILABLE": 1002,
    "NOT_FOUND": 1003,
    "INVALID_STATE": 1004,
    "IDEMPOTENCY_CONFLICT": 1005,
    "FORBIDDEN": 1006,
    "STRIPE_UNAVAILABLE": 1007,
    "OFFLINE_LIMIT": 1008,
    "STORAGE_UNAVAILABLE": 1009,
    "UNSUPPORTED": 1010,
    "REFUND_EXCEEDS_CAPTURED": 1011,
}
RequestId = int | str | None


@dataclass
class RpcError(Exception):
    code: int
    message: str
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    @classmethod
    def app(cls, reason: str, message: str, *, retryable: bool = False, **extra: Any) -> RpcError:
        return cls(REASON_CODES[reason], message, {"reason": reason, "retryable": retryable, **extra})

    @classmethod
    def invalid_params(cls, field_name: str, message: str) -> RpcError:
        return cls(INVALID_PARAMS, message, {"reason": "INVALID_PARAMS", "field": field_name, "retryable": False})


@dataclass(frozen=True)
class Request:
    id: RequestId
    method: str
    params: dict[str, Any]
    is_notification: bool


class BadRequest(Exception):
    """A line that is not a usable request; `request_id` is its id when that much could be read."""

    def __init__(self, request_id: RequestId, error: RpcError) -> None:
        super().__init__(error.message)
        self.request_id = request_id
        self.error = error


def parse_request(line: bytes) -> Request:
    """A request from one line, or BadRequest."""
    try:
        message = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadRequest(
            None, RpcError(PARSE_ERROR, "the line is not valid UTF-8", {"reason": "PARSE_ERROR"})
        ) from None
    except json.JSONDecodeError as error:
        problem = f"invalid JSON: {error.msg} at column {error.colno}"
        raise BadRequest(None, RpcError(PARSE_ERROR, problem, {"reason": "PARSE_ERROR"})) from None
    if not isinstance(message, dict):
        raise BadRequest(None, _invalid("a request must be a JSON object"))
    request_id = message.get("id")
    if "id" in message and (isinstance(request_id, bool) or not isinstance(request_id, int | str)):
        raise BadRequest(None, _invalid("id must be an integer or a string"))
    if message.get("jsonrpc") != "2.0":
        raise BadRequest(request_id, _invalid('jsonrpc must be "2.0"'))
    method = message.get("method")
    if not isinstance(method, str) or not method:
        raise BadRequest(request_id, _invalid("method must be a non-empty string"))
    params = message.get("params", {})
    if not isinstance(params, dict):
        raise BadRequest(request_id, RpcError.invalid_params("params", "params must be an object"))
    return Request(request_id, method, params, "id" not in message)


def _invalid(message: str) -> RpcError:
    return RpcError(INVALID_REQUEST, message, {"reason": "INVALID_REQUEST"})


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def result_line(request_id: RequestId, result: Any) -> bytes:
    return encode({"jsonrpc": "2.0", "id": request_id, "result": result})


def error_line(request_id: RequestId, error: RpcError) -> bytes:
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.data:
        body["data"] = error.data
    return encode({"jsonrpc": "2.0", "id": request_id, "error": body})


def notification_line(method: str, params: dict[str, Any]) -> bytes:
    return encode({"jsonrpc": "2.0", "method": method, "params": params})
