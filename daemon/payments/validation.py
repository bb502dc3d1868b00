"""Checks on what a POS asks for, before anything is stored or sent to Stripe.

Each failure names the field at fault, so the API can answer `INVALID_PARAMS` with `data.field`.
The limits are Stripe's (metadata, amounts, currencies) or the POS protocol's (order ids).
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

from readerhost.drivers.reader.base import Cart, CartLine

from . import currencies
from .model import CaptureMode, OfflineMode, Payment, PaymentRequest, intent_of_client_secret

ORDER_ID = re.compile(r"[A-Za-z0-9._:-]{1,200}")
RESERVED_METADATA = ("order_id", "terminal_id", "payment_id")  # the daemon sets these on every PaymentIntent


def reserved_metadata(payment: Payment, terminal_id: str) -> dict[str, str]:
    """RESERVED_METADATA's values for `payment`: on every PaymentIntent made for it, the host's or (when
    it forwards a payment it stored offline) a reader's SDK's."""
    return {"order_id": payment.order_id, "terminal_id": terminal_id, "payment_id": payment.payment_id}


METADATA_MAX_KEYS = 50 - len(RESERVED_METADATA)
METADATA_KEY_MAX = 40
METADATA_VALUE_MAX = 500
DESCRIPTION_MAX = 1000


class InvalidRequest(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def client_id(params: dict[str, Any], name: str) -> str:
    """An id the POS chooses (order_id, refund_id, increment_id), or InvalidRequest naming it."""
    value = params.get(name)
    if not isinstance(value, str) or not ORDER_ID.fullmatch(value):
        raise InvalidRequest(name, f"{name} must be 1-200 characters of A-Z a-z 0-9 . _ : -")
    return value


def payment_request(params: dict[str, Any]) -> PaymentRequest:
    """A PaymentRequest from payment.start's parameters, or InvalidRequest naming the field.
    Their names are the API's method table's to check (daemon/api/methods.py)."""
    order_id = client_id(params, "order_id")
    currency = params.get("currency")
    if not isinstance(currency, str) or currency not in currencies.SUPPORTED:
        raise InvalidRequest("currency", "currency must be a lowercase ISO 4217 code that Stripe supports, e.g. usd")
    amount = params.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise InvalidRequest("amount", "amount must be a positive integer in the currency's minor unit")
    minimum = currencies.MINIMUM_AMOUNT.get(currency, 1)
    if amount < minimum:
        raise InvalidRequest(
            "amount", f"amount is below Stripe's minimum of {currencies.format_amount(minimum, currency)}"
        )
    if amount > currencies.MAXIMUM_AMOUNT:
        raise InvalidRequest(
            "amount",
            f"amount is above Stripe's maximum of {currencies.format_amount(currencies.MAXIMUM_AMOUNT, currency)}",
        )
    description = params.get("description")
    if description is not None and (not isinstance(description, str) or len(description) > DESCRIPTION_MAX):
        raise InvalidRequest("description", f"description must be a string of at most {DESCRIPTION_MAX} characters")
    capture = _choice(params, "capture", CaptureMode, CaptureMode.MANUAL)
    offline = _choice(params, "offline", OfflineMode, OfflineMode.REQUIRE_ONLINE)
    confirm = params.get("confirm", False)
    if not isinstance(confirm, bool):
        raise InvalidRequest("confirm", "confirm must be true or false")
    secret = params.get("payment_intent_client_secret")
    if secret is not None and (not isinstance(secret, str) or intent_of_client_secret(secret) is None):
        raise InvalidRequest("payment_intent_client_secret", "not a PaymentIntent client secret (pi_..._secret_...)")
    flexible = {name: params.get(name, False) for name in ("incremental", "extended")}
    for name, value in flexible.items():
        if not isinstance(value, bool):
            raise InvalidRequest(name, f"{name} must be true or false")
    request = PaymentRequest(
        incremental=flexible["incremental"],
        extended=flexible["extended"],
        tipping=_tipping(params.get("tipping"), amount),
        order_id=order_id,
        amount=amount,
        currency=currency,
        description=description,
        metadata=metadata(params.get("metadata", {})),
        capture=capture,
        confirm=confirm,
        offline=offline,
        payment_intent_client_secret=secret,
    )
    _check_flexible(request)
    return request


def _check_flexible(request: PaymentRequest) -> None:
    """payment.start's `incremental` and `extended` (1.4) ask Stripe for more than a plain hold; refused
    where they cannot mean anything (docs/payments.md, "Flexible authorisations")."""
    for name in ("incremental", "extended"):
        if not getattr(request, name):
            continue
        if request.capture is CaptureMode.AUTOMATIC:
            raise InvalidRequest(name, f"{name} needs capture: manual (an automatic capture holds nothing)")
        if request.offline is not OfflineMode.REQUIRE_ONLINE:
            raise InvalidRequest(
                name, f"{name} needs offline: require_online (Stripe increments and extends only online payments)"
            )
        if request.payment_intent_client_secret is not None:
            raise InvalidRequest(
                name,
                f"{name} is asked on the PaymentIntent's create, and with payment_intent_client_secret readerhost "
                "does not create it",
            )


def _tipping(value: object, amount: int) -> int | None:
    """payment.start's `tipping: {amount_eligible}` (1.3): the amount the reader suggests tips on."""
    if value is None:
        return None
    eligible = value.get("amount_eligible") if isinstance(value, dict) else None
    if not isinstance(value, dict) or set(value) != {"amount_eligible"} or type(eligible) is not int:
        raise InvalidRequest("tipping", "tipping must be {amount_eligible: an integer in the currency's minor unit}")
    if not 0 < eligible <= amount:
        raise InvalidRequest("tipping.amount_eligible", f"amount_eligible must be 1 to the amount, {amount}")
    return eligible


