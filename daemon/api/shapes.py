"""The shapes of what the POS socket carries, as JSON Schema (2020-12): the objects, each method's
result, the banner and every event. docs/pos-protocol.md is the prose; daemon/api/openrpc.py makes
the machine-readable description (docs/protocol/) from these and the method table.

An object the daemon sends lists all its fields (`additionalProperties: false`), so a field added
without its shape fails the test suite's traffic check. Clients still ignore fields they do not
know (forward compatibility): the schemas describe this daemon, not a rule for clients.
"""

from __future__ import annotations

from typing import Any

from readerhost.daemon.payments.autopilot import Trigger
from readerhost.daemon.payments.events import Topic
from readerhost.daemon.payments.model import (
    RECEIPT_FIELDS,
    CaptureMode,
    IncrementState,
    OfflineMode,
    PaidBy,
    Reason,
    RefundState,
    State,
    StripeState,
    Unattended,
)
from readerhost.drivers.reader.base import ReaderState

from .protocol import REASON_CODES

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    """A shape defined in DEFINITIONS."""
    return {"$ref": f"#/$defs/{name}"}


def obj(properties: dict[str, Schema], *, optional: tuple[str, ...] = ()) -> Schema:
    """An object with exactly these fields, all present except `optional`."""
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
        "additionalProperties": False,
    }


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def enum(values: Any) -> Schema:
    return {"type": "string", "enum": [str(value) for value in values]}


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


STRING: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer"}
NUMBER: Schema = {"type": "number"}
BOOLEAN: Schema = {"type": "boolean"}
EMPTY: Schema = obj({})
MINOR_UNITS: Schema = {"type": "integer", "description": "an amount in the currency's minor unit"}
TIME: Schema = {"type": "string", "format": "date-time", "description": "RFC 3339"}
ORDER_ID: Schema = {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,200}$"}

DEFINITIONS: dict[str, Schema] = {
    "time": TIME,
    "mode": enum(("emulator", "test", "live")),
    "error_detail": obj({"reason": enum(Reason), "message": STRING}),
    "decline": obj({"code": STRING, "decline_code": nullable(STRING), "message": STRING}),
    "card": obj(
        {
            "brand": STRING,
            "last4": STRING,
            "read_method": STRING,
            "wallet": nullable(STRING),  # 1.3
            "network": nullable(STRING),  # 1.3
        }
    ),
    "receipt": obj({name: nullable(STRING) for name in RECEIPT_FIELDS}),
    "card_support": obj(
        {
            "incremental_authorization_supported": BOOLEAN,
            "overcapture_supported": BOOLEAN,
            "extended_authorization_requested": BOOLEAN,
        }
    ),
    "refund": obj(
        {
            "refund_id": ORDER_ID,
            "payment_id": STRING,
            "amount": MINOR_UNITS,
            "reason": nullable(STRING),
            "at_reader": BOOLEAN,
            "state": enum(RefundState),
            "stripe_refund": nullable(STRING),
            "created_at": ref("time"),
            "updated_at": ref("time"),
            "error": nullable(ref("error_detail")),
        }
    ),
    "increment": obj(
        {
            "increment_id": ORDER_ID,
            "payment_id": STRING,
            "amount": MINOR_UNITS,
            "state": enum(IncrementState),
            "decline": nullable(ref("decline")),
            "error": nullable(ref("error_detail")),
            "created_at": ref("time"),
            "updated_at": ref("time"),
        }
    ),
    "payment": obj(
        {
            "payment_id": STRING,
            "order_id": ORDER_ID,
            "amount": MINOR_UNITS,
            "currency": STRING,
            "state": enum(State),
            "payment_intent": nullable(STRING),
            "card": nullable(ref("card")),
            "decline": nullable(ref("decline")),
            "captured_amount": MINOR_UNITS,
            "refunded_amount": MINOR_UNITS,  # 1.3
            "refunds": array(ref("refund")),  # 1.3
            "offline": BOOLEAN,
            "attempts": INTEGER,
            "order_attempt": {"type": "integer", "minimum": 1},  # 1.4
            "closed_by": nullable(enum(PaidBy)),  # 1.4
            "receipt": nullable(ref("receipt")),  # 1.3
            "tip": MINOR_UNITS,  # 1.3
            "incremental": BOOLEAN,  # 1.4
            "extended": BOOLEAN,  # 1.4
            "card_support": nullable(ref("card_support")),  # 1.4
            "authorized_amount": nullable(MINOR_UNITS),  # 1.4
            "increments": array(ref("increment")),  # 1.4
            "capture_before": nullable(ref("time")),  # 1.3
            "created_at": ref("time"),
            "updated_at": ref("time"),
            "error": nullable(ref("error_detail")),
        }
    ),
    "reader_link": {
        "type": "object",
        "description": "how the daemon reaches a serial, BLE (1.2) or Stripe smart (1.2) reader",
        "properties": {
            "transport": enum(("serial", "ble", "stripe")),
            "device": STRING,
            "address": STRING,
            "reader": nullable(STRING),
            "connected": BOOLEAN,
            "connected_since": nullable(NUMBER),
            "connections": INTEGER,
            "last_error": nullable(STRING),
            "refused": nullable(STRING),  # 1.4
        },
        "required": ["transport", "connected", "last_error"],
        "additionalProperties": False,
    },
    "reader": obj(
        {
            "state": enum(ReaderState),
            "id": nullable(STRING),
            "model": nullable(STRING),
            "serial": nullable(STRING),
            "battery": nullable(NUMBER),
            "firmware": nullable(STRING),  # link readers (1.2)
            "charging": nullable(BOOLEAN),  # link readers (1.2)
            "link": ref("reader_link"),  # 1.2
        },
        optional=("firmware", "charging", "link"),
    ),
    "queue": obj({"pending": INTEGER, "oldest_age_s": nullable(NUMBER)}),
    "protocol_version": obj({"major": INTEGER, "minor": INTEGER}),
    "status": obj(
        {
            "daemon": STRING,
            "protocol": ref("protocol_version"),
            "boot_id": STRING,
            "mode": ref("mode"),
            "uptime_s": NUMBER,
            "reader": ref("reader"),
            "stripe": obj(
                {
                    "state": enum(StripeState),  # 1.4
                    "reachable": BOOLEAN,
                    "consecutive_failures": INTEGER,
                    "last_ok_at": nullable(ref("time")),
                }
            ),
            "queue": ref("queue"),
            "offline": obj(
                {"count": INTEGER, "amount_by_currency": {"type": "object", "additionalProperties": INTEGER}}
            ),
            "store": obj({"path": STRING, "bytes": nullable(INTEGER)}),
            "deadline": nullable(
                obj({"payment_id": STRING, "order_id": ORDER_ID, "capture_before": ref("time")})
            ),  # 1.3
            "unattended": obj({"policy": enum(Unattended), "lead_s": NUMBER}),  # 1.4
        }
    ),
    "closed_order": obj(
        {"order_id": ORDER_ID, "closed_by": enum(PaidBy), "closed_at": ref("time"), "payments": array(ref("payment"))}
    ),
    "finding": obj(
        {
            "payment_intent": STRING,
            "payment_id": nullable(STRING),
            "order_id": nullable(STRING),
            "amount": MINOR_UNITS,
            "currency": STRING,
            "capture_before": nullable(INTEGER),
            "reason": STRING,
        }
    ),
    "reconcile_report": obj(
        {
            "dry_run": BOOLEAN,
            "unattended": nullable(enum(Unattended)),  # 1.4
            "reported": array(ref("finding")),  # 1.4
            "checked": INTEGER,
            "to_capture": array(ref("finding")),
            "to_cancel": array(ref("finding")),
            "done": array(ref("finding")),
            "skipped": array(ref("finding")),
            "warnings": array(STRING),
        }
    ),
    "location": obj(
        {
            "id": STRING,
            "display_name": STRING,
            "address": {"type": "object", "additionalProperties": STRING},
        }
    ),
}


