"""The protocol's methods: parameters checked at the edge, then handed to the payment service.

Each method validates its parameters and names the offending field; the service's refusals
become application errors with their reason; nothing reaches the service that the contract
does not allow.
"""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from readerhost.daemon.payments import validation
from readerhost.daemon.payments.model import State
from readerhost.daemon.payments.reconcile import Reconciler
from readerhost.daemon.payments.service import PaymentService, RequestRefused
from readerhost.daemon.payments.store import StorageError
from readerhost.daemon.payments.validation import InvalidRequest
from readerhost.drivers.reader.base import Cart

from .protocol import METHOD_NOT_FOUND, RpcError
from .server import Client

TOPICS = ("payment", "reader", "display", "queue", "system")
MAX_LIST = 500
MAX_DISPLAY_LINES = 4
MAX_DISPLAY_LINE = 64


class DaemonView(Protocol):
    """What the methods need of the running daemon besides the payment service."""

    def status(self) -> dict[str, Any]: ...

    def reader_status(self) -> dict[str, Any]: ...

    def queue_status(self) -> dict[str, Any]: ...

    def show_text(self, lines: list[str], ttl_s: float | None) -> None: ...

    def present_card(self, card: str) -> None: ...

    async def display_cart(self, cart: Cart) -> None: ...


Method = Callable[[Client, dict[str, Any]], Awaitable[Any]]


