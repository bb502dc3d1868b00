"""Stripe's Terminal Readers API for the smart-reader driver (drivers/reader/stripe_terminal.py),
through stripe-python configured as the gateway's (timeouts, retries, maybe an emulator).
Blocking: the driver calls it in a thread. Every failure becomes a TerminalError."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from readerhost.drivers.reader.base import Cart, CollectedPaymentMethod, Location, RefundOrder
from readerhost.drivers.reader.stripe_terminal import ReaderView, TerminalError

from .gateway import GatewaySettings, stripe_client

if TYPE_CHECKING:
    import stripe

logger = logging.getLogger(__name__)


class StripeTerminalApi:
    def __init__(self, settings: GatewaySettings) -> None:
        terminal = stripe_client(settings).v1.terminal
        self._readers = terminal.readers
        self._locations = terminal.locations

    def retrieve(self, reader_id: str) -> ReaderView:
        return self._call("retrieve", lambda: self._readers.retrieve(reader_id))

    def register(self, registration_code: str, location: str | None, label: str | None) -> ReaderView:
        params: dict[str, Any] = {"registration_code": registration_code}
        if location:
            params["location"] = location
        if label:
            params["label"] = label
        return self._call("register", lambda: self._readers.create(params))  # type: ignore[arg-type]

    def locations(self) -> list[Location]:
        """Every Terminal location of the account (all pages)."""
        import stripe

        try:
            found = [_location(location) for location in self._locations.list({"limit": 100}).auto_paging_iter()]
        except stripe.APIConnectionError as error:
            raise TerminalError(f"no answer from Stripe ({error.user_message})", unreachable=True) from None
        except stripe.StripeError as error:
            message = error.user_message or str(error)
            raise TerminalError(message, error.code, unreachable=(error.http_status or 0) >= 500) from None
        except (AttributeError, KeyError, TypeError) as error:
            logger.warning("stripe terminal locations: unreadable answer: %r", error)
            raise TerminalError("Stripe's list of locations could not be read", unreachable=True) from None
        logger.debug("stripe terminal locations -> %d", len(found))
        return found

    def process(self, reader_id: str, payment_intent: str, idempotency_key: str, tipping: int | None) -> ReaderView:
        params: Any = {"payment_intent": payment_intent, "process_config": _card_config(tipping)}
        return self._call(
            "process_payment_intent",
            lambda: self._readers.process_payment_intent(reader_id, params, {"idempotency_key": idempotency_key}),
        )

    def collect(self, reader_id: str, payment_intent: str, idempotency_key: str, tipping: int | None) -> ReaderView:
        params: Any = {"payment_intent": payment_intent, "collect_config": _card_config(tipping)}
        return self._call(
            "collect_payment_method",
            lambda: self._readers.collect_payment_method(reader_id, params, {"idempotency_key": idempotency_key}),
        )

    def confirm(self, reader_id: str, payment_intent: str, idempotency_key: str) -> ReaderView:
        return self._call(
            "confirm_payment_intent",
            lambda: self._readers.confirm_payment_intent(
                reader_id, {"payment_intent": payment_intent}, {"idempotency_key": idempotency_key}
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


def _card_config(tipping: int | None) -> dict[str, Any]:
    """A card action's configuration: a kiosk's customer may change their mind at the reader (its
    cancel button); a tip is offered only when the POS asked for one, on the amount it named."""
    config: dict[str, Any] = {"enable_customer_cancellation": True}
    if tipping is None:
        config["skip_tipping"] = True
    else:
        config["tipping"] = {"amount_eligible": tipping}
    return config


def _view(reader: stripe.terminal.Reader) -> ReaderView:
    # A Stripe object raises AttributeError for a field its answer left out: read each with a default.
    action = getattr(reader, "action", None)
    kind = getattr(action, "type", None)
    detail = getattr(action, kind, None) if isinstance(kind, str) and kind != "type" else None
    intent = getattr(detail, "payment_intent", None)
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
        collected=_collected(getattr(detail, "payment_method", None)) if kind == "collect_payment_method" else None,
        action_refund_id=refund_id if isinstance(refund_id, str) else None,
    )


def _collected(method: Any) -> CollectedPaymentMethod | None:
    """What may be kept of the card a collect_payment_method action read (its PaymentMethod's
    card_present or interac_present: brand, last4, read method, wallet type, network)."""
    if method is None or isinstance(method, str):
        return None
    kind = getattr(method, "type", None)
    card = getattr(method, kind, None) if kind in ("card_present", "interac_present") else None
    if card is None or not getattr(card, "last4", None):
        return None
    wallet = getattr(card, "wallet", None)
    networks = getattr(card, "networks", None)
    available = getattr(networks, "available", None) or []
    network = getattr(networks, "preferred", None) or (available[0] if len(available) == 1 else None)
    if network is None and kind == "interac_present":
        network = "interac"
    return CollectedPaymentMethod(
        reference=str(method.id),
        brand=str(getattr(card, "brand", None) or "unknown"),
        last4=str(card.last4),
        read_method=str(getattr(card, "read_method", None) or "unknown"),
        wallet=getattr(wallet, "type", None),
        network=network,
    )


def _location(location: stripe.terminal.Location) -> Location:
    address = getattr(location, "address", None)
    parts = ("line1", "line2", "city", "state", "postal_code", "country")
    return Location(
        id=location.id,
        display_name=str(getattr(location, "display_name", "")),
        # Only the parts Stripe has (a StripeObject raises AttributeError for what its answer left out).
        address={part: value for part in parts if isinstance(value := getattr(address, part, None), str) and value},
    )
