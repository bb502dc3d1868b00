"""The daemon's error answers as exceptions, one class per reason, and the client's own failures."""

from __future__ import annotations

from typing import Any

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603


class ReaderhostError(Exception):
    """An error object the daemon answered with (`{"code", "message", "data"}`)."""

    def __init__(self, code: int, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data: dict[str, Any] = dict(data or {})
        reason = self.data.get("reason")
        self.reason: str | None = reason if isinstance(reason, str) else None
        self.retryable = self.data.get("retryable") is True
        field = self.data.get("field")
        self.field: str | None = field if isinstance(field, str) else None

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code}, message={self.message!r}, reason={self.reason!r})"


# -- application errors (codes >= 1000, one per reason) -----------------------------------------


class Busy(ReaderhostError):
    """Another payment holds the reader, the daemon has too many clients, or a reconcile.run is running
    or came too soon after others (1.6) (retryable)."""


class ReaderUnavailable(ReaderhostError):
    pass


class NotFound(ReaderhostError):
    pass


class InvalidState(ReaderhostError):
    pass


class IdempotencyConflict(ReaderhostError):
    """The same order_id was started before with other parameters."""


class Forbidden(ReaderhostError):
    """This user may not use the socket."""


class StripeUnavailable(ReaderhostError):
    pass


class OfflineLimit(ReaderhostError):
    pass


class StorageUnavailable(ReaderhostError):
    pass


class Unsupported(ReaderhostError):
    pass


class RefundExceedsCaptured(ReaderhostError):
    """More would be refunded than the payment captured (with its other refunds)."""


# -- protocol errors (JSON-RPC's codes) ---------------------------------------------------------


class InvalidParams(ReaderhostError):
    """-32602: `field` names the offending parameter."""


class MethodNotFound(ReaderhostError):
    """-32601: the daemon has no such method (an older daemon, or a typo)."""


class ProtocolError(ReaderhostError):
    """-32700 (parse error), -32600 (invalid request, frame too large), -32603 (internal error)."""


BY_REASON: dict[str, type[ReaderhostError]] = {
    "BUSY": Busy,
    "READER_UNAVAILABLE": ReaderUnavailable,
    "NOT_FOUND": NotFound,
    "INVALID_STATE": InvalidState,
    "IDEMPOTENCY_CONFLICT": IdempotencyConflict,
    "FORBIDDEN": Forbidden,
    "STRIPE_UNAVAILABLE": StripeUnavailable,
    "OFFLINE_LIMIT": OfflineLimit,
    "STORAGE_UNAVAILABLE": StorageUnavailable,
    "UNSUPPORTED": Unsupported,
    "REFUND_EXCEEDS_CAPTURED": RefundExceedsCaptured,
}
BY_CODE: dict[int, type[ReaderhostError]] = {
    INVALID_PARAMS: InvalidParams,
    METHOD_NOT_FOUND: MethodNotFound,
    PARSE_ERROR: ProtocolError,
    INVALID_REQUEST: ProtocolError,
    INTERNAL_ERROR: ProtocolError,
}


def error_from(error_object: Any) -> ReaderhostError:
    """The exception for a JSON-RPC error object; tolerant of a malformed one (it still raises something clear)."""
    if not isinstance(error_object, dict):
        return ProtocolError(INTERNAL_ERROR, f"the daemon sent a malformed error: {error_object!r}")
    code = error_object.get("code")
    if isinstance(code, bool) or not isinstance(code, int):
        code = INTERNAL_ERROR
    message = error_object.get("message")
    if not isinstance(message, str) or not message:
        message = f"error {code}"
    data = error_object.get("data")
    data = data if isinstance(data, dict) else {}
    reason = data.get("reason")
    if code in BY_CODE:
        cls = BY_CODE[code]
    elif isinstance(reason, str) and reason in BY_REASON:
        cls = BY_REASON[reason]
    else:
        cls = ReaderhostError  # a reason a newer daemon added: still typed by code and reason
    return cls(code, message, data)


# -- the client's own failures ------------------------------------------------------------------


class CannotConnect(ConnectionError):
    """No daemon answers at the socket (missing, refused, not permitted, or silent)."""

    def __init__(self, path: str, why: str) -> None:
        super().__init__(f"cannot connect to readerhostd at {path}: {why}")
        self.path = path
        self.why = why


class ConnectionLost(ConnectionError):
    """The connection ended while in use (the daemon stopped or dropped this client)."""


class IncompatibleProtocol(ConnectionError):
    """The daemon speaks a protocol major version this client does not."""
