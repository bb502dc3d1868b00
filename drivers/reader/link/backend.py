"""What a protocol 2 link reader needs of Stripe, through the host (docs/reader-link-protocol.md § 8):
connection tokens for the device's Terminal SDK, and the client secret of the PaymentIntent it
collects for. Blocking: the reader calls it in a thread. The daemon's implementation is
daemon/payments/sdk_backend.py; neither secret is ever logged or stored."""

from __future__ import annotations

from typing import Protocol


class BackendError(Exception):
    """Stripe did not give what was asked; `message` says why (never a secret)."""

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.unreachable = unreachable


class SdkBackend(Protocol):
    def connection_token(self) -> str:
        """A new connection token's secret (POST /v1/terminal/connection_tokens); BackendError if none."""
        ...

    def client_secret(self, payment_intent: str) -> str:
        """The PaymentIntent's client secret, read from Stripe; BackendError if it cannot be."""
        ...
