"""Terminal Readers: Stripe's simulated smart readers, driven through the API (server-driven integration).

A reader takes one action at a time, and every payment action runs the same way: the command returns
at once with the action `in_progress`; `process_payment_intent`, `collect_payment_method` and
`refund_payment` first wait for a card, which the test helper `present_payment_method` hands them;
`confirm_payment_intent` needs none. After the reader's processing time (real time, on a timer) the
action ends `succeeded`, or `failed` with the error's code and message:

- process_payment_intent: the PaymentIntent confirmed through the same path as `/confirm` (a decline
  leaves it in `requires_payment_method`);
- collect_payment_method: the card attached, the PaymentIntent `requires_confirmation`;
- confirm_payment_intent: the attached card confirmed through the same path as `/confirm`;
- refund_payment: a refund of the charge (Interac only: the card must be presented).

An action still waiting for a card can be replaced by another or canceled; one being processed cannot
(`terminal_reader_busy`). Handlers run under the emulator's state lock; `complete` runs there too,
from the timer.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import (
    StripeError,
    intent_invalid_state,
    invalid_request,
    missing_param,
    no_such,
    reader_busy,
    reader_offline,
    reader_timeout,
    unknown_param,
)
from .forms import FormValue, Params, no_expansions
from .ids import new_id
from .journal import Journal
from .listing import cursors, list_limit, paginate
from .locations import LocationStore
from .payment_intents import Mutation, PaymentIntentStore, payment_method_json, validate_currency, validate_metadata
from .presentment import present
from .refunds import IN_PERSON, RefundRequest, RefundStore
from .testcards import PresentedCard
from .timers import Timers

LIST_URL = "/v1/terminal/readers"
# Registration codes that make simulated readers, and the device type each makes.
SIMULATED_DEVICES = {
    "simulated-wpe": "simulated_wisepos_e",
    "simulated-s700": "simulated_stripe_s700",
    "simulated-s710": "simulated_stripe_s710",
}
TIMEOUTS = ("before_apply", "after_apply")
MAX_PROCESSING_S = 300.0
CUSTOMER_CANCELED = "This action could not be completed due to an error on the card reader."
# Each payment action's per-transaction configuration parameter, and what it may hold.
CONFIGS = {
    "process_payment_intent": ("process_config", ("enable_customer_cancellation", "skip_tipping", "tipping")),
    "collect_payment_method": (
        "collect_config",
        ("allow_redisplay", "enable_customer_cancellation", "skip_tipping", "tipping"),
    ),
    "confirm_payment_intent": ("confirm_config", ("return_url",)),
    "refund_payment": ("refund_payment_config", ("enable_customer_cancellation",)),
}
WAITS_FOR_CARD = ("process_payment_intent", "collect_payment_method", "refund_payment")
TIPPING = ("process_payment_intent", "collect_payment_method")
ALLOW_REDISPLAY = ("always", "limited", "unspecified")
# The API version from which a failed action carries `api_error` (Stripe changelog 2026-05-27.dahlia,
# "Adds API error details to Terminal reader action failures").
API_ERROR_ADDED = "2026-05-27"


class ReaderControlError(ValueError):
    """A control request on a reader that cannot be carried out; `status` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class ReaderAction:
    token: int
    type: str
    payment_intent: str | None = None
    config: dict[str, Any] | None = None  # process_config, collect_config, ... as sent
    display: dict[str, Any] | None = None
    refund: RefundRequest | None = None
    api_version: str = ""
    status: str = "in_progress"
    failure_code: str | None = None
    failure_message: str | None = None
    api_error: dict[str, Any] | None = None
    presented: PresentedCard | None = None  # a card was presented: the reader is processing it
    tip: int = 0  # chosen by the customer on the reader (present_payment_method's amount_tip)
    result: dict[str, Any] | None = None  # what a succeeded action gives: the collected payment method, the refund
    processing_since: float = 0.0  # time.monotonic() of the presentation
    timer: threading.Timer | None = None

    @property
    def collecting(self) -> bool:
        """Waiting for a card."""
        return self.type in WAITS_FOR_CARD and self.status == "in_progress" and self.presented is None

    @property
    def processing(self) -> bool:
        """Working on a card (presented, or collected before for a confirmation): the reader is busy."""
        if self.status != "in_progress":
            return False
        return self.presented is not None or self.type == "confirm_payment_intent"

    @property
    def customer_can_cancel(self) -> bool:
        return bool((self.config or {}).get("enable_customer_cancellation"))

    def fail(self, code: str | None, message: str, api_error: dict[str, Any] | None = None) -> None:
        self.status, self.failure_code, self.failure_message = "failed", code, message
        self.api_error = api_error

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "failure_code": self.failure_code,
            "failure_message": self.failure_message,
            "status": self.status,
            "type": self.type,
        }
        if self.api_version >= API_ERROR_ADDED:
            body["api_error"] = self.api_error
        if self.type == "set_reader_display":
            body["set_reader_display"] = self.display
            return body
        detail: dict[str, Any] = {}
        if self.type == "refund_payment":
            assert self.refund is not None
            detail = {
                "amount": self.refund.amount,
                "charge": self.refund.charge,
                "metadata": dict(self.refund.metadata),
                "payment_intent": self.refund.payment_intent,
            }
            if self.result is not None:  # Stripe's 2023 description has no null here: absent until made
                detail["refund"] = self.result["refund"]
        else:
            detail["payment_intent"] = self.payment_intent
        if self.type == "collect_payment_method":
            detail["payment_method"] = (self.result or {}).get("payment_method")
        if self.config is not None:  # allow_redisplay goes onto the collected payment method, not the action
            detail[CONFIGS[self.type][0]] = {k: v for k, v in self.config.items() if k != "allow_redisplay"}
        body[self.type] = detail
        return body


