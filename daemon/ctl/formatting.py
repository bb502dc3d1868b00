"""Payments, money, cards and events as text for a technician: one-liners and detail rows."""

from __future__ import annotations

import datetime
import json
from typing import Any

from readerhost.client import Event
from readerhost.daemon.payments.currencies import ZERO_DECIMAL
from readerhost.daemon.payments.model import State

READ_METHODS = {
    "contactless_emv": "contactless",
    "contact_emv": "chip",
    "magnetic_stripe_track2": "swipe",
    "magnetic_stripe_fallback": "swipe (fallback)",
    "contactless_magstripe_mode": "contactless (magstripe)",
}

# How the cardholder was verified (a receipt's cardholder_verification_method), as a receipt says it.
VERIFICATIONS = {
    "online_pin": "PIN verified (online)",
    "offline_pin": "PIN verified (offline)",
    "offline_pin_and_signature": "PIN verified (offline) and signature",
    "signature": "signature",
    "none": "no verification",
    "approval": "approval",
    "failure": "verification failed",
}
# A receipt's rows in `get`, as printed receipts label them, in that order.
RECEIPT_ROWS = (
    ("app name", "application_preferred_name"),
    ("AID", "dedicated_file_name"),
    ("account", "account_type"),
    ("auth code", "authorization_code"),
    ("ARC", "authorization_response_code"),
    ("verified", "cardholder_verification_method"),
    ("TVR", "terminal_verification_results"),
    ("TSI", "transaction_status_information"),
    ("AC", "application_cryptogram"),
    ("wallet", "wallet"),
    ("receipt", "receipt_url"),
)


def money(amount: int | None, currency: str | None) -> str:
    """`12.50 USD`; zero-decimal currencies without decimals (`1250 JPY`)."""
    if amount is None or currency is None:
        return "?"
    code = currency.lower()
    if code in ZERO_DECIMAL:
        return f"{amount} {code.upper()}"
    sign = "-" if amount < 0 else ""
    whole, cents = divmod(abs(amount), 100)
    return f"{sign}{whole}.{cents:02d} {code.upper()}"


def card_text(card: Any) -> str:
    if not isinstance(card, dict):
        return ""
    method = READ_METHODS.get(str(card.get("read_method")), str(card.get("read_method") or "").replace("_", " "))
    text = f"{card.get('brand', 'card')} ****{card.get('last4', '????')}"
    how = ", ".join(part for part in (method, str(card.get("wallet") or "").replace("_", " ")) if part)
    return f"{text} ({how})" if how else text


def decline_text(decline: Any) -> str:
    if not isinstance(decline, dict):
        return ""
    code = decline.get("decline_code") or decline.get("code") or "declined"
    return f"{code}: {decline.get('message') or 'the card was declined'}"


def error_text(error: Any) -> str:
    if not isinstance(error, dict):
        return ""
    return f"{error.get('message', '')} ({error.get('reason', '?')})"


def payment_line(payment: dict[str, Any]) -> str:
    """One payment on one line: id, order, amount, state, card, why."""
    parts = [
        str(payment.get("payment_id")),
        f"order {payment.get('order_id')}",
        money(payment.get("amount"), payment.get("currency")),
        str(payment.get("state")),
    ]
    if payment.get("card"):
        parts.append(card_text(payment["card"]))
    if payment.get("state") == State.DECLINED and payment.get("decline"):
        parts.append(decline_text(payment["decline"]))
    if payment.get("error"):
        parts.append(error_text(payment["error"]))
    if payment.get("offline"):
        parts.append("offline")
    if (payment.get("order_attempt") or 1) > 1:
        parts.append(f"attempt {payment['order_attempt']}")
    if payment.get("closed_by"):
        parts.append(f"order paid by {payment['closed_by']}")
    return "  ".join(parts)


def closed_order_lines(closed: dict[str, Any]) -> list[str]:
    """payment.close's answer: the order, how and when it was paid, then its card attempts."""
    attempts = closed.get("payments") or []
    head = f"order {closed.get('order_id')} closed: paid by {closed.get('closed_by')} at {closed.get('closed_at')}"
    return [f"{head}; {len(attempts)} card attempt{'' if len(attempts) == 1 else 's'}"] + [
        f"  {payment_line(payment)}" for payment in attempts
    ]