def _with_payment(name: str) -> Schema:
    """An increment or refund object with the payment it belongs to (`increment.updated`, `refund.updated`)."""
    fields = DEFINITIONS[name]
    return obj({**fields["properties"], "payment": ref("payment")})


DEFINITIONS["increment_update"] = _with_payment("increment")
DEFINITIONS["refund_update"] = _with_payment("refund")

# Each method's result (the method table's names: tests/daemon/test_openrpc.py holds the two together).
RESULTS: dict[str, Schema] = {
    "status.get": ref("status"),
    "payment.start": ref("payment"),
    "payment.get": ref("payment"),
    "payment.list": obj({"payments": array(ref("payment"))}),
    "payment.confirm": ref("payment"),
    "payment.collect_again": ref("payment"),
    "payment.capture": ref("payment"),
    "payment.cancel": ref("payment"),
    "payment.close": ref("closed_order"),
    "payment.refund": ref("refund"),
    "payment.increment": ref("payment"),
    "reconcile.run": ref("reconcile_report"),
    "events.subscribe": obj(
        {"snapshot": obj({"payments": array(ref("payment")), "reader": ref("reader"), "queue": ref("queue")})}
    ),
    "display.show": EMPTY,
    "reader.present": EMPTY,
    "reader.display_cart": EMPTY,
    "reader.register": obj({"reader": ref("reader")}),
    "reader.locations": obj({"locations": array(ref("location"))}),
    "reader.pair": obj({"address": STRING, "already_bonded": BOOLEAN, "reader": ref("reader")}),
}