@dataclass
class Reader:
    id: str
    seq: int
    created: int
    device_type: str
    label: str
    serial_number: str
    location: str | None
    metadata: dict[str, str]
    processing_s: float
    online: bool = True
    timeout: str | None = None  # the next command to the reader times out: before or after it applies
    action: ReaderAction | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "terminal.reader",
            "action": self.action.to_json() if self.action else None,
            "device_sw_version": "",
            "device_type": self.device_type,
            "ip_address": "0.0.0.0",  # noqa: S104 - what Stripe shows for a simulated reader
            "label": self.label,
            "last_seen_at": int(time.time() * 1000) if self.online else None,
            "livemode": False,
            "location": self.location,
            "metadata": dict(self.metadata),
            "serial_number": self.serial_number,
            "status": "online" if self.online else "offline",
        }

    def control_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "online": self.online,
            "timeout": self.timeout,
            "processing_s": self.processing_s,
            "action": self.action.to_json() if self.action else None,
        }


@dataclass
class ReaderStore:
    """The account's readers and what they are doing.

    `on_due(reader_id, token)` is called on a timer thread when a presented card has been processed;
    the emulator answers it by calling `complete` under its state lock.
    """

    payment_intents: PaymentIntentStore
    refunds: RefundStore
    journal: Journal
    timers: Timers
    on_due: Callable[[str, int], None]
    processing_s: float = 1.0
    locations: LocationStore | None = None  # a reader's location must be one of them
    readers: dict[str, Reader] = field(default_factory=dict)
    _seq: int = 0
    _changed: threading.Condition = field(default_factory=threading.Condition)

    # -- reading -------------------------------------------------------------------------------

    def get(self, reader_id: str) -> Reader:
        reader = self.readers.get(reader_id)
        if reader is None:
            raise no_such("terminal.reader", reader_id, param="reader")
        return reader

    def retrieve(self, reader_id: str, params: Params) -> Reader:
        reader = self.get(reader_id)
        no_expansions(params)
        params.reject_unknown()
        return reader

    def list(self, params: Params) -> dict[str, Any]:
        limit = list_limit(params)
        filters = {name: params.string(name) for name in ("device_type", "location", "serial_number", "status")}
        starting_after, ending_before = cursors(params)
        no_expansions(params)
        params.reject_unknown()
        ordered = sorted(
            (r for r in self.readers.values() if _matches(r.to_json(), filters)),
            key=lambda r: (r.created, r.seq),
            reverse=True,
        )
        page, has_more = paginate(
            ordered,
            limit,
            starting_after,
            ending_before,
            lambda cursor, _: self.get(cursor),
            lambda r: (r.created, r.seq),
        )
        return {"object": "list", "data": [r.to_json() for r in page], "has_more": has_more, "url": LIST_URL}

    def wait_settled(self, reader_id: str, timeout: float) -> bool:
        """Block until the reader has no action in progress (True), or `timeout` seconds pass (False)."""

        def settled() -> bool:
            reader = self.readers.get(reader_id)
            return reader is None or reader.action is None or reader.action.status != "in_progress"

        with self._changed:
            return self._changed.wait_for(settled, timeout)

    # -- the reader object ---------------------------------------------------------------------

    def create(self, params: Params, mutation: Mutation) -> Reader:
        code = params.required_string("registration_code")
        label = params.string("label", max_length=5000)
        location = params.string("location")
        metadata = validate_metadata(params.mapping("metadata") or {})
        no_expansions(params)
        params.reject_unknown()
        if location is not None and self.locations is not None:
            self.locations.get(location, param="location", status=400)  # named in the body: a 400, not a 404
        device_type = SIMULATED_DEVICES.get(code)
        if device_type is None:
            raise invalid_request(
                f"The registration code {code!r} is not valid. The emulator registers simulated readers only: "
                f"{', '.join(SIMULATED_DEVICES)}.",
                param="registration_code",
            )
        self._seq += 1
        reader = Reader(
            id=new_id("tmr"),
            seq=self._seq,
            created=mutation.now,
            device_type=device_type,
            label=label or code,
            serial_number=str(uuid.uuid4()),
            location=location,
            metadata=metadata,
            processing_s=self.processing_s,
        )
        self.readers[reader.id] = reader
        self._journal("reader.create", reader, mutation, "online", None, reader.metadata)
        return reader

    def update(self, reader_id: str, params: Params, mutation: Mutation) -> Reader:
        reader = self.get(reader_id)
        label = params.string("label", max_length=5000)
        metadata = params.mapping("metadata")
        no_expansions(params)
        params.reject_unknown()
        if label is not None:
            reader.label = label
        if metadata is not None:
            reader.metadata = validate_metadata({**reader.metadata, **metadata})
        self._journal("reader.update", reader, mutation, reader.to_json()["status"], None, reader.metadata)
        return reader

    def delete(self, reader_id: str, params: Params, mutation: Mutation) -> dict[str, Any]:
        reader = self.get(reader_id)
        params.reject_unknown()
        self._end(reader.action)
        del self.readers[reader_id]
        self._journal("reader.delete", reader, mutation, "deleted", None, reader.metadata)
        self._notify()
        return {"id": reader.id, "object": "terminal.reader", "deleted": True}

    # -- actions -------------------------------------------------------------------------------

    def process_payment_intent(self, reader_id: str, params: Params, mutation: Mutation) -> Reader:
        return self._payment_action("process_payment_intent", "requires_payment_method", reader_id, params, mutation)

    def collect_payment_method(self, reader_id: str, params: Params, mutation: Mutation) -> Reader:
        return self._payment_action("collect_payment_method", "requires_payment_method", reader_id, params, mutation)

    def confirm_payment_intent(self, reader_id: str, params: Params, mutation: Mutation) -> Reader:
        return self._payment_action("confirm_payment_intent", "requires_confirmation", reader_id, params, mutation)

    def refund_payment(self, reader_id: str, params: Params, mutation: Mutation) -> Reader:
        """An in-person refund: the reader waits for the card, then the charge is refunded."""
        reader = self.get(reader_id)
        request = self.refunds.request(params)
        config = _config(params, "refund_payment")
        no_expansions(params)
        params.reject_unknown()
        charge, amount = self.refunds.check(request, IN_PERSON)  # an unknown id first: a validation failure
        self._reachable(reader)
        request = RefundRequest(charge.id, charge.payment_intent, amount, request.metadata)
        action = ReaderAction(
            self._token(), "refund_payment", config=config, refund=request, api_version=mutation.api_version
        )
        return self._begin(reader, action, mutation, amount, request.metadata)

    def set_reader_display(self, reader_id: str, params: Params, mutation: Mutation) -> Reader:
        reader = self.get(reader_id)
        kind = params.choice("type", ("cart",), required=True)
        cart = _cart(params.raw("cart"))
        no_expansions(params)
        params.reject_unknown()
        self._reachable(reader)
        action = ReaderAction(
            self._token(),
            "set_reader_display",
            display={"type": kind, "cart": cart},
            status="succeeded",
            api_version=mutation.api_version,
        )
        return self._begin(reader, action, mutation, cart["total"], {})

    def cancel_action(self, reader_id: str, params: Params, mutation: Mutation) -> Reader:
        reader = self.get(reader_id)
        no_expansions(params)
        params.reject_unknown()
        self._reachable(reader)
        action = reader.action
        cancelable = action is not None and (action.collecting or action.type == "set_reader_display")
        if action is None or not cancelable:
            raise StripeError(
                400,
                "invalid_request_error",
                "This reader has no action in progress to cancel.",
                saved=True,
            )
        late = self._command(reader)
        amount, metadata = self._action_details(action)
        self._end(action)
        reader.action = None
        self._journal("reader.cancel_action", reader, mutation, "canceled", amount, metadata)
        self._notify()
        if late:
            raise reader_timeout()
        return reader

    def present_payment_method(self, reader_id: str, params: Params, mutation: Mutation) -> Reader:
        """The test helper: a card presented to a simulated reader, processed after `processing_s`."""
        reader = self.get(reader_id)
        kind = params.string("type") or "card_present"
        numbers = {name: _number(params.raw(name), name) for name in ("card_present", "interac_present")}
        tip = params.integer("amount_tip")
        no_expansions(params)
        params.reject_unknown()
        for name, number in numbers.items():
            if number is not None and name != kind:
                raise invalid_request(f"{name} cannot be given with type {kind}.", param=name)
        if tip is not None and tip < 0:
            raise invalid_request(f"Invalid non-negative integer: {tip}", param="amount_tip")
        presented = present(kind, numbers.get(kind))
        self._reachable(reader)
        action = reader.action
        if action is None or not action.collecting:
            raise StripeError(
                400,
                "invalid_request_error",
                "This reader has no action waiting for a payment method (process_payment_intent, "
                "collect_payment_method or refund_payment).",
                saved=True,
            )
        if tip and (action.type not in TIPPING or (action.config or {}).get("skip_tipping")):
            raise StripeError(
                400,
                "invalid_request_error",
                "The reader shows no tipping screen for this action: amount_tip can only be given to a "
                "process_payment_intent or collect_payment_method action that does not skip tipping.",
                param="amount_tip",
                saved=True,
            )
        action.presented = presented
        action.tip = tip or 0
        self._arm(reader, action)
        amount, metadata = self._action_details(action)
        self._journal("reader.present_payment_method", reader, mutation, "in_progress", amount, metadata)
        self._notify()
        return reader

    def complete(self, reader_id: str, token: int, now: int) -> None:
        """The reader has processed the card: carry the action out as Stripe does, and say how it ended."""
        reader = self.readers.get(reader_id)
        action = reader.action if reader else None
        if reader is None or action is None or action.token != token or not action.processing:
            return  # replaced, canceled or reset meanwhile
        mutation = Mutation(now, None, action.api_version)
        try:
            action.result = self._carry_out(reader, action, mutation)
        except StripeError as error:
            action.fail(error.code, error.message, error.api_error())
        else:
            action.status = "succeeded"
        action.timer = None
        self._notify()

    def _carry_out(self, reader: Reader, action: ReaderAction, mutation: Mutation) -> dict[str, Any] | None:
        if action.type == "refund_payment":
            assert action.refund is not None
            refund = self.refunds.apply(action.refund, IN_PERSON, mutation)
            return {"refund": refund.id}
        assert action.payment_intent is not None
        if action.type == "collect_payment_method":
            assert action.presented is not None
            self.payment_intents.collect_presented(action.payment_intent, action.presented, mutation, tip=action.tip)
            method = payment_method_json(action.presented, mutation.now)
            method["allow_redisplay"] = (action.config or {}).get("allow_redisplay", "unspecified")
            return {"payment_method": method}
        # process_payment_intent confirms with the card just read; confirm_payment_intent with the one collected.
        self.payment_intents.confirm_presented(
            action.payment_intent, action.presented, mutation, tip=action.tip, reader=reader.id
        )
        return None

    def _payment_action(
        self, kind: str, required_status: str, reader_id: str, params: Params, mutation: Mutation
    ) -> Reader:
        """process_payment_intent, collect_payment_method or confirm_payment_intent: check, then start."""
        reader = self.get(reader_id)
        intent_id = params.required_string("payment_intent")
        config = _config(params, kind)
        no_expansions(params)
        params.reject_unknown()
        intent = self.payment_intents.intents.get(intent_id)
        if intent is None:
            raise no_such("payment_intent", intent_id, param="payment_intent", status=400)
        self._reachable(reader)
        if intent.status != required_status:
            doing = "be confirmed by" if kind == "confirm_payment_intent" else "be processed by"
            raise intent_invalid_state(required_status, doing)
        action = ReaderAction(
            self._token(), kind, payment_intent=intent.id, config=config, api_version=mutation.api_version
        )
        return self._begin(reader, action, mutation, intent.amount, intent.metadata)

    def _begin(
        self, reader: Reader, action: ReaderAction, mutation: Mutation, amount: int | None, metadata: dict[str, str]
    ) -> Reader:
        """Make `action` the reader's, replacing one that waits for a card or is done; journal it."""
        late = self._command(reader)
        self._end(reader.action)
        reader.action = action
        if action.processing:  # a confirmation needs no card: the reader works on it at once
            self._arm(reader, action)
        self._journal(f"reader.{action.type}", reader, mutation, action.status, amount, metadata)
        self._notify()
        if late:
            raise reader_timeout()
        return reader

    # -- the control interface -----------------------------------------------------------------

    def configure(self, reader_id: str, spec: dict[str, Any]) -> dict[str, Any]:
        """Apply a control request to a reader (see docs/stripe-emulator.md); its state after."""
        reader = self.readers.get(reader_id)
        if reader is None:
            raise ReaderControlError(404, f"no reader with id {reader_id!r}")
        known = {"online", "customer_cancels", "timeout", "processing_s"}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise ReaderControlError(400, f"unknown field {unknown[0]!r}; known fields: {', '.join(sorted(known))}")
        online = spec.get("online", reader.online)
        if not isinstance(online, bool):
            raise ReaderControlError(400, "online must be true or false")
        timeout = spec.get("timeout", reader.timeout)
        if timeout is not None and timeout not in TIMEOUTS:
            raise ReaderControlError(400, f"timeout must be one of {', '.join(TIMEOUTS)}, or null")
        processing_s = spec.get("processing_s", reader.processing_s)
        if isinstance(processing_s, bool) or not isinstance(processing_s, (int, float)):
            raise ReaderControlError(400, "processing_s must be a number of seconds")
        if not 0 <= processing_s <= MAX_PROCESSING_S:
            raise ReaderControlError(400, f"processing_s must be between 0 and {MAX_PROCESSING_S:g}")
        cancels = spec.get("customer_cancels", False)
        if cancels is not False and cancels is not True:
            raise ReaderControlError(400, "customer_cancels must be true (the customer presses cancel)")
        if cancels:
            self._check_customer_can_cancel(reader)
        reader.online, reader.timeout, reader.processing_s = online, timeout, float(processing_s)
        action = reader.action
        if cancels and action is not None:
            action.fail("customer_canceled", CUSTOMER_CANCELED)
        if "processing_s" in spec and action is not None and action.processing:
            self._arm(reader, action)  # the new processing time counts from the presentation
        self._notify()
        return reader.control_json()

    def close(self) -> None:
        """Wake anyone waiting on a reader (the account is being forgotten)."""
        self._notify()

    # -- helpers -------------------------------------------------------------------------------

    def _check_customer_can_cancel(self, reader: Reader) -> None:
        action = reader.action
        if action is None or not action.collecting:
            raise ReaderControlError(409, "the reader is not waiting for a card: there is nothing to cancel")
        if not action.customer_can_cancel:
            raise ReaderControlError(
                409,
                f"the reader shows no cancel button: {action.type} was called without "
                f"{CONFIGS[action.type][0]}[enable_customer_cancellation]=true",
            )

    def _reachable(self, reader: Reader) -> None:
        """Refuse a command to a reader that is offline, or busy processing a card."""
        if not reader.online:
            raise reader_offline()
        if reader.action is not None and reader.action.processing:
            raise reader_busy()

    def _command(self, reader: Reader) -> bool:
        """Consume a pending timeout: raise it now (before_apply), or say to raise it after applying."""
        timeout, reader.timeout = reader.timeout, None
        if timeout == "before_apply":
            raise reader_timeout()
        return timeout == "after_apply"

    def _arm(self, reader: Reader, action: ReaderAction) -> None:
        """Start (or restart) the processing timer; a restart counts from when processing began."""
        if action.timer is None:
            action.processing_since = time.monotonic()
        else:
            self.timers.cancel(action.timer)
        remaining = action.processing_since + reader.processing_s - time.monotonic()
        token = action.token
        action.timer = self.timers.after(remaining, lambda: self.on_due(reader.id, token))

    def _end(self, action: ReaderAction | None) -> None:
        if action is not None and action.timer is not None:
            self.timers.cancel(action.timer)
            action.timer = None

    def _token(self) -> int:
        self._seq += 1
        return self._seq

    def _action_details(self, action: ReaderAction) -> tuple[int | None, dict[str, str]]:
        """The amount and metadata the journal shows for an action: its refund's, or its PaymentIntent's."""
        if action.refund is not None:
            return action.refund.amount, action.refund.metadata
        intent = self.payment_intents.intents.get(action.payment_intent or "")
        if intent is None:
            return None, {}
        return intent.amount, intent.metadata

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _journal(
        self, op: str, reader: Reader, mutation: Mutation, status: str, amount: int | None, metadata: dict[str, str]
    ) -> None:
        self.journal.record(
            at=mutation.now,
            op=op,
            object_id=reader.id,
            idempotency_key=mutation.idempotency_key,
            status=status,
            amount=amount,
            metadata=metadata,
        )