def payment_details(payment: dict[str, Any]) -> list[str]:
    currency = payment.get("currency")
    rows = [
        ("payment", payment.get("payment_id")),
        ("order", payment.get("order_id")),
        ("attempt", payment.get("order_attempt") if (payment.get("order_attempt") or 1) > 1 else None),
        ("closed", f"the order was paid by {payment['closed_by']}" if payment.get("closed_by") else None),
        ("amount", money(payment.get("amount"), currency)),
        ("tip", money(payment.get("tip"), currency) if payment.get("tip") else None),
        ("state", payment.get("state")),
        ("card", card_text(payment.get("card")) or card_text(payment.get("receipt")) or None),
        *receipt_rows(payment.get("receipt")),
        ("captured", money(payment.get("captured_amount"), currency) if payment.get("captured_amount") else None),
        ("refunded", money(payment.get("refunded_amount"), currency) if payment.get("refunds") else None),
        ("decline", decline_text(payment.get("decline")) or None),
        ("error", error_text(payment.get("error")) or None),
        ("offline", "yes: authorised without Stripe, forwarded later" if payment.get("offline") else None),
        ("attempts", payment.get("attempts")),
        ("intent", payment.get("payment_intent")),
        ("created", payment.get("created_at")),
        ("updated", payment.get("updated_at")),
    ]
    rows += [("refund", refund_line(refund, currency)) for refund in payment.get("refunds") or []]
    return [f"{name:<9} {value}" for name, value in rows if value is not None]


def receipt_rows(receipt: Any) -> list[tuple[str, Any]]:
    """The receipt's EMV and approval fields that Stripe gave, one row each (none when it gave none)."""
    if not isinstance(receipt, dict):
        return []
    rows = []
    for label, name in RECEIPT_ROWS:
        value = receipt.get(name)
        if value is None:
            continue
        if name == "cardholder_verification_method":
            value = VERIFICATIONS.get(str(value), str(value))
        rows.append((label, value))
    return rows


def refund_line(refund: dict[str, Any], currency: str | None) -> str:
    """One refund on one line: id, amount, where, state, Stripe's refund, why."""
    parts = [
        str(refund.get("refund_id")),
        money(refund.get("amount"), currency),
        "at the reader" if refund.get("at_reader") else "online",
        str(refund.get("state")),
    ]
    if refund.get("stripe_refund"):
        parts.append(str(refund["stripe_refund"]))
    if refund.get("error"):
        parts.append(error_text(refund["error"]))
    return "  ".join(parts)


def event_summary(event: Event) -> str:
    data = event.data
    payment_id = data.get("payment_id", "")
    if event.type == "payment.state":
        return payment_line(data)
    if event.type == "refund.updated":
        return f"{payment_id} refund {refund_line(data, (data.get('payment') or {}).get('currency'))}"
    if event.type == "increment.updated":
        currency = (data.get("payment") or {}).get("currency")
        line = f"{payment_id} increment {data.get('increment_id')} to {money(data.get('amount'), currency)}"
        why = data.get("decline") or data.get("error")
        reason = (why.get("decline_code") or why.get("code") or why.get("reason")) if isinstance(why, dict) else None
        return f"{line}: {data.get('state')}" + (f" ({reason})" if reason else "")
    if event.type == "reader.input_options":
        return f"{payment_id} present a card: {', '.join(str(o) for o in data.get('options', []))}"
    if event.type == "reader.display_message":
        return f"{payment_id} {data.get('text') or data.get('message')}"
    if event.type == "reader.card":
        return f"{payment_id} {str(data.get('event', '')).replace('_', ' ')}"
    if event.type in ("reader.connected", "reader.disconnected"):
        reason = f" ({data['reason']})" if data.get("reason") else ""
        return f"{data.get('model', '')} {data.get('id', '')}{reason}".strip()
    if event.type == "payment.unattended":
        return (
            f"{payment_id} (order {data.get('order_id')}) left authorised by its POS: "
            f"[reconcile] unattended = {data.get('policy')} ({data.get('trigger')})"
        )
    if event.type == "payment.deadline":
        due = data.get("capture_before")
        return f"{payment_id} (order {data.get('order_id')}) {data.get('state')}: capture before {due}"
    if event.type == "queue.changed":
        return queue_text(data)
    if event.type == "system.stripe":
        return stripe_text(data)
    if event.type == "display.changed":
        lines = data.get("lines") or []
        return " | ".join(str(line) for line in lines) if lines else "(cleared)"
    return json.dumps(data, ensure_ascii=False)


