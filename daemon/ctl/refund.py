"""`readerhostctl refund`: give back part or all of a captured payment, and wait for Stripe's word.

The refund is asked once under its refund id (generated unless given, and printed, so that the
same command can be repeated after a lost connection without refunding twice); the command then
follows the refund's events until it is no longer pending (at the reader: until the customer's
card was presented), at most --timeout seconds.
"""

from __future__ import annotations

import argparse
import secrets
import time

from readerhost.client import Client, Event
from readerhost.daemon.payments.model import RefundState

from .exit_codes import EXIT_NOT_PAID, EXIT_OK
from .formatting import refund_line
from .output import Output

_OPEN = (RefundState.PENDING, RefundState.REQUIRES_ACTION)


def cmd_refund(client: Client, args: argparse.Namespace, out: Output) -> int:
    refund_id = args.refund_id or generated_refund_id()
    client.subscribe(["payment"])
    refund = client.refund(
        args.payment_id, refund_id, amount=args.amount, reason=args.reason, at_reader=args.at_reader or None
    )
    currency = client.get_payment(payment_id=args.payment_id).get("currency")
    if not out.json:
        out.line(refund_line(refund, currency))
        if refund.get("at_reader") and refund.get("state") in _OPEN:
            out.line("present the card to the reader")
    deadline = time.monotonic() + args.timeout
    while RefundState.of(refund.get("state")) in _OPEN:
        event = client.wait_for_event(lambda e: _about(e, refund_id), max(0.0, deadline - time.monotonic()))
        refund = {key: value for key, value in event.data.items() if key != "payment"}
        if not out.json:
            out.line(refund_line(refund, currency))
    if out.json:
        out.document(refund)
    return EXIT_OK if refund.get("state") == RefundState.SUCCEEDED else EXIT_NOT_PAID


def _about(event: Event, refund_id: str) -> bool:
    return event.type == "refund.updated" and event.data.get("refund_id") == refund_id


def generated_refund_id() -> str:
    return f"ctl-refund-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
