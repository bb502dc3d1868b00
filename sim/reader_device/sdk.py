"""The reference device's stand-in for a Stripe Terminal SDK's calls to Stripe (protocol version 2).

A real bridge runs Stripe's SDK, which calls Stripe itself with the connection token its backend
gave it and the PaymentIntent's client secret. This does the same with the real stripe library,
the connection token as its bearer, against the Stripe emulator's model of those calls
(docs/stripe-emulator.md, "Connection tokens"): collect attaches the card the reader read, confirm
confirms it. Blocking: the device calls it in a thread. Neither secret is ever logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SdkAnswer:
    """What Stripe answered: the PaymentIntent's status (None when no answer came), and the error
    code of a refusal or decline."""

    status: str | None
    code: str | None = None
    message: str = ""


class SdkClient:
    def __init__(self, api_base: str, timeout_s: float = 10.0) -> None:
        self._api_base = api_base
        self._timeout_s = timeout_s

    def collect(self, token: str, payment_intent: str, client_secret: str, payment_method: str) -> SdkAnswer:
        """The SDK's collectPaymentMethod, once its reader has read the card."""
        path = f"/v1/terminal/sdk/payment_intents/{payment_intent}/collect"
        return self._call(
            token, lambda c: c.raw_request("post", path, client_secret=client_secret, payment_method=payment_method)
        )

    def confirm(self, token: str, payment_intent: str, client_secret: str) -> SdkAnswer:
        """The SDK's confirmPaymentIntent."""
        return self._call(
            token, lambda c: c.v1.payment_intents.confirm(payment_intent, {"client_secret": client_secret})
        )

    def _call(self, token: str, send: Any) -> SdkAnswer:
        import stripe

        client = stripe.StripeClient(
            token,
            base_addresses={"api": self._api_base},
            http_client=stripe.RequestsClient(timeout=(2.0, self._timeout_s)),
            max_network_retries=0,
        )
        try:
            answer = send(client)
        except stripe.APIConnectionError as error:
            return SdkAnswer(None, "stripe_unreachable", error.user_message or "no answer from Stripe")
        except stripe.StripeError as error:
            intent = getattr(error.error, "payment_intent", None) if error.error is not None else None
            status = getattr(intent, "status", None) if intent is not None else None
            if status is None and isinstance(intent, dict):
                status = intent.get("status")
            code = (error.error.code if error.error is not None else None) or "stripe_error"
            return SdkAnswer(status, code, error.user_message or str(error))
        status = answer.get("status") if isinstance(answer, dict) else getattr(answer, "status", None)
        if status is None and hasattr(answer, "body"):  # raw_request answers a StripeResponse
            import json

            status = json.loads(answer.body).get("status")
        return SdkAnswer(status if isinstance(status, str) else None)
