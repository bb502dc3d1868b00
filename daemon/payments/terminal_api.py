"""Stripe's Terminal Readers API for the smart-reader driver (drivers/reader/stripe_terminal.py),
through stripe-python configured as the gateway's (timeouts, retries, maybe an emulator).
Blocking: the driver calls it in a thread. Every failure becomes a TerminalError."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from readerhost.drivers.reader.base import Cart, RefundOrder
from readerhost.drivers.reader.stripe_terminal import ReaderView, TerminalError

from .gateway import GatewaySettings, stripe_client

if TYPE_CHECKING:
    import stripe

logger = logging.getLogger(__name__)


class StripeTerminalApi:
    def __init__(self, settings: GatewaySettings) -> None:
        self._readers = stripe_client(settings).v1.terminal.readers

    def retrieve(self, reader_id: str) -> ReaderView:
        return self._call("retrieve", lambda: self._readers.retrieve(reader_id))

    def register(self, registration_code: str, location: str | None, label: str | None) -> ReaderView:
        params: dict[str, Any] = {"registration_code": registration_code}
        if location:
            params["location"] = location
        if label:
            params["label"] = label
        return self._call("register", lambda: self._readers.create(params))  # type: ignore[arg-type]

    def process(self, reader_id: str, payment_intent: str, idempotency_key: str) -> ReaderView:
        return self._call(
            "process_payment_intent",
            lambda: self._readers.process_payment_intent(
                reader_id,
                # A kiosk's customer may change their mind at the reader (its cancel button).
                {"payment_intent": payment_intent, "process_config": {"enable_customer_cancellation": True}},
                {"idempotency_key": idempotency_key},
            ),
        )

    def cancel_action(self, reader_id: str) -> ReaderView:
        return self._call("cancel_action", lambda: self._readers.cancel_action(reader_id))

    def show_cart(self, reader_id: str, cart: Cart) -> ReaderView:
        shown: dict[str, Any] = {
            "currency": cart.currency,
            "line_items": [
                {"description": line.description, "amount": line.amount, "quantity": line.quantity}
                for line in cart.line_items
            ],
            "total": cart.total,
        }
        if cart.tax is not None:
            shown["tax"] = cart.tax
        return self._call(
            "set_reader_display",
            lambda: self._readers.set_reader_display(reader_id, {"type": "cart", "cart": shown}),  # type: ignore[typeddict-item]
        )

    def refund(self, reader_id: str, order: RefundOrder) -> ReaderView:
        return self._call(
            "refund_payment",
            lambda: self._readers.refund_payment(
                reader_id,
                {
                    "payment_intent": order.payment_intent,
                    "amount": order.amount,
                    "metadata": dict(order.metadata),
                    "refund_payment_config": {"enable_customer_cancellation": True},
                },
                {"idempotency_key": order.idempotency_key},
            ),
        )

    def _call(self, op: str, send: Any) -> ReaderView:
        import stripe

        try:
            reader = send()
        except stripe.APIConnectionError as error:
            logger.debug("stripe terminal %s: no answer: %s", op, error.user_message)
            raise TerminalError(f"no answer from Stripe ({error.user_message})", unreachable=True) from None
        except stripe.StripeError as error:
            message = error.user_message or str(error)
            logger.debug("stripe terminal %s: %s (%s)", op, message, error.code)
            # stripe-python reads no code from a 409: it means the key's first request is still in flight.
            code = error.code or ("idempotency_key_in_use" if error.http_status == 409 else None)
            raise TerminalError(message, code, unreachable=(error.http_status or 0) >= 500) from None
        try:
            return _view(reader)
        except (AttributeError, TypeError) as error:  # an answer we cannot read is no answer
            logger.warning("stripe terminal %s: unreadable reader in Stripe's answer: %r", op, error)
            raise TerminalError("Stripe's answer about the reader could not be read", unreachable=True) from None


def _view(reader: stripe.terminal.Reader) -> ReaderView:
    # A Stripe object raises AttributeError for a field its answer left out: read each with a default.
    action = getattr(reader, "action", None)
    process = getattr(action, "process_payment_intent", None)
    intent = getattr(process, "payment_intent", None)
    refund = getattr(action, "refund_payment", None)
    refund_metadata = getattr(refund, "metadata", None)
    refund_id = refund_metadata.get("refund_id") if refund_metadata is not None else None
    return ReaderView(
        id=reader.id,
        device_type=str(getattr(reader, "device_type", "unknown")),
        serial_number=getattr(reader, "serial_number", None),
        label=getattr(reader, "label", None),
        online=getattr(reader, "status", None) == "online",
        action_type=getattr(action, "type", None),
        action_status=getattr(action, "status", None),
        action_intent=intent if isinstance(intent, str) or intent is None else getattr(intent, "id", None),
        failure_code=getattr(action, "failure_code", None),
        failure_message=getattr(action, "failure_message", None),
        action_refund_id=refund_id if isinstance(refund_id, str) else None,
    )
