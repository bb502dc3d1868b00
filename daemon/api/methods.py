"""The protocol's methods: their table (METHODS, at the end) and their handlers.

A request's parameter names are checked against the table; each handler checks the values and
names the offending field; the service's refusals become application errors with their reason.
Nothing reaches the service that the contract does not allow.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Awaitable, Callable
from typing import Any

from readerhost.daemon.payments import validation
from readerhost.daemon.payments.attempts import closed_order_json
from readerhost.daemon.payments.events import Topic
from readerhost.daemon.payments.model import TERMINAL, PaidBy, RequestRefused, State
from readerhost.daemon.payments.store import StorageError
from readerhost.daemon.payments.validation import InvalidRequest

from .backends import DaemonStatus, Payments, ReaderOperations, Reconciling, TextDisplay
from .owners import PaymentOwners
from .protocol import METHOD_NOT_FOUND, RpcError
from .server import Client, is_technician
from .table import Method, Param

TOPICS = tuple(Topic)
MAX_LIST = 500
MAX_DISPLAY_LINES = 4
MAX_DISPLAY_LINE = 64
REGISTRATION_CODE = re.compile(r"[A-Za-z0-9_-]{1,100}")
LOCATION_ID = re.compile(r"tml_[A-Za-z0-9_]{1,100}")
MAX_LABEL = 5000  # Stripe's limit on a reader's label


class Methods:
    """The server's handler (ApiServer's `handler`): dispatches from METHODS, below."""

    def __init__(
        self,
        payments: Payments,
        reconciler: Reconciling,
        status: DaemonStatus,
        display: TextDisplay,
        reader: ReaderOperations,
        owners: PaymentOwners,
    ) -> None:
        self._payments = payments
        self._reconciler = reconciler
        self._status_view = status
        self._display_text = display
        self._reader = reader
        self._owners = owners

    async def __call__(self, client: Client, method: str, params: dict[str, Any]) -> Any:
        entry = BY_NAME.get(method)
        if entry is None:
            raise RpcError(METHOD_NOT_FOUND, f"no method {method!r}", {"reason": "METHOD_NOT_FOUND"})
        entry.refuse_unknown(params)
        try:
            return await entry.handler(self, client, params)
        except InvalidRequest as invalid:
            raise RpcError.invalid_params(invalid.field, invalid.message) from None
        except RequestRefused as refused:
            raise RpcError.app(refused.reason, refused.message, retryable=refused.retryable) from None
        except StorageError as error:
            raise RpcError.app("STORAGE_UNAVAILABLE", str(error), retryable=True) from None

    # -- methods ------------------------------------------------------------------------------

    async def _status(self, client: Client, params: dict[str, Any]) -> Any:
        return self._status_view.status()

    async def _hello(self, client: Client, params: dict[str, Any]) -> Any:
        return self._status_view.banner()

    async def _start(self, client: Client, params: dict[str, Any]) -> Any:
        payment = await self._payments.start(params)
        self._owners.started(payment.payment_id, client)
        return payment.to_json()

    async def _get(self, client: Client, params: dict[str, Any]) -> Any:
        payment_id = _optional_str(params, "payment_id")
        order_id = _optional_str(params, "order_id")
        if (payment_id is None) == (order_id is None):
            raise RpcError.invalid_params("payment_id", "give exactly one of payment_id and order_id")
        return self._payments.get(payment_id=payment_id, order_id=order_id).to_json()

    async def _list(self, client: Client, params: dict[str, Any]) -> Any:
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
        deadline = _timestamp(params, "capture_before_lt")
        order_id = _optional_str(params, "order_id")
        payments = self._payments.list(
            states=chosen, since=since, limit=limit, capture_before_lt=deadline, order_id=order_id
        )
        return {"payments": [p.to_json() for p in payments]}

    async def _confirm(self, client: Client, params: dict[str, Any]) -> Any:
        return (await self._payments.confirm(_payment_id(params))).to_json()

    async def _collect_again(self, client: Client, params: dict[str, Any]) -> Any:
        payment_id = _payment_id(params)
        payment = await self._payments.collect_again(payment_id)
        self._owners.collecting_again(payment_id, client)
        return payment.to_json()

    async def _capture(self, client: Client, params: dict[str, Any]) -> Any:
        amount = params.get("amount")
        if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int)):
            raise RpcError.invalid_params("amount", "amount must be an integer in the currency's minor unit")
        return (await self._payments.capture(_payment_id(params), amount)).to_json()

    async def _cancel(self, client: Client, params: dict[str, Any]) -> Any:
        reason = params.get("reason", "requested_by_customer")
        if not isinstance(reason, str):
            raise RpcError.invalid_params("reason", "reason must be a string")
        return (await self._payments.cancel(_payment_id(params), reason)).to_json()

    async def _close(self, client: Client, params: dict[str, Any]) -> Any:
        order_id = validation.client_id(params, "order_id")
        paid_by = params.get("paid_by")
        if paid_by not in tuple(PaidBy):
            raise RpcError.invalid_params("paid_by", f"paid_by must be one of {', '.join(PaidBy)}")
        closure, payments = self._payments.close_order(order_id, PaidBy(paid_by))
        return closed_order_json(closure, payments)

    async def _refund(self, client: Client, params: dict[str, Any]) -> Any:
        return (await self._payments.refund(params)).to_json()

    async def _increment(self, client: Client, params: dict[str, Any]) -> Any:
        return (await self._payments.increment(params)).to_json()

    async def _reconcile(self, client: Client, params: dict[str, Any]) -> Any:
        completed = params.get("completed_order_ids", [])
        if not isinstance(completed, list) or not all(isinstance(o, str) for o in completed):
            raise RpcError.invalid_params("completed_order_ids", "completed_order_ids must be a list of order ids")
        dry_run = params.get("dry_run", True)
        if not isinstance(dry_run, bool):
            raise RpcError.invalid_params("dry_run", "dry_run must be true or false")
        unattended = params.get("unattended", False)
        if not isinstance(unattended, bool):
            raise RpcError.invalid_params("unattended", "unattended must be true or false")
        report = await self._reconciler.run(
            completed_order_ids=completed,
            since=_timestamp(params, "since"),
            until=_timestamp(params, "until"),
            dry_run=dry_run,
            unattended=unattended,
        )
        return report.to_json()

    async def _subscribe(self, client: Client, params: dict[str, Any]) -> Any:
        topics = params.get("topics", list(TOPICS))
        if not isinstance(topics, list) or not topics or not all(t in TOPICS for t in topics):
            raise RpcError.invalid_params("topics", f"topics must be a non-empty list among {', '.join(TOPICS)}")
        client.topics = set(topics)
        active = self._payments.list(states=[s for s in State if s not in TERMINAL], limit=MAX_LIST)
        return {
            "snapshot": {
                "payments": [p.to_json() for p in active],
                "reader": self._status_view.reader_status(),
                "queue": self._status_view.queue_status(),
            }
        }

    async def _display(self, client: Client, params: dict[str, Any]) -> Any:
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
        self._display_text.show_text(lines, None if ttl is None else float(ttl))
        return {}

    async def _present(self, client: Client, params: dict[str, Any]) -> Any:
        card = params.get("card")
        if not isinstance(card, str):
            raise RpcError.invalid_params("card", "card must be a test card name, e.g. visa")
        self._reader.present_card(card)
        return {}

    async def _display_cart(self, client: Client, params: dict[str, Any]) -> Any:
        await self._reader.display_cart(validation.cart(params))
        return {}

    async def _register(self, client: Client, params: dict[str, Any]) -> Any:
        if not is_technician(client.peer):
            raise RpcError.app(
                "FORBIDDEN", "only root and the daemon's own user may register a reader (sudo readerhostctl ...)"
            )
        code = params.get("registration_code")
        if not isinstance(code, str) or not REGISTRATION_CODE.fullmatch(code):
            raise RpcError.invalid_params(
                "registration_code", "registration_code must be the code the reader shows (letters, digits, - and _)"
            )
        location = _optional_str(params, "location")
        if location is not None and not LOCATION_ID.fullmatch(location):
            raise RpcError.invalid_params("location", "location must be a Stripe Terminal location id, tml_...")
        label = _optional_str(params, "label")
        if label is not None and len(label) > MAX_LABEL:
            raise RpcError.invalid_params("label", f"label must be at most {MAX_LABEL} characters")
        return {"reader": await self._reader.register(code, location, label)}

    async def _locations(self, client: Client, params: dict[str, Any]) -> Any:
        return {"locations": await self._reader.locations()}

    async def _pair(self, client: Client, params: dict[str, Any]) -> Any:
        if not is_technician(client.peer):
            raise RpcError.app(
                "FORBIDDEN", "only root and the daemon's own user may pair a reader (sudo readerhostctl ...)"
            )
        return await self._reader.pair()


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


# -- the table ------------------------------------------------------------------------------------

Handler = Callable[[Methods, Client, dict[str, Any]], Awaitable[Any]]
_PAYMENT_ID = Param("payment_id", "string", "the payment, as payment.start answered it", required=True)
_A_TIME = "RFC 3339, with a time zone"

METHODS: tuple[Method[Handler], ...] = (
    Method("status.get", "The daemon, its reader, Stripe, the queue and the offline payments.", (), Methods._status),
    Method("session.hello", "The banner (protocol, daemon, boot_id, mode), as an answer (1.5).", (), Methods._hello),
    Method(
        "payment.start",
        "The order's live or successful payment, else a new one (its next attempt); progress comes as events.",
        (
            Param("order_id", "string", "the POS's order: 1-200 of A-Z a-z 0-9 . _ : -", required=True),
            Param("amount", "integer", "in the currency's minor unit", required=True),
            Param("currency", "string", "lowercase ISO 4217, e.g. usd", required=True),
            Param("description", "string", "shown in Stripe, at most 1000 characters"),
            Param("metadata", "object", "string keys to string values (order_id, terminal_id, payment_id reserved)"),
            Param("capture", "string", "manual (the default) or automatic"),
            Param("confirm", "boolean", "wait for payment.confirm once the card is read (default false)"),
            Param("offline", "string", "require_online (the default) or prefer_online"),
            Param("payment_intent_client_secret", "string", "take the payment on this existing PaymentIntent"),
            Param("tipping", "object", "{amount_eligible}: the reader offers a tip on this amount (1.3)"),
            Param("incremental", "boolean", "ask Stripe for incremental authorisation support (1.4; default false)"),
            Param("extended", "boolean", "ask Stripe for an extended authorisation window (1.4; default false)"),
        ),
        Methods._start,
    ),
    Method(
        "payment.get",
        "One payment, by exactly one of payment_id and order_id.",
        (Param("payment_id", "string", "the payment"), Param("order_id", "string", "its order (the latest attempt)")),
        Methods._get,
    ),
    Method(
        "payment.list",
        "The payments, newest first.",
        (
            Param("states", "array", "only payments in these states"),
            Param("since", "string", f"only payments created at or after this time ({_A_TIME})"),
            Param("limit", "integer", f"at most this many, 1 to {MAX_LIST} (default 100)"),
            Param("capture_before_lt", "string", f"only payments to capture before this time ({_A_TIME}; 1.3)"),
            Param("order_id", "string", "only this order's payments: its attempts (1.4)"),
        ),
        Methods._list,
    ),
    Method("payment.confirm", "Go ahead with the card read (awaiting_confirmation).", (_PAYMENT_ID,), Methods._confirm),
    Method(
        "payment.collect_again",
        "Another card on the same PaymentIntent, after a decline or a reader error.",
        (_PAYMENT_ID,),
        Methods._collect_again,
    ),
    Method(
        "payment.capture",
        "Capture an authorised payment, once durably queued.",
        (_PAYMENT_ID, Param("amount", "integer", "at most the authorised amount (default: all of it)")),
        Methods._capture,
    ),
    Method(
        "payment.cancel",
        "Cancel a payment that is not captured; stops a collection.",
        (
            _PAYMENT_ID,
            Param("reason", "string", "requested_by_customer (the default), abandoned, duplicate or fraudulent"),
        ),
        Methods._cancel,
    ),
    Method(
        "payment.close",
        "Record an order as paid outside readerhost (cash, a voucher): no card payment follows (1.4).",
        (
            Param("order_id", "string", "the POS's order", required=True),
            Param("paid_by", "string", "how it was paid: other", required=True),
        ),
        Methods._close,
    ),
    Method(
        "payment.refund",
        "Give back part or all of a captured payment, once (per refund_id); progress comes as refund.updated events.",
        (
            _PAYMENT_ID,
            Param("refund_id", "string", "the POS's id of this refund: 1-200 of A-Z a-z 0-9 . _ : -", required=True),
            Param("amount", "integer", "at most what is left to refund (default: all of it)"),
            Param("reason", "string", "duplicate, fraudulent or requested_by_customer"),
            Param("at_reader", "boolean", "with the card presented at the reader (always for Interac; default false)"),
        ),
        Methods._refund,
    ),
    Method(
        "payment.increment",
        "Raise an authorised payment's hold to a new total, once (per increment_id); the answer comes as "
        "increment.updated events (1.4).",
        (
            _PAYMENT_ID,
            Param("amount", "integer", "the new total to hold, above what is held now", required=True),
            Param(
                "increment_id", "string", "the POS's id of this increment: 1-200 of A-Z a-z 0-9 . _ : -", required=True
            ),
        ),
        Methods._increment,
    ),
    Method(
        "reconcile.run",
        "The daemon's payments against Stripe's and the orders the POS completed.",
        (
            Param("completed_order_ids", "array", "the orders the POS completed"),
            Param("since", "string", f"from this time ({_A_TIME})"),
            Param("until", "string", f"to this time ({_A_TIME})"),
            Param("dry_run", "boolean", "only report what would be done (default true)"),
            Param("unattended", "boolean", "what its POS left authorised follows [reconcile] unattended (1.4)"),
        ),
        Methods._reconcile,
    ),
    Method(
        "events.subscribe",
        "Events on these topics from now on; answers with a snapshot of the active payments, reader and queue.",
        (Param("topics", "array", f"a non-empty subset of {', '.join(TOPICS)} (default: all)"),),
        Methods._subscribe,
    ),
    Method(
        "display.show",
        "Idle text on the kiosk's screen.",
        (
            Param(
                "lines", "array", f"at most {MAX_DISPLAY_LINES} strings of at most {MAX_DISPLAY_LINE}", required=True
            ),
            Param("ttl_s", "number", "seconds until it is cleared (default: until replaced)"),
        ),
        Methods._display,
    ),
    Method(
        "reader.present",
        "Present a test card to the simulated reader.",
        (Param("card", "string", "a test card name, e.g. visa", required=True),),
        Methods._present,
    ),
    Method(
        "reader.display_cart",
        "The items being rung up, on a Stripe smart reader's screen, between payments.",
        (
            Param("currency", "string", "lowercase ISO 4217, e.g. usd", required=True),
            Param("line_items", "array", "1 to 100 of {description, amount, quantity (default 1)}", required=True),
            Param("tax", "integer", "in the currency's minor unit"),
            Param("total", "integer", "in the currency's minor unit", required=True),
        ),
        Methods._display_cart,
    ),
    Method(
        "reader.register",
        "Register a Stripe smart reader with the code it shows and use it from now on (root and the daemon's user).",
        (
            Param(
                "registration_code",
                "string",
                "the code the reader shows (simulated-wpe: a simulated one)",
                required=True,
            ),
            Param("location", "string", "the Terminal location to put it in, tml_..."),
            Param("label", "string", "its name in the Dashboard (default readerhost)"),
        ),
        Methods._register,
    ),
    Method(
        "reader.locations",
        "The Stripe account's Terminal locations a smart reader can be registered in.",
        (),
        Methods._locations,
    ),
    Method(
        "reader.pair",
        "Bond with the Bluetooth reader (LE Secure Connections) so the daemon takes it (root, the daemon's user).",
        (),
        Methods._pair,
    ),
)
BY_NAME = {method.name: method for method in METHODS}