class Methods:
    def __init__(
        self, service: PaymentService, reconciler: Reconciler, daemon: DaemonView, owners: dict[str, int]
    ) -> None:
        self._service = service
        self._reconciler = reconciler
        self._daemon = daemon
        self._owners = owners  # payment_id -> the client number that started it
        self._table: dict[str, Method] = {
            "status.get": self._status,
            "payment.start": self._start,
            "payment.get": self._get,
            "payment.list": self._list,
            "payment.confirm": self._confirm,
            "payment.collect_again": self._collect_again,
            "payment.capture": self._capture,
            "payment.cancel": self._cancel,
            "reconcile.run": self._reconcile,
            "events.subscribe": self._subscribe,
            "display.show": self._display,
            "reader.present": self._present,
            "reader.display_cart": self._display_cart,
        }

    async def __call__(self, client: Client, method: str, params: dict[str, Any]) -> Any:
        handler = self._table.get(method)
        if handler is None:
            raise RpcError(METHOD_NOT_FOUND, f"no method {method!r}", {"reason": "METHOD_NOT_FOUND"})
        try:
            return await handler(client, params)
        except InvalidRequest as invalid:
            raise RpcError.invalid_params(invalid.field, invalid.message) from None
        except RequestRefused as refused:
            raise RpcError.app(refused.reason, refused.message, retryable=refused.retryable) from None
        except StorageError as error:
            raise RpcError.app("STORAGE_UNAVAILABLE", str(error), retryable=True) from None

    # -- methods ------------------------------------------------------------------------------

    async def _status(self, client: Client, params: dict[str, Any]) -> Any:
        _only(params)
        return self._daemon.status()

    async def _start(self, client: Client, params: dict[str, Any]) -> Any:
        payment = await self._service.start(params)
        self._owners.setdefault(payment.payment_id, client.number)
        return payment.to_json()

    async def _get(self, client: Client, params: dict[str, Any]) -> Any:
        _only(params, "payment_id", "order_id")
        payment_id = _optional_str(params, "payment_id")
        order_id = _optional_str(params, "order_id")
        if (payment_id is None) == (order_id is None):
            raise RpcError.invalid_params("payment_id", "give exactly one of payment_id and order_id")
        return self._service.get(payment_id=payment_id, order_id=order_id).to_json()

    async def _list(self, client: Client, params: dict[str, Any]) -> Any:
        _only(params, "states", "since", "limit")
        states = params.get("states")
        if states is not None:
            if not isinstance(states, list) or not all(isinstance(s, str) for s in states):
                raise RpcError.invalid_params("states", "states must be a list of payment states")
            try:
                chosen = [State(s) for s in states]
            except ValueError:
                raise RpcError.invalid_params("states", f"states must be among {', '.join(State)}") from None
        else:
            chosen = None
        since = _timestamp(params, "since")
        limit = params.get("limit", 100)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST:
            raise RpcError.invalid_params("limit", f"limit must be an integer from 1 to {MAX_LIST}")
        payments = self._service.list(states=chosen, since=since, limit=limit)
        return {"payments": [p.to_json() for p in payments]}

    async def _confirm(self, client: Client, params: dict[str, Any]) -> Any:
        _only(params, "payment_id")
        return (await self._service.confirm(_payment_id(params))).to_json()

    async def _collect_again(self, client: Client, params: dict[str, Any]) -> Any:
        _only(params, "payment_id")
        payment_id = _payment_id(params)
        payment = await self._service.collect_again(payment_id)
        self._owners[payment_id] = client.number
        return payment.to_json()

    async def _capture(self, client: Client, params: dict[str, Any]) -> Any:
        _only(params, "payment_id", "amount")
        amount = params.get("amount")
        if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int)):
            raise RpcError.invalid_params("amount", "amount must be an integer in the currency's minor unit")
        return (await self._service.capture(_payment_id(params), amount)).to_json()

    async def _cancel(self, client: Client, params: dict[str, Any]) -> Any:
        _only(params, "payment_id", "reason")
        reason = params.get("reason", "requested_by_customer")
        if not isinstance(reason, str):
            raise RpcError.invalid_params("reason", "reason must be a string")
        return (await self._service.cancel(_payment_id(params), reason)).to_json()

    async def _reconcile(self, client: Client, params: dict[str, Any]) -> Any:
        _only(params, "completed_order_ids", "since", "until", "dry_run")
        completed = params.get("completed_order_ids", [])
        if not isinstance(completed, list) or not all(isinstance(o, str) for o in completed):
            raise RpcError.invalid_params("completed_order_ids", "completed_order_ids must be a list of order ids")
        dry_run = params.get("dry_run", True)
        if not isinstance(dry_run, bool):
            raise RpcError.invalid_params("dry_run", "dry_run must be true or false")
        report = await self._reconciler.run(
            completed_order_ids=completed,
            since=_timestamp(params, "since"),
            until=_timestamp(params, "until"),
            dry_run=dry_run,
        )
        return report.to_json()

    async def _subscribe(self, client: Client, params: dict[str, Any]) -> Any:
        _only(params, "topics")
        topics = params.get("topics", list(TOPICS))
        if not isinstance(topics, list) or not topics or not all(t in TOPICS for t in topics):
            raise RpcError.invalid_params("topics", f"topics must be a non-empty list among {', '.join(TOPICS)}")
        client.topics = set(topics)
        active = self._service.list(
            states=[s for s in State if s not in (State.CAPTURED, State.CANCELED, State.FAILED)], limit=MAX_LIST
        )
        return {
            "snapshot": {
                "payments": [p.to_json() for p in active],
                "reader": self._daemon.reader_status(),
                "queue": self._daemon.queue_status(),
            }
        }

    async def _display(self, client: Client, params: dict[str, Any]) -> Any:
        _only(params, "lines", "ttl_s")
        lines = params.get("lines")
        if (
            not isinstance(lines, list)
            or len(lines) > MAX_DISPLAY_LINES
            or not all(isinstance(line, str) and len(line) <= MAX_DISPLAY_LINE for line in lines)
        ):
            raise RpcError.invalid_params(
                "lines", f"lines must be a list of at most {MAX_DISPLAY_LINES} strings of at most {MAX_DISPLAY_LINE}"
            )
        ttl = params.get("ttl_s")
        if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int | float) or ttl <= 0):
            raise RpcError.invalid_params("ttl_s", "ttl_s must be a positive number of seconds")
        self._daemon.show_text(lines, None if ttl is None else float(ttl))
        return {}

    async def _present(self, client: Client, params: dict[str, Any]) -> Any:
        _only(params, "card")
        card = params.get("card")
        if not isinstance(card, str):
            raise RpcError.invalid_params("card", "card must be a test card name, e.g. visa")
        self._daemon.present_card(card)
        return {}

    async def _display_cart(self, client: Client, params: dict[str, Any]) -> Any:
        await self._daemon.display_cart(validation.cart(params))
        return {}


def _only(params: dict[str, Any], *allowed: str) -> None:
    for name in params:
        if name not in allowed:
            raise RpcError.invalid_params(name, f"unknown parameter {name!r}")


def _optional_str(params: dict[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is not None and (not isinstance(value, str) or not value):
        raise RpcError.invalid_params(name, f"{name} must be a non-empty string")
    return value


def _payment_id(params: dict[str, Any]) -> str:
    value = _optional_str(params, "payment_id")
    if value is None:
        raise RpcError.invalid_params("payment_id", "payment_id is required")
    return value


def _timestamp(params: dict[str, Any], name: str) -> float | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise RpcError.invalid_params(name, f"{name} must be an RFC 3339 time, e.g. 2026-11-26T08:00:00Z")
    try:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise RpcError.invalid_params(name, f"{name} must be an RFC 3339 time, e.g. 2026-11-26T08:00:00Z") from None
    if moment.tzinfo is None:
        raise RpcError.invalid_params(name, f"{name} needs a time zone (Z or +hh:mm)")
    return moment.timestamp()
