"""`readerhostctl`: the technician's and scripts' command line for readerhostd.

It talks to the daemon over its socket with the blocking client (readerhost.client) and imports
nothing heavy: no stripe, none of the daemon's machinery. Human output by default; `--json` gives
one JSON document per result, and JSON lines for `watch` and `pay`'s progress. Errors are one
line on stderr, never a traceback; the exit code says what happened (see EXIT_CODES and
docs/readerhostctl.md).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TextIO

from readerhost.client import (
    CannotConnect,
    Client,
    ConnectionLost,
    Event,
    IncompatibleProtocol,
    ReaderhostError,
)
from readerhost.client.wire import TOPICS
from readerhost.daemon.payments.currencies import ZERO_DECIMAL

EXIT_OK = 0
EXIT_DAEMON_ERROR = 1
EXIT_USAGE = 2
EXIT_NO_DAEMON = 3
EXIT_DECLINED = 4
EXIT_NOT_PAID = 5
EXIT_INTERRUPTED = 130

EXIT_CODES = f"""\
exit codes:
  {EXIT_OK}    done (pay: authorized, captured or queued offline)
  {EXIT_DAEMON_ERROR}    the daemon answered with an error (printed with its reason, e.g. NOT_FOUND)
  {EXIT_USAGE}    usage error (a wrong or missing argument)
  {EXIT_NO_DAEMON}    cannot connect to the daemon, or the connection was lost
  {EXIT_DECLINED}    pay: the card was declined
  {EXIT_NOT_PAID}    pay: the payment was canceled or failed
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C); pay cancels a collection still waiting for a card
"""

STATES = (
    "creating", "collecting", "awaiting_confirmation", "processing", "queued_offline", "declined",
    "authorized", "capturing", "captured", "canceled", "failed",
)  # fmt: skip
CANCEL_REASONS = ("requested_by_customer", "abandoned", "duplicate", "fraudulent")
WAITING_FOR_CUSTOMER = ("creating", "collecting", "awaiting_confirmation")
READ_METHODS = {
    "contactless_emv": "contactless",
    "contact_emv": "chip",
    "magnetic_stripe_track2": "swipe",
    "magnetic_stripe_fallback": "swipe (fallback)",
    "contactless_magstripe_mode": "contactless (magstripe)",
}
SPINNER = "|/-\\"
SPIN_INTERVAL_S = 0.1


class UsageError(Exception):
    """A command line that cannot be carried out as given (exit 2)."""


class Output:
    """Where results go: human lines (with a spinner on a terminal) or JSON documents."""

    def __init__(self, json_mode: bool, stream: TextIO) -> None:
        self.json = json_mode
        self.stream = stream
        self.tty = not json_mode and stream.isatty()
        self._spinning = False
        self._frame = 0

    def line(self, text: str = "") -> None:
        self._clear()
        print(text, file=self.stream, flush=True)

    def document(self, value: Any) -> None:
        self._clear()
        print(json.dumps(value, ensure_ascii=False), file=self.stream, flush=True)

    def spin(self, text: str) -> None:
        """One step of the progress indicator; only on a terminal."""
        if not self.tty:
            return
        self._frame = (self._frame + 1) % len(SPINNER)
        self.stream.write(f"\r{SPINNER[self._frame]} {text}\x1b[K")
        self.stream.flush()
        self._spinning = True

    def pause(self) -> None:
        """Take the spinner off the line (before a prompt)."""
        self._clear()
        self.stream.flush()

    def _clear(self) -> None:
        if self._spinning:
            self.stream.write("\r\x1b[K")
            self._spinning = False


# -- formatting ---------------------------------------------------------------------------------


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
    return f"{text} ({method})" if method else text


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
    if payment.get("state") == "declined" and payment.get("decline"):
        parts.append(decline_text(payment["decline"]))
    if payment.get("error"):
        parts.append(error_text(payment["error"]))
    if payment.get("offline"):
        parts.append("offline")
    return "  ".join(parts)


def payment_details(payment: dict[str, Any]) -> list[str]:
    currency = payment.get("currency")
    rows = [
        ("payment", payment.get("payment_id")),
        ("order", payment.get("order_id")),
        ("amount", money(payment.get("amount"), currency)),
        ("state", payment.get("state")),
        ("card", card_text(payment.get("card")) or None),
        ("captured", money(payment.get("captured_amount"), currency) if payment.get("captured_amount") else None),
        ("decline", decline_text(payment.get("decline")) or None),
        ("error", error_text(payment.get("error")) or None),
        ("offline", "yes: authorised without Stripe, forwarded later" if payment.get("offline") else None),
        ("attempts", payment.get("attempts")),
        ("intent", payment.get("payment_intent")),
        ("created", payment.get("created_at")),
        ("updated", payment.get("updated_at")),
    ]
    return [f"{name:<9} {value}" for name, value in rows if value is not None]


def event_summary(event: Event) -> str:
    data = event.data
    payment_id = data.get("payment_id", "")
    if event.type == "payment.state":
        return payment_line(data)
    if event.type == "reader.input_options":
        return f"{payment_id} present a card: {', '.join(str(o) for o in data.get('options', []))}"
    if event.type == "reader.display_message":
        return f"{payment_id} {data.get('text') or data.get('message')}"
    if event.type == "reader.card":
        return f"{payment_id} {str(data.get('event', '')).replace('_', ' ')}"
    if event.type in ("reader.connected", "reader.disconnected"):
        reason = f" ({data['reason']})" if data.get("reason") else ""
        return f"{data.get('model', '')} {data.get('id', '')}{reason}".strip()
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


def stripe_text(stripe: dict[str, Any]) -> str:
    failures = stripe.get("consecutive_failures", 0)
    text = "reachable" if stripe.get("reachable") else f"UNREACHABLE ({failures} failures in a row)"
    if stripe.get("last_ok_at"):
        text += f", last answer {stripe['last_ok_at']}"
    return text


def rfc3339_arg(value: str) -> str:
    """An argparse type: an RFC 3339 time with its zone, passed on as written."""
    try:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an RFC 3339 time, e.g. 2026-11-26T08:00:00Z") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{value!r} needs a time zone (Z or +hh:mm)")
    return value


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{value!r} must be greater than 0")
    return number


def positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not number > 0:
        raise argparse.ArgumentTypeError(f"{value!r} must be greater than 0")
    return number


# -- the commands -------------------------------------------------------------------------------

Command = Callable[[Client, argparse.Namespace, Output], int]


def cmd_status(client: Client, args: argparse.Namespace, out: Output) -> int:
    status = client.status()
    if out.json:
        out.document(status)
        return EXIT_OK
    protocol = status.get("protocol") or {}
    mode = status.get("mode")
    note = " (payments go to the built-in Stripe emulator, not to Stripe)" if mode == "emulator" else ""
    out.line(
        f"readerhostd {status.get('daemon')}, protocol {protocol.get('major')}.{protocol.get('minor')}, "
        f"mode {mode}{note}"
    )
    out.line(f"{'up':<8} {status.get('uptime_s')} s (boot {status.get('boot_id')})")
    reader = status.get("reader") or {}
    battery = f", battery {reader['battery']}%" if reader.get("battery") is not None else ""
    out.line(
        f"{'reader':<8} {reader.get('state')}: {reader.get('model')} {reader.get('id')} "
        f"(serial {reader.get('serial')}){battery}"
    )
    out.line(f"{'stripe':<8} {stripe_text(status.get('stripe') or {})}")
    out.line(f"{'queue':<8} {queue_text(status.get('queue') or {})}")
    offline = status.get("offline") or {}
    amounts = offline.get("amount_by_currency") or {}
    if offline.get("count"):
        total = ", ".join(money(amount, currency) for currency, amount in sorted(amounts.items()))
        out.line(f"{'offline':<8} {offline['count']} payments waiting to be forwarded ({total})")
    else:
        out.line(f"{'offline':<8} none")
    return EXIT_OK


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


def show_payment(out: Output, payment: dict[str, Any], *, one_line: bool = False) -> None:
    if out.json:
        out.document(payment)
    elif one_line:
        out.line(payment_line(payment))
    else:
        for line in payment_details(payment):
            out.line(line)


def cmd_list(client: Client, args: argparse.Namespace, out: Output) -> int:
    payments = client.list_payments(states=args.state, since=args.since, limit=args.limit)
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
    report = client.reconcile(args.completed_ids, args.since, args.until, dry_run=not args.apply)
    if out.json:
        out.document(report)
        return EXIT_OK
    dry = " (dry run: nothing changed)" if report.get("dry_run", True) else ""
    out.line(f"Reconciliation{dry}: {report.get('checked', 0)} PaymentIntents of this terminal checked")
    findings = 0
    for key, title in (
        ("to_capture", "To capture"),
        ("to_cancel", "To cancel"),
        ("done", "Done"),
        ("skipped", "Skipped"),
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
        out.line("Run again with --apply to carry this out.")
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


def clock_time(at: str) -> str:
    """The local wall-clock time of an RFC 3339 timestamp, for event lines."""
    try:
        return datetime.datetime.fromisoformat(at.replace("Z", "+00:00")).astimezone().strftime("%H:%M:%S.%f")[:-3]
    except ValueError:
        return at


# -- pay ----------------------------------------------------------------------------------------


def settled(state: str, automatic: bool) -> bool:
    """Where `pay` stops: the payment no longer needs this terminal."""
    if state in ("declined", "canceled", "failed", "queued_offline", "captured"):
        return True
    return state == "authorized" and not automatic


def exit_code_for(state: str) -> int:
    if state in ("authorized", "capturing", "captured", "queued_offline"):
        return EXIT_OK
    if state == "declined":
        return EXIT_DECLINED
    return EXIT_NOT_PAID


def cmd_pay(client: Client, args: argparse.Namespace, out: Output) -> int:
    automatic = args.capture == "auto"
    order_id = args.order or generated_order_id()
    currency = args.currency.lower()
    options: dict[str, Any] = {"capture": "automatic" if automatic else "manual"}
    if args.confirm:
        options["confirm"] = True
    if args.offline:
        options["offline"] = "prefer_online"
    if args.description:
        options["description"] = args.description
    client.subscribe(["payment", "reader"])  # before starting: no event of this payment is missed
    payment = client.start_payment(order_id, args.amount, currency, **options)
    run = PayRun(client, args, out, payment)
    try:
        return run.follow(automatic)
    except KeyboardInterrupt:
        run.abandon()
        raise


class PayRun:
    """One `pay`: shows what the reader and the payment do until the payment is settled."""

    def __init__(self, client: Client, args: argparse.Namespace, out: Output, payment: dict[str, Any]) -> None:
        self.client = client
        self.args = args
        self.out = out
        self.payment = payment
        self.payment_id = str(payment["payment_id"])
        self.shown_state: str | None = None
        self.presented = False
        if out.json:
            out.document({"type": "payment.started", "data": payment})
        else:
            mode = "automatic" if args.capture == "auto" else "manual"
            out.line(
                f"payment {self.payment_id} for order {payment.get('order_id')}: "
                f"{money(payment.get('amount'), payment.get('currency'))}, {mode} capture"
            )

    def follow(self, automatic: bool) -> int:
        self.on_payment(self.payment)
        if self.payment.get("state") == "collecting":
            self.present_card()  # a payment already collecting (the same order, started before)
        while not settled(str(self.payment.get("state")), automatic):
            if self.reader_gave_up():
                return EXIT_NOT_PAID
            try:
                event = self.client.next_event(SPIN_INTERVAL_S if self.out.tty else None)
            except TimeoutError:
                self.out.spin(self.waiting_for())
                continue
            if event.data.get("payment_id") != self.payment_id:
                continue
            if self.out.json:
                self.out.document(event.to_json())
            if event.type == "payment.state":
                self.on_payment(event.data)
            else:
                self.on_reader(event)
        return self.finish()

    def waiting_for(self) -> str:
        state = self.payment.get("state")
        if state == "collecting":
            return "waiting for a card..."
        if state in ("processing", "capturing"):
            return "waiting for Stripe..."
        return f"{state}..."

    def on_payment(self, payment: dict[str, Any]) -> None:
        self.payment = payment
        state = str(payment.get("state"))
        if state == self.shown_state:
            return
        self.shown_state = state
        if not self.out.json:
            detail = ""
            if state == "declined":
                detail = decline_text(payment.get("decline"))
            elif state in ("failed", "canceled") and payment.get("error"):
                detail = error_text(payment.get("error"))
            elif payment.get("card") and state in ("awaiting_confirmation", "authorized", "captured", "queued_offline"):
                detail = card_text(payment.get("card"))
            self.out.line(f"state: {state}" + (f" - {detail}" if detail else ""))
        if state == "awaiting_confirmation":
            self.ask_to_proceed()

    def on_reader(self, event: Event) -> None:
        if event.type == "reader.input_options":
            if not self.out.json:
                options = ", ".join(str(o) for o in event.data.get("options", []))
                self.out.line(f"reader: present a card ({options})")
            self.present_card()
        elif not self.out.json and event.type == "reader.display_message":
            self.out.line(f"reader: {event.data.get('text') or event.data.get('message')}")
        elif not self.out.json and event.type == "reader.card":
            self.out.line(f"reader: {str(event.data.get('event', '')).replace('_', ' ')}")

    def present_card(self) -> None:
        if self.args.card is None or self.presented:
            return
        self.presented = True
        if not self.out.json:
            self.out.line(f"presenting test card {self.args.card}")
        try:
            self.client.present(self.args.card)
        except ReaderhostError:
            self.abandon()
            raise

    def reader_gave_up(self) -> bool:
        """A collection the reader ended without a card: cancel it rather than wait forever."""
        error = self.payment.get("error")
        if self.payment.get("state") != "collecting" or not isinstance(error, dict):
            return False
        if error.get("reason") != "READER_UNAVAILABLE":
            return False
        if not self.out.json:
            self.out.line(f"reader: {error.get('message')}")
        self.abandon()
        self.finish()
        return True

    def ask_to_proceed(self) -> None:
        if self.args.yes:
            if not self.out.json:
                self.out.line("proceeding (--yes)")
            self.on_payment(self.client.confirm(self.payment_id))
            return
        self.out.pause()
        print(
            f"Proceed with {money(self.payment.get('amount'), self.payment.get('currency'))} "
            f"on {card_text(self.payment.get('card'))}? [y/N] ",
            end="",
            file=sys.stderr,
            flush=True,
        )
        answer = sys.stdin.readline().strip().lower()
        if answer in ("y", "yes"):
            self.on_payment(self.client.confirm(self.payment_id))
        else:
            self.on_payment(self.client.cancel(self.payment_id, "requested_by_customer"))

    def abandon(self) -> None:
        """Cancel the payment if it still waits for the customer (what the daemon would do anyway)."""
        if self.payment.get("state") not in WAITING_FOR_CUSTOMER or self.client.closed:
            return
        with contextlib.suppress(ReaderhostError, ConnectionError, TimeoutError):
            self.payment = self.client.cancel(self.payment_id, "abandoned")
            print(f"readerhostctl: payment {self.payment_id} canceled", file=sys.stderr)

    def finish(self) -> int:
        payment = self.payment
        state = str(payment.get("state"))
        if self.out.json:
            self.out.document({"type": "result", "payment": payment})
            return exit_code_for(state)
        amount = money(payment.get("amount"), payment.get("currency"))
        card = card_text(payment.get("card"))
        if state == "authorized":
            self.out.line(f"authorized {amount} on {card}; capture with: readerhostctl capture {self.payment_id}")
        elif state in ("captured", "capturing"):
            self.out.line(f"captured {amount} on {card}")
        elif state == "queued_offline":
            self.out.line(f"accepted offline: {amount} on {card}, forwarded to Stripe when it is reachable")
        elif state == "declined":
            decline = payment.get("decline") or {}
            self.out.line(f"declined ({decline_text(decline)}); the order can be paid with another card")
        elif state == "failed":
            self.out.line(f"failed: {error_text(payment.get('error'))}")
        else:
            self.out.line(f"{state}: nothing was charged")
        return exit_code_for(state)


def generated_order_id() -> str:
    return f"ctl-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


# -- the command line ---------------------------------------------------------------------------


def add_global_options(parser: argparse.ArgumentParser, *, in_subcommand: bool) -> None:
    # In a subcommand the defaults are suppressed, so that an option given before the command is kept.
    def default(value: Any) -> Any:
        return argparse.SUPPRESS if in_subcommand else value

    group = parser.add_argument_group("connection and output")
    group.add_argument(
        "--socket",
        metavar="PATH",
        default=default(None),
        help="the daemon's socket (default: $READERHOST_SOCKET, else /run/readerhost/api.sock if it exists, "
        "else $XDG_RUNTIME_DIR/readerhost/api.sock, else ./readerhost-api.sock)",
    )
    group.add_argument(
        "--json", action="store_true", default=default(False), help="machine output: JSON documents / JSON lines"
    )
    group.add_argument(
        "--timeout",
        type=positive_float,
        metavar="S",
        default=default(30.0),
        help="seconds to wait for the daemon to connect and to answer each request (default 30)",
    )


def build_parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="readerhostctl",
        description="Talk to readerhostd, the card-reader daemon: status, payments, events, reconciliation.",
        epilog=EXIT_CODES + "\nSee docs/readerhostctl.md for examples.",
        formatter_class=formatter,
    )
    add_global_options(parser, in_subcommand=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, handler: Command, summary: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=summary, description=summary, epilog=EXIT_CODES, formatter_class=formatter)
        sub.set_defaults(handler=handler)
        add_global_options(sub, in_subcommand=True)
        return sub

    command("status", cmd_status, "the daemon, the reader, Stripe, the queue and offline payments at a glance")

    pay = command("pay", cmd_pay, "take a payment on the reader, showing its progress until it is settled")
    pay.add_argument("amount", type=positive_int, metavar="AMOUNT", help="in the currency's minor unit: 1250 = 12.50")
    pay.add_argument("--currency", default="usd", help="ISO 4217 code (default usd)")
    pay.add_argument("--order", metavar="ID", help="the order id (default: a generated one, ctl-<time>-<random>)")
    pay.add_argument(
        "--capture",
        choices=("auto", "manual"),
        default="manual",
        help="manual (default): stop at authorized, capture later; auto: the daemon captures at once",
    )
    pay.add_argument("--confirm", action="store_true", help="after the card is read, ask before authorising")
    pay.add_argument("--yes", action="store_true", help="with --confirm: proceed without asking")
    pay.add_argument("--offline", action="store_true", help="allow an offline authorisation when Stripe is unreachable")
    pay.add_argument("--description", help="the PaymentIntent's description")
    pay.add_argument("--card", metavar="NAME", help="simulated reader: present this test card (visa, amex, ...)")

    capture = command("capture", cmd_capture, "capture an authorized payment")
    capture.add_argument("payment_id", metavar="PAYMENT_ID")
    capture.add_argument("--amount", type=positive_int, help="capture less than authorised (minor units)")

    cancel = command("cancel", cmd_cancel, "cancel a payment (not a captured one)")
    cancel.add_argument("payment_id", metavar="PAYMENT_ID")
    cancel.add_argument("--reason", choices=CANCEL_REASONS, help="default: requested_by_customer")

    get = command("get", cmd_get, "one payment, by its id or by its order id")
    get.add_argument("payment_id", metavar="PAYMENT_ID", nargs="?")
    get.add_argument("--order", metavar="ID", help="find the payment by its order id instead")

    listing = command("list", cmd_list, "payments, newest first")
    listing.add_argument(
        "--state", action="extend", nargs="+", choices=STATES, metavar="S", help="only these states (repeatable)"
    )
    listing.add_argument("--since", type=rfc3339_arg, metavar="RFC3339", help="created at or after this time")
    listing.add_argument("--limit", type=positive_int, metavar="N", help="at most N payments (daemon default 100)")

    watch = command("watch", cmd_watch, "print events as they happen, until Ctrl-C")
    watch.add_argument(
        "--topic", action="extend", nargs="+", choices=TOPICS, metavar="T", help="only these topics (default: all)"
    )

    reconcile = command("reconcile", cmd_reconcile, "find (and with --apply, settle) uncaptured authorisations")
    reconcile.add_argument("--apply", action="store_true", help="capture and cancel (default: a dry run)")
    reconcile.add_argument(
        "--completed", metavar="FILE", help="order ids completed by the POS, one per line ('-': stdin)"
    )
    reconcile.add_argument("--since", type=rfc3339_arg, metavar="RFC3339")
    reconcile.add_argument("--until", type=rfc3339_arg, metavar="RFC3339")

    present = command("present", cmd_present, "simulated reader: present a test card")
    present.add_argument("card", metavar="CARD", help="a test card name: visa, mastercard, charge_declined, ...")

    display = command("display", cmd_display, "show text on the reader's display while idle (no lines: clear)")
    display.add_argument("lines", nargs="*", metavar="LINE", help="at most 4 lines")
    display.add_argument("--ttl", type=positive_float, metavar="S", help="clear after S seconds")
    return parser


def prepare(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Checks argparse cannot make, and reading what the command needs, before connecting."""
    if args.command == "get" and (args.payment_id is None) == (args.order is None):
        parser.error("get: give a PAYMENT_ID or --order ID (one of them)")
    if args.command == "pay" and args.confirm and not args.yes and not sys.stdin.isatty():
        parser.error("pay --confirm asks on a terminal: use --yes to proceed without asking")
    if args.command == "reconcile":
        args.completed_ids = None if args.completed is None else read_order_ids(args.completed)