# What a parameter's value may be, beyond its JSON type in the method table: (method, parameter) -> schema.
PARAMS: dict[tuple[str, str], Schema] = {
    ("payment.start", "order_id"): ORDER_ID,
    ("payment.start", "metadata"): {"type": "object", "additionalProperties": STRING},
    ("payment.start", "capture"): enum(CaptureMode),
    ("payment.start", "offline"): enum(OfflineMode),
    ("payment.start", "tipping"): obj({"amount_eligible": INTEGER}),
    ("payment.list", "states"): array(enum(State)),
    ("payment.list", "since"): TIME,
    ("payment.list", "capture_before_lt"): TIME,
    ("payment.cancel", "reason"): enum(("requested_by_customer", "abandoned", "duplicate", "fraudulent")),
    ("payment.close", "order_id"): ORDER_ID,
    ("payment.close", "paid_by"): enum(PaidBy),
    ("payment.refund", "refund_id"): ORDER_ID,
    ("payment.refund", "reason"): enum(("duplicate", "fraudulent", "requested_by_customer")),
    ("payment.increment", "increment_id"): ORDER_ID,
    ("reconcile.run", "completed_order_ids"): array(STRING),
    ("reconcile.run", "since"): TIME,
    ("reconcile.run", "until"): TIME,
    ("events.subscribe", "topics"): {"type": "array", "items": enum(Topic), "minItems": 1},
    ("display.show", "lines"): {"type": "array", "items": {"type": "string", "maxLength": 64}, "maxItems": 4},
    ("display.show", "ttl_s"): {"type": "number", "exclusiveMinimum": 0},
    ("reader.display_cart", "line_items"): {
        "type": "array",
        "items": obj({"description": STRING, "amount": INTEGER, "quantity": INTEGER}, optional=("quantity",)),
        "minItems": 1,
        "maxItems": 100,
    },
}

# The banner, the first line of every connection (`hello`'s params). One place to extend it.
BANNER: Schema = obj(
    {
        "protocol": ref("protocol_version"),
        "daemon": STRING,
        "boot_id": STRING,
        "mode": ref("mode"),
    }
)
RESULTS["session.hello"] = BANNER  # 1.5: the banner as an answer, on both sockets

_LINK_NOTICE = obj({"id": nullable(STRING), "model": nullable(STRING), "reason": STRING})

# Every event: its type -> (its topic, its `data`).
EVENTS: dict[str, tuple[Topic, Schema]] = {
    "payment.state": (Topic.PAYMENT, ref("payment")),
    "increment.updated": (Topic.PAYMENT, ref("increment_update")),
    "refund.updated": (Topic.PAYMENT, ref("refund_update")),
    "payment.deadline": (
        Topic.PAYMENT,
        obj(
            {
                "payment_id": STRING,
                "order_id": ORDER_ID,
                "state": enum(State),
                "payment_intent": nullable(STRING),
                "capture_before": ref("time"),
                "lead_s": NUMBER,
                "remaining_s": NUMBER,
            }
        ),
    ),
    "payment.unattended": (
        Topic.PAYMENT,
        obj(
            {
                "payment_id": STRING,
                "order_id": ORDER_ID,
                "payment_intent": nullable(STRING),
                "policy": enum(Unattended),
                "trigger": enum(Trigger),
                "amount": MINOR_UNITS,
                "currency": STRING,
                "capture_before": nullable(ref("time")),
                "state": enum(State),
            }
        ),
    ),
    "reader.input_options": (Topic.READER, obj({"payment_id": nullable(STRING), "options": array(STRING)})),
    "reader.display_message": (
        Topic.READER,
        obj({"payment_id": nullable(STRING), "message": STRING, "text": STRING}),
    ),
    "reader.card": (
        Topic.READER,
        obj({"payment_id": nullable(STRING), "event": enum(("card_inserted", "card_removed"))}),
    ),
    "reader.connected": (Topic.READER, _LINK_NOTICE),
    "reader.disconnected": (Topic.READER, _LINK_NOTICE),
    "reader.refused": (Topic.READER, _LINK_NOTICE),
    "queue.changed": (Topic.QUEUE, ref("queue")),
    "system.stripe": (
        Topic.SYSTEM,
        obj({"state": enum(StripeState), "reachable": BOOLEAN, "consecutive_failures": INTEGER}),
    ),
    "display.changed": (Topic.DISPLAY, obj({"lines": array(STRING)})),
}


def event_params(kind: str) -> Schema:
    """An `event` notification's params for one event type."""
    topic, data = EVENTS[kind]
    return obj(
        {
            "topic": {"const": str(topic)},
            "type": {"const": kind},
            "seq": {"type": "integer", "minimum": 1},
            "boot_id": STRING,
            "at": ref("time"),
            "data": data,
        }
    )


# The JSON-RPC errors' reasons (codes below 0), then the application's (REASON_CODES).
PROTOCOL_REASONS = ("PARSE_ERROR", "INVALID_REQUEST", "FRAME_TOO_LARGE", "METHOD_NOT_FOUND", "INVALID_PARAMS")


def error_object() -> Schema:
    """A JSON-RPC error as the daemon sends it: `data.reason` one of the protocol's reasons."""
    reasons = [*PROTOCOL_REASONS, *REASON_CODES]
    data = {
        "type": "object",
        "properties": {"reason": {"enum": reasons}, "retryable": BOOLEAN, "field": STRING},
        "required": ["reason"],
        "additionalProperties": False,
    }
    return obj({"code": INTEGER, "message": STRING, "data": data}, optional=("data",))