def queue_text(queue: dict[str, Any]) -> str:
    pending = queue.get("pending", 0)
    if not pending:
        return "nothing waiting for Stripe"
    oldest = queue.get("oldest_age_s")
    return f"{pending} waiting for Stripe" + (f", oldest {oldest:g} s" if isinstance(oldest, int | float) else "")


def deadline_text(deadline: dict[str, Any] | None, now: float) -> str:
    """The nearest capture deadline: e.g. "pay_... (order A-1) capture before 2026-12-05T10:00:00.000Z,
    in 1 d 20 h", or "no authorisation waiting for a capture"."""
    if not deadline:
        return "no authorisation waiting for a capture"
    moment = str(deadline.get("capture_before"))
    try:
        left = datetime.datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp() - now
    except ValueError:
        left = None
    when = "" if left is None else (f", in {_span(left)}" if left > 0 else ", passed")
    return f"{deadline.get('payment_id')} (order {deadline.get('order_id')}) capture before {moment}{when}"


def unattended_text(unattended: dict[str, Any] | None) -> str:
    """What the daemon does with a payment its POS left authorised (1.4), e.g. "[reconcile] unattended =
    capture: a payment its POS left authorised is captured 1 h 0 min before its deadline" (1.4)."""
    if not unattended:
        return "not told (a daemon before protocol 1.4)"
    policy = unattended.get("policy")
    lead = unattended.get("lead_s")
    when = f"{_span(float(lead))} before its deadline" if isinstance(lead, int | float) else "before its deadline"
    done = {"capture": f"is captured {when}", "cancel": f"is canceled {when}"}.get(
        str(policy), f"is reported {when}, and left to lapse"
    )
    return f"[reconcile] unattended = {policy}: a payment its POS left authorised {done}"


def _span(seconds: float) -> str:
    minutes = int(seconds // 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def reader_text(reader: dict[str, Any]) -> str:
    """e.g. "ready: readerhost-emulator EMU-0001 (serial EMU-0001), battery 80% · serial /dev/readerhost-reader",
    or "disconnected · serial /dev/readerhost-reader: cannot open ...: no such device (unplugged?)"."""
    link = reader.get("link") or {}
    where = " ".join(str(link[key]) for key in ("transport", "device", "address") if link.get(key))
    where = f" · {where}" if where else ""
    why = f": {link['last_error']}" if link.get("last_error") else ""
    if reader.get("id") is None:  # never reached: there is no identity to show yet
        return f"{reader.get('state')}{where}{why}"
    firmware = f", firmware {reader['firmware']}" if reader.get("firmware") else ""
    battery = f", battery {reader['battery']}%" if reader.get("battery") is not None else ""
    if reader.get("charging"):
        battery += " (charging)"
    identity = f"{reader.get('model')} {reader['id']} (serial {reader.get('serial')}){firmware}{battery}"
    return f"{reader.get('state')}: {identity}{where}{why}"


def location_line(location: dict[str, Any]) -> str:
    """e.g. "tml_FDOt...  Front kiosk  12 Station Road, Springfield, US"."""
    address = location.get("address") or {}
    parts = ("line1", "line2", "city", "state", "postal_code", "country")
    where = ", ".join(str(address[part]) for part in parts if address.get(part))
    return "  ".join(str(text) for text in (location.get("id"), location.get("display_name"), where) if text)


def stripe_text(stripe: dict[str, Any]) -> str:
    failures = stripe.get("consecutive_failures", 0)
    state = stripe.get("state") or ("reachable" if stripe.get("reachable") else "unreachable")  # before 1.4
    text = {
        "reachable": "reachable",
        "unknown": "unknown (no answer since the daemon started)",
        "unreachable": f"UNREACHABLE ({failures} failures in a row)",
        "key_refused": "REFUSES THE API KEY",
    }.get(state, state)
    if state == "unknown" and failures:
        text += f", {failures} failures in a row"
    if stripe.get("last_ok_at"):
        text += f", last answer {stripe['last_ok_at']}"
    return text


def clock_time(at: str) -> str:
    """The local wall-clock time of an RFC 3339 timestamp, for event lines."""
    try:
        return datetime.datetime.fromisoformat(at.replace("Z", "+00:00")).astimezone().strftime("%H:%M:%S.%f")[:-3]
    except ValueError:
        return at