def metadata(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        raise InvalidRequest("metadata", "metadata must be an object of string keys and string values")
    if len(value) > METADATA_MAX_KEYS:
        raise InvalidRequest("metadata", f"metadata may have at most {METADATA_MAX_KEYS} keys")
    for key, item in value.items():
        if key in RESERVED_METADATA:
            raise InvalidRequest(f"metadata.{key}", f"metadata key {key!r} is set by readerhost itself")
        if not key or len(key) > METADATA_KEY_MAX or "[" in key or "]" in key:
            raise InvalidRequest(
                f"metadata.{key}", f"metadata keys must be 1-{METADATA_KEY_MAX} characters without [ or ]"
            )
        if not isinstance(item, str) or len(item) > METADATA_VALUE_MAX:
            raise InvalidRequest(
                f"metadata.{key}", f"metadata values must be strings of at most {METADATA_VALUE_MAX} characters"
            )
    return dict(value)


_Choice = TypeVar("_Choice", CaptureMode, OfflineMode)


def _choice(params: dict[str, Any], name: str, kind: type[_Choice], default: _Choice) -> _Choice:
    value = params.get(name, default.value)
    try:
        return kind(value)
    except ValueError:
        raise InvalidRequest(name, f"{name} must be one of {', '.join(m.value for m in kind)}") from None


CART_ITEMS_MAX = 100
CART_TEXT_MAX = 100


def cart(params: dict[str, Any]) -> Cart:
    """reader.display_cart's parameters: a cart for a smart reader's screen (Stripe's limits).
    Their names are the API's method table's to check (daemon/api/methods.py)."""
    currency = params.get("currency")
    if not isinstance(currency, str) or currency not in currencies.SUPPORTED:
        raise InvalidRequest("currency", "currency must be a lowercase ISO 4217 code that Stripe supports, e.g. usd")
    items = params.get("line_items")
    if not isinstance(items, list) or not 1 <= len(items) <= CART_ITEMS_MAX:
        raise InvalidRequest("line_items", f"line_items must be a list of 1 to {CART_ITEMS_MAX} items")
    lines: list[CartLine] = []
    for index, item in enumerate(items):
        where = f"line_items[{index}]"
        if not isinstance(item, dict) or set(item) - {"description", "amount", "quantity"}:
            raise InvalidRequest(where, f"{where} must be an object with description, amount and quantity")
        description, amount, quantity = item.get("description"), item.get("amount"), item.get("quantity", 1)
        if not isinstance(description, str) or not 0 < len(description) <= CART_TEXT_MAX:
            raise InvalidRequest(f"{where}.description", f"description must be 1 to {CART_TEXT_MAX} characters")
        if type(amount) is not int:
            raise InvalidRequest(f"{where}.amount", "amount must be an integer in the currency's minor unit")
        if type(quantity) is not int or quantity < 1:
            raise InvalidRequest(f"{where}.quantity", "quantity must be a whole number of at least 1")
        lines.append(CartLine(description, amount, quantity))
    tax = params.get("tax")
    if tax is not None and (type(tax) is not int or tax < 0):
        raise InvalidRequest("tax", "tax must be a non-negative integer in the currency's minor unit")
    total = params.get("total")
    if type(total) is not int or total < 0:
        raise InvalidRequest("total", "total must be a non-negative integer in the currency's minor unit")
    return Cart(currency, tuple(lines), tax, total)
