"""The host's side of a Stripe Terminal SDK bridge (a protocol 2 link reader): connection tokens
for the device's SDK, and the client secret of the PaymentIntent it collects for, through
stripe-python configured as the gateway's (timeouts, retries, maybe an emulator).

Blocking: the reader calls it in a thread. Requests are paced (at most `per_second`), retried by
stripe-python like every other request, and again here, with backoff, after a 429, a 5xx or no
answer (RETRY_AFTER_S): neither moves money, so a retry is always safe. A token or a client secret
is handed to the reader only: never logged, never stored.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from readerhost.drivers.reader.link.backend import BackendError

from .gateway import GatewaySettings, stripe_client

logger = logging.getLogger(__name__)

RETRY_AFTER_S = (0.25, 0.5, 1.0, 2.0)


class StripeSdkBackend:
    def __init__(self, settings: GatewaySettings, location: str | None, per_second: float = 5.0) -> None:
        client = stripe_client(settings)
        self._tokens = client.v1.terminal.connection_tokens
        self._intents = client.v1.payment_intents
        self._location = location
        self._gap_s = 1.0 / per_second
        self._pace = threading.Lock()
        self._last_sent = 0.0

    def connection_token(self) -> str:
        params: dict[str, Any] = {"location": self._location} if self._location else {}
        token = self._call("connection token", lambda: self._tokens.create(params))  # type: ignore[arg-type]
        secret = getattr(token, "secret", None)
        if not isinstance(secret, str) or not secret:
            raise BackendError("Stripe's answer held no connection token", unreachable=True)
        logger.debug("created a connection token%s", f" for {self._location}" if self._location else "")
        return secret

    def client_secret(self, payment_intent: str) -> str:
        intent = self._call("PaymentIntent", lambda: self._intents.retrieve(payment_intent))
        secret = getattr(intent, "client_secret", None)
        if not isinstance(secret, str) or not secret:
            raise BackendError(f"Stripe's answer held no client secret for {payment_intent}", unreachable=True)
        return secret

    def _call(self, what: str, send: Any) -> Any:
        for wait in RETRY_AFTER_S:
            try:
                return self._call_once(what, send)
            except BackendError as error:
                if not error.unreachable:
                    raise
            time.sleep(wait)  # in the reader's thread: Stripe asked for room, or did not answer
        return self._call_once(what, send)

    def _call_once(self, what: str, send: Any) -> Any:
        import stripe

        with self._pace:  # paced: a device asking in a loop must not spend the account's rate limit
            wait = self._last_sent + self._gap_s - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._last_sent = time.monotonic()
        try:
            return send()
        except stripe.APIConnectionError as error:
            why = f"no answer from Stripe for the {what} ({error.user_message})"
            raise BackendError(why, unreachable=True) from None
        except stripe.StripeError as error:
            message = error.user_message or type(error).__name__
            status = error.http_status or 0
            raise BackendError(
                f"Stripe refused the {what}: {message}", unreachable=status >= 500 or status == 429
            ) from None
