"""The parameters each POS method sends, built from the Python arguments of the client's method.

Each builder's arguments are named as the parameters they send, and its docstring is the method's
(see methods.PosMethods). Pure functions, no I/O.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from typing import Any

from .wire import TOPICS

Timestamp = str | datetime.datetime


def rfc3339(value: Timestamp) -> str:
    """A time as the protocol wants it; a datetime must carry its time zone."""
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        raise ValueError("a datetime sent to readerhostd needs a time zone (e.g. datetime.now(UTC))")
    return value.isoformat()


def status() -> dict[str, Any]:
    """status.get: the daemon, its reader, Stripe, the queue."""
    return {}


def hello() -> dict[str, Any]:
    """session.hello: the banner again, as an answer (protocol 1.5)."""
    return {}


def start_payment(order_id: str, amount: int, currency: str = "usd", **options: Any) -> dict[str, Any]:
    """payment.start; options: description, metadata, capture, confirm, offline, payment_intent_client_secret,
    tipping ({"amount_eligible": n}, protocol 1.3), incremental and extended (booleans, protocol 1.4)."""
    return {"order_id": order_id, "amount": amount, "currency": currency, **options}


def get_payment(payment_id: str | None = None, order_id: str | None = None) -> dict[str, Any]:
    """payment.get, by exactly one of payment_id and order_id."""
    if (payment_id is None) == (order_id is None):
        raise ValueError("give exactly one of payment_id and order_id")
    return {"payment_id": payment_id} if payment_id is not None else {"order_id": order_id}


def list_payments(
    states: Iterable[str] | None = None,
    since: Timestamp | None = None,
    limit: int | None = None,
    capture_before_lt: Timestamp | None = None,
    order_id: str | None = None,
) -> dict[str, Any]:
    """payment.list: the payments, newest first; `capture_before_lt` (1.3): only those whose
    authorisation must be captured before that time; `order_id` (1.4): only that order's attempts."""
    params: dict[str, Any] = {}
    if order_id is not None:
        params["order_id"] = order_id
    if capture_before_lt is not None:
        params["capture_before_lt"] = rfc3339(capture_before_lt)
    if states is not None:
        params["states"] = list(states)
    if since is not None:
        params["since"] = rfc3339(since)
    if limit is not None:
        params["limit"] = limit
    return params


def confirm(payment_id: str) -> dict[str, Any]:
    """payment.confirm: go ahead with the card read (a payment started with confirm)."""
    return {"payment_id": payment_id}


def collect_again(payment_id: str) -> dict[str, Any]:
    """payment.collect_again: another card for the same PaymentIntent."""
    return {"payment_id": payment_id}


def capture(payment_id: str, amount: int | None = None) -> dict[str, Any]:
    """payment.capture, of the whole authorisation or of `amount`."""
    return {"payment_id": payment_id} if amount is None else {"payment_id": payment_id, "amount": amount}


def cancel(payment_id: str, reason: str | None = None) -> dict[str, Any]:
    """payment.cancel; reason: requested_by_customer (the daemon's default), abandoned, duplicate, fraudulent."""
    return {"payment_id": payment_id} if reason is None else {"payment_id": payment_id, "reason": reason}


def close(order_id: str, paid_by: str = "other") -> dict[str, Any]:
    """payment.close (1.4): the order was paid outside readerhost (paid_by: other); no card payment follows."""
    return {"order_id": order_id, "paid_by": paid_by}


def refund(
    payment_id: str,
    refund_id: str,
    amount: int | None = None,
    reason: str | None = None,
    at_reader: bool | None = None,
) -> dict[str, Any]:
    """payment.refund: give back `amount` (default: all that is left) of a captured payment, once per
    `refund_id`; reason: duplicate, fraudulent, requested_by_customer; at_reader: with the card presented."""
    built: dict[str, Any] = {"payment_id": payment_id, "refund_id": refund_id}
    optional = {"amount": amount, "reason": reason, "at_reader": at_reader}
    built.update({name: value for name, value in optional.items() if value is not None})
    return built


def increment(payment_id: str, amount: int, increment_id: str) -> dict[str, Any]:
    """payment.increment (protocol 1.4): raise an authorised payment's hold to `amount`, the new total,
    once per `increment_id`; Stripe's answer comes as an increment.updated event."""
    return {"payment_id": payment_id, "amount": amount, "increment_id": increment_id}


def reconcile(
    completed_order_ids: Iterable[str] | None = None,
    since: Timestamp | None = None,
    until: Timestamp | None = None,
    dry_run: bool = True,
    unattended: bool = False,
) -> dict[str, Any]:
    """reconcile.run: the daemon's payments against Stripe's and the orders the POS completed;
    `unattended` (1.4): what its POS left authorised follows the daemon's [reconcile] unattended."""
    params: dict[str, Any] = {"dry_run": dry_run}
    if unattended:
        params["unattended"] = True
    if completed_order_ids is not None:
        params["completed_order_ids"] = list(completed_order_ids)
    if since is not None:
        params["since"] = rfc3339(since)
    if until is not None:
        params["until"] = rfc3339(until)
    return params


def subscribe(topics: Iterable[str] | None = None) -> dict[str, Any]:
    """events.subscribe (all topics by default); returns the snapshot. Events then arrive on events()."""
    return {"topics": list(TOPICS if topics is None else topics)}


def show(lines: Iterable[str], ttl_s: float | None = None) -> dict[str, Any]:
    """display.show: idle text on the kiosk's screen, for ttl_s seconds (or until replaced)."""
    params: dict[str, Any] = {"lines": list(lines)}
    if ttl_s is not None:
        params["ttl_s"] = ttl_s
    return params


def present(card: str) -> dict[str, Any]:
    """reader.present: present a test card to the simulated reader (protocol 1.1)."""
    return {"card": card}


def display_cart(
    currency: str, line_items: Iterable[Mapping[str, Any]], total: int, tax: int | None = None
) -> dict[str, Any]:
    """reader.display_cart: the items {description, amount, quantity} on a Stripe smart reader's
    screen, between payments (protocol 1.2); amounts in minor units."""
    params: dict[str, Any] = {"currency": currency, "line_items": [dict(item) for item in line_items], "total": total}
    if tax is not None:
        params["tax"] = tax
    return params


def register_reader(registration_code: str, location: str | None = None, label: str | None = None) -> dict[str, Any]:
    """reader.register: register a Stripe smart reader with the code it shows, in a location (tml_...),
    and use it from now on (protocol 1.3; for root and the daemon's own user)."""
    params: dict[str, Any] = {"registration_code": registration_code}
    if location is not None:
        params["location"] = location
    if label is not None:
        params["label"] = label
    return params


def reader_locations() -> dict[str, Any]:
    """reader.locations: the Stripe account's Terminal locations a reader can be registered in (protocol 1.3)."""
    return {}


def pair_reader() -> dict[str, Any]:
    """reader.pair: bond with the Bluetooth reader, so that the daemon takes it (protocol 1.4; for root
    and the daemon's own user): {address, already_bonded, reader}."""
    return {}