def read_order_ids(name: str) -> list[str]:
    try:
        if name == "-":
            text = sys.stdin.read()
        else:
            with open(name, encoding="utf-8") as file:
                text = file.read()
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read {name}: {getattr(error, 'strerror', None) or error}") from None
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def fail(message: str, code: int) -> int:
    print(f"readerhostctl: {message}", file=sys.stderr, flush=True)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run(argv)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of our output went away (`readerhostctl watch | head`): nothing more to say.
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_DAEMON_ERROR


def run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        prepare(parser, args)
    except UsageError as error:
        return fail(str(error), EXIT_USAGE)
    out = Output(args.json, sys.stdout)
    try:
        with connected(args) as client:
            code: int = args.handler(client, args, out)
            return code
    except ReaderhostError as error:
        return fail(f"{one_line(error.message)} ({error.reason or error.code})", EXIT_DAEMON_ERROR)
    except (CannotConnect, IncompatibleProtocol) as error:
        return fail(one_line(str(error)), EXIT_NO_DAEMON)
    except ConnectionLost as error:
        return fail(f"lost the connection to readerhostd: {one_line(str(error))}", EXIT_NO_DAEMON)
    except TimeoutError as error:
        return fail(f"{one_line(str(error)) or 'timed out'} (try --timeout)", EXIT_DAEMON_ERROR)
    except (KeyboardInterrupt, BrokenPipeError):
        raise
    except Exception as error:  # a bug here must still not print a traceback at a technician
        if os.environ.get("READERHOSTCTL_DEBUG"):
            raise
        return fail(f"internal error: {type(error).__name__}: {one_line(str(error))}", EXIT_DAEMON_ERROR)


@contextlib.contextmanager
def connected(args: argparse.Namespace) -> Iterator[Client]:
    with Client.connect(args.socket, args.timeout, call_timeout=args.timeout) as client:
        yield client


def one_line(text: str) -> str:
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
