"""readerhostctl's commands other than `pay`: one request each (`watch`: a stream of events), then
its result as human lines or a JSON document."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from readerhost.client import Client, ConnectionLost
from readerhost.client.wire import TOPICS

from .exit_codes import EXIT_OK
from .formatting import (
    clock_time,
    closed_order_lines,
    deadline_text,
    event_summary,
    location_line,
    money,
    payment_details,
    payment_line,
    queue_text,
    reader_text,
    stripe_text,
    unattended_text,
)
from .health import exit_code, problems
from .output import Output

Command = Callable[[Client, argparse.Namespace, Output], int]


def cmd_status(client: Client, args: argparse.Namespace, out: Output) -> int:
    status = client.status()
    found = problems(status, time.time())
    if out.json:
        out.document(status)
        return exit_code(found)
    protocol = status.get("protocol") or {}
    mode = status.get("mode")
    note = " (payments go to the built-in Stripe emulator, not to Stripe)" if mode == "emulator" else ""
    out.line(
        f"readerhostd {status.get('daemon')}, protocol {protocol.get('major')}.{protocol.get('minor')}, "
        f"mode {mode}{note}"
    )
    out.line(f"{'up':<8} {status.get('uptime_s')} s (boot {status.get('boot_id')})")
    out.line(f"{'reader':<8} {reader_text(status.get('reader') or {})}")
    out.line(f"{'stripe':<8} {stripe_text(status.get('stripe') or {})}")
    out.line(f"{'queue':<8} {queue_text(status.get('queue') or {})}")
    out.line(f"{'deadline':<8} {deadline_text(status.get('deadline'), time.time())}")
    out.line(f"{'policy':<8} {unattended_text(status.get('unattended'))}")
    offline = status.get("offline") or {}
    amounts = offline.get("amount_by_currency") or {}
    if offline.get("count"):
        total = ", ".join(money(amount, currency) for currency, amount in sorted(amounts.items()))
        out.line(f"{'offline':<8} {offline['count']} payments waiting to be forwarded ({total})")
    else:
        out.line(f"{'offline':<8} none")
    out.line(f"{'health':<8} {'; '.join(problem.text for problem in found) if found else 'ok'}")
    return exit_code(found)


def cmd_get(client: Client, args: argparse.Namespace, out: Output) -> int:
    payment = client.get_payment(payment_id=args.payment_id, order_id=args.order)
    show_payment(out, payment)
    return EXIT_OK


def cmd_capture(client: Client, args: argparse.Namespace, out: Output) -> int:
    payment = client.capture(args.payment_id, args.amount)
    show_payment(out, payment, one_line=True)
    return EXIT_OK


def cmd_cancel(client: Client, args: argparse.Namespace, out: Output) -> int:
    payment = client.cancel(args.payment_id, args.reason)
    show_payment(out, payment, one_line=True)
    return EXIT_OK


def cmd_close(client: Client, args: argparse.Namespace, out: Output) -> int:
    closed = client.close_order(args.order_id)
    if out.json:
        out.document(closed)
    else:
        for line in closed_order_lines(closed):
            out.line(line)
    return EXIT_OK


def show_payment(out: Output, payment: dict[str, Any], *, one_line: bool = False) -> None:
    if out.json:
        out.document(payment)
    elif one_line:
        out.line(payment_line(payment))
    else:
        for line in payment_details(payment):
            out.line(line)


def cmd_list(client: Client, args: argparse.Namespace, out: Output) -> int:
    payments = client.list_payments(states=args.state, since=args.since, limit=args.limit, order_id=args.order)
    if out.json:
        out.document({"payments": payments})
        return EXIT_OK
    if not payments:
        out.line("no payments")
    for payment in payments:
        out.line(f"{payment.get('updated_at', '')}  {payment_line(payment)}")
    return EXIT_OK


def cmd_present(client: Client, args: argparse.Namespace, out: Output) -> int:
    client.present(args.card)
    if out.json:
        out.document({})
    else:
        out.line(f"presented test card {args.card} to the reader")
    return EXIT_OK


def cmd_display(client: Client, args: argparse.Namespace, out: Output) -> int:
    client.show(args.lines, args.ttl)
    if out.json:
        out.document({})
    elif not args.lines:
        out.line("display cleared")
    else:
        until = f" for {args.ttl:g} s" if args.ttl is not None else ""
        out.line(f"showing {len(args.lines)} line{'s' if len(args.lines) != 1 else ''} while idle{until}")
    return EXIT_OK


def cmd_reconcile(client: Client, args: argparse.Namespace, out: Output) -> int:
    dry_run = args.dry_run or not (args.apply or args.unattended)
    report = client.reconcile(args.completed_ids, args.since, args.until, dry_run=dry_run, unattended=args.unattended)
    if out.json:
        out.document(report)
        return EXIT_OK
    dry = " (dry run: nothing changed)" if report.get("dry_run", True) else ""
    policy = f", [reconcile] unattended = {report['unattended']}" if report.get("unattended") else ""
    out.line(f"Reconciliation{dry}{policy}: {report.get('checked', 0)} PaymentIntents of this terminal checked")
    findings = 0
    for key, title in (
        ("to_capture", "To capture"),
        ("to_cancel", "To cancel"),
        ("done", "Done"),
        ("skipped", "Skipped"),
        ("reported", "Left authorised (reported only)"),
    ):
        items = report.get(key) or []
        if not items:
            continue
        findings += len(items) if key in ("to_capture", "to_cancel") else 0
        out.line(f"{title}:")
        for item in items:
            out.line(
                f"  {item.get('payment_intent')}  order {item.get('order_id') or '?'}  "
                f"{money(item.get('amount'), item.get('currency'))}  {item.get('reason', '')}"
            )
    for warning in report.get("warnings") or []:
        out.line(f"Warning: {warning}")
    if report.get("dry_run", True) and findings:
        again = "without --dry-run" if report.get("unattended") else "with --apply"
        out.line(f"Run again {again} to carry this out.")
    return EXIT_OK


def cmd_watch(client: Client, args: argparse.Namespace, out: Output) -> int:
    topics = args.topic or list(TOPICS)
    snapshot = client.subscribe(topics)
    if not out.json:
        out.line(f"watching {', '.join(topics)} on {client.path} (Ctrl-C to stop)")
        for payment in snapshot.get("payments") or []:
            out.line(f"open: {payment_line(payment)}")
    last_seq: int | None = None
    for event in client.events():
        if out.json:
            out.document(event.to_json())
            continue
        if last_seq is not None and event.seq > last_seq + 1:
            out.line(f"({event.seq - last_seq - 1} events not received: this terminal read too slowly)")
        last_seq = event.seq
        out.line(f"{clock_time(event.at)}  #{event.seq:<5} {event.type:<24} {event_summary(event)}")
    raise ConnectionLost("the daemon closed the connection")


def cmd_reader_register(client: Client, args: argparse.Namespace, out: Output) -> int:
    reader = client.register_reader(args.code, args.location, args.label)
    if out.json:
        out.document({"reader": reader})
    else:
        out.line(f"registered: {reader_text(reader)}")
        out.line("readerhostd uses it from now on, and after every restart (kept in its store)")
    return EXIT_OK


def cmd_reader_pair(client: Client, args: argparse.Namespace, out: Output) -> int:
    answer = client.pair_reader()
    if out.json:
        out.document(answer)
        return EXIT_OK
    address = answer.get("address")
    if answer.get("already_bonded"):
        out.line(f"already bonded with the reader at {address}: nothing done")
    else:
        out.line(f"bonded with the reader at {address} (LE Secure Connections); the bond is kept across restarts")
    out.line(f"reader: {reader_text(answer.get('reader') or {})}")
    return EXIT_OK


def cmd_reader_locations(client: Client, args: argparse.Namespace, out: Output) -> int:
    locations = client.reader_locations()
    if out.json:
        out.document({"locations": locations})
        return EXIT_OK
    if not locations:
        out.line("no Terminal locations: make one in the Stripe Dashboard (Terminal > Locations)")
    for location in locations:
        out.line(location_line(location))
    return EXIT_OK
