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
    payment_intent: str | None = None  # the PaymentIntent Stripe answered with, when it did


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

    def forward(
        self, token: str, offline_ref: str, amount: int, currency: str, payment_method: str, metadata: dict[str, str]
    ) -> SdkAnswer:
        """The SDK forwarding a payment it stored offline: the PaymentIntent is created and confirmed,
        under `offline_ref` as the idempotency key (a forward repeated after a lost answer or a restart
        makes no second PaymentIntent)."""
        return self._call(
            token,
            lambda c: c.raw_request(
                "post",
                "/v1/terminal/sdk/payment_intents",
                amount=amount,
                currency=currency,
                payment_method=payment_method,
                metadata=metadata,
                idempotency_key=offline_ref,
            ),
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
            status, intent_id = _field(intent, "status"), _field(intent, "id")
            code = (error.error.code if error.error is not None else None) or "stripe_error"
            return SdkAnswer(status, code, error.user_message or str(error), intent_id)
        if hasattr(answer, "body") and isinstance(answer.body, str):  # raw_request answers a StripeResponse
            import json

            answer = json.loads(answer.body)
        return SdkAnswer(_field(answer, "status"), payment_intent=_field(answer, "id"))


def _field(obj: Any, name: str) -> str | None:
    value = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
    return value if isinstance(value, str) else None