def _matches(body: dict[str, Any], filters: dict[str, str | None]) -> bool:
    return all(value is None or body[name] == value for name, value in filters.items())


def _hash(value: FormValue | None, name: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid_request(f"Invalid object: {name} must be a hash", param=name)
    for key in value:
        if key not in allowed:
            raise unknown_param(f"{name}[{key}]")
    return value


def _boolean(value: object, name: str) -> bool:
    if value not in ("true", "false"):
        raise invalid_request(f"Invalid boolean: {value}", param=name)
    return value == "true"


def _integer(value: object, name: str, *, minimum: int = 0) -> int:
    if not isinstance(value, str) or not value.lstrip("-").isdigit() or int(value) < minimum:
        raise invalid_request(f"Invalid integer: {value}", param=name, code="parameter_invalid_integer")
    return int(value)


def _config(params: Params, kind: str) -> dict[str, Any] | None:
    """An action's per-transaction configuration (`process_config`, `collect_config`, ...), checked."""
    name, allowed = CONFIGS[kind]
    value = params.raw(name)
    if value is None:
        return None
    raw = _hash(value, name, allowed)
    config: dict[str, Any] = {}
    for key in ("enable_customer_cancellation", "skip_tipping"):
        if key in raw:
            config[key] = _boolean(raw[key], f"{name}[{key}]")
    if "tipping" in raw:
        tipping = _hash(raw["tipping"], f"{name}[tipping]", ("amount_eligible",))
        config["tipping"] = {key: _integer(tipping[key], f"{name}[tipping][{key}]") for key in tipping}
    if "allow_redisplay" in raw:
        if raw["allow_redisplay"] not in ALLOW_REDISPLAY:
            raise invalid_request(
                f"Invalid {name}[allow_redisplay]: must be one of {', '.join(ALLOW_REDISPLAY)}",
                param=f"{name}[allow_redisplay]",
            )
        config["allow_redisplay"] = raw["allow_redisplay"]
    if "return_url" in raw:
        if not isinstance(raw["return_url"], str):
            raise invalid_request(f"Invalid string: {name}[return_url]", param=f"{name}[return_url]")
        config["return_url"] = raw["return_url"]
    return config


def _cart(value: FormValue | None) -> dict[str, Any]:
    if value is None:
        raise missing_param("cart")
    raw = _hash(value, "cart", ("currency", "line_items", "tax", "total"))
    for name in ("currency", "line_items", "total"):
        if name not in raw or raw[name] in ("", None):
            raise missing_param(f"cart[{name}]")
    currency = raw["currency"]
    if not isinstance(currency, str):
        raise invalid_request("Invalid string: cart[currency] must be a string", param="cart[currency]")
    items = raw["line_items"]
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise invalid_request("Invalid array: cart[line_items]", param="cart[line_items]")
    line_items = []
    for index, item in enumerate(items):
        name = f"cart[line_items][{index}]"
        _hash(item, name, ("amount", "description", "quantity"))
        for field_name in ("amount", "description", "quantity"):
            if item.get(field_name) in ("", None):
                raise missing_param(f"{name}[{field_name}]")
        if not isinstance(item["description"], str):
            raise invalid_request(f"Invalid string: {name}[description]", param=f"{name}[description]")
        line_items.append(
            {
                "amount": _integer(item["amount"], f"{name}[amount]"),
                "description": item["description"],
                "quantity": _integer(item["quantity"], f"{name}[quantity]", minimum=1),
            }
        )
    return {
        "currency": validate_currency(currency),
        "line_items": line_items,
        "tax": _integer(raw["tax"], "cart[tax]") if raw.get("tax") not in ("", None) else None,
        "total": _integer(raw["total"], "cart[total]"),
    }


def _number(value: FormValue | None, name: str) -> str | None:
    """The card number inside `card_present[number]` (or `interac_present[...]`), if one was sent."""
    number = _hash(value, name, ("number",)).get("number")
    if number is not None and not isinstance(number, str):
        raise invalid_request(f"Invalid string: {name}[number]", param=f"{name}[number]")
    return number or None
