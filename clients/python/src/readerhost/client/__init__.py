"""readerhost.client: talk to readerhostd over its Unix socket (the POS protocol, JSON-RPC 2.0 lines).

Two flavours with the same methods: `AsyncClient` (asyncio; several tasks may call at once) and
`Client` (blocking; one thread at a time). Errors the daemon answers with are `ReaderhostError`
subclasses named after their reason; a connection that breaks is `ConnectionLost`.

Standard library only, and nothing happens at import: POS software and `readerhostctl` can import
this without the daemon's dependencies.
"""

from __future__ import annotations

from .aio import AsyncClient
from .errors import (
    Busy,
    CannotConnect,
    ConnectionLost,
    Forbidden,
    IdempotencyConflict,
    IncompatibleProtocol,
    InvalidParams,
    InvalidState,
    MethodNotFound,
    NotFound,
    OfflineLimit,
    ProtocolError,
    ReaderhostError,
    ReaderUnavailable,
    RefundExceedsCaptured,
    StorageUnavailable,
    StripeUnavailable,
    Unsupported,
    error_from,
)
from .paths import default_socket_path
from .sync import Client
from .wire import TERMINAL_STATES, Banner, Event, ProtocolVersion

__all__ = [
    "TERMINAL_STATES",
    "AsyncClient",
    "Banner",
    "Busy",
    "CannotConnect",
    "Client",
    "ConnectionLost",
    "Event",
    "Forbidden",
    "IdempotencyConflict",
    "IncompatibleProtocol",
    "InvalidParams",
    "InvalidState",
    "MethodNotFound",
    "NotFound",
    "OfflineLimit",
    "ProtocolError",
    "ProtocolVersion",
    "ReaderUnavailable",
    "ReaderhostError",
    "RefundExceedsCaptured",
    "StorageUnavailable",
    "StripeUnavailable",
    "Unsupported",
    "default_socket_path",
    "error_from",
]
