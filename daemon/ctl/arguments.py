"""What readerhostctl's command line accepts: the global options, the commands and their
arguments, and the argument types argparse checks them with."""

from __future__ import annotations

import argparse
import datetime
from typing import Any

from readerhost.client.wire import TOPICS
from readerhost.daemon.payments.model import CANCELLATION_REASONS, REFUND_REASONS, State
from readerhost.daemon.version import version

from .backup import cmd_backup
from .commands import (
    Command,
    cmd_cancel,
    cmd_capture,
    cmd_close,
    cmd_display,
    cmd_get,
    cmd_list,
    cmd_present,
    cmd_reader_locations,
    cmd_reader_pair,
    cmd_reader_register,
    cmd_reconcile,
    cmd_status,
    cmd_watch,
)
from .exit_codes import EXIT_CODES
from .pay import cmd_pay
from .refund import cmd_refund

STATES = tuple(state.value for state in State)


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
    parser.add_argument("--version", action="version", version=f"readerhostctl {version()}")
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
    cancel.add_argument("--reason", choices=CANCELLATION_REASONS, help="default: requested_by_customer")

    close = command("close", cmd_close, "record an order as paid outside readerhost (cash, a voucher)")
    close.add_argument("order_id", metavar="ORDER_ID")

    refund = command(
        "refund", cmd_refund, "give back part or all of a captured payment, and wait until Stripe made the refund"
    )
    refund.add_argument("payment_id", metavar="PAYMENT_ID")
    refund.add_argument("--amount", type=positive_int, help="refund less than is left (minor units; default: all)")
    refund.add_argument(
        "--refund-id", metavar="ID", help="the refund's id (default: a generated one); the same id never refunds twice"
    )
    refund.add_argument("--reason", choices=REFUND_REASONS)
    refund.add_argument(
        "--at-reader", action="store_true", help="with the card presented at the reader (Interac always is)"
    )

    get = command("get", cmd_get, "one payment, by its id or by its order id")
    get.add_argument("payment_id", metavar="PAYMENT_ID", nargs="?")
    get.add_argument("--order", metavar="ID", help="find the payment by its order id instead")

    listing = command("list", cmd_list, "payments, newest first")
    listing.add_argument(
        "--state", action="extend", nargs="+", choices=STATES, metavar="S", help="only these states (repeatable)"
    )
    listing.add_argument("--since", type=rfc3339_arg, metavar="RFC3339", help="created at or after this time")
    listing.add_argument("--limit", type=positive_int, metavar="N", help="at most N payments (daemon default 100)")
    listing.add_argument("--order", metavar="ID", help="only this order's payments (its attempts)")

    watch = command("watch", cmd_watch, "print events as they happen, until Ctrl-C")
    watch.add_argument(
        "--topic", action="extend", nargs="+", choices=TOPICS, metavar="T", help="only these topics (default: all)"
    )

    reconcile = command(
        "reconcile", cmd_reconcile, "find (and with --apply or --unattended, settle) uncaptured authorisations"
    )
    doing = reconcile.add_mutually_exclusive_group()
    doing.add_argument("--apply", action="store_true", help="capture and cancel (default: a dry run)")
    doing.add_argument("--dry-run", action="store_true", help="only report what would be done (the default)")
    reconcile.add_argument(
        "--unattended",
        action="store_true",
        help="what its POS left authorised follows [reconcile] unattended (the daily timer's run); "
        "carried out unless --dry-run",
    )
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

    backup = command("backup", cmd_backup, "copy the payment store to a file, while the daemon runs")
    backup.add_argument("path", metavar="PATH", help="the backup file (an older file there is replaced)")
    backup.add_argument(
        "--store", metavar="FILE", help="back up this store file, without asking the daemon (which may be stopped)"
    )

    reader = commands.add_parser(
        "reader",
        help="the reader: pair a Bluetooth one; register a Stripe smart reader, list the Terminal locations",
        description="The reader: pair a Bluetooth one; register a Stripe smart reader, list the Terminal locations.",
    )
    operations = reader.add_subparsers(dest="operation", metavar="OPERATION", required=True)

    def operation(name: str, handler: Command, summary: str) -> argparse.ArgumentParser:
        sub = operations.add_parser(
            name, help=summary, description=summary, epilog=EXIT_CODES, formatter_class=formatter
        )
        sub.set_defaults(handler=handler)
        add_global_options(sub, in_subcommand=True)
        return sub

    register = operation(
        "register", cmd_reader_register, "register a Stripe smart reader and use it from now on (root or readerhost)"
    )
    register.add_argument("code", metavar="CODE", help="the registration code the reader shows (simulated-wpe: test)")
    register.add_argument("--location", metavar="tml_...", help="the Terminal location to put it in")
    register.add_argument("--label", help="its name in the Stripe Dashboard (default readerhost)")
    operation("locations", cmd_reader_locations, "the Stripe account's Terminal locations")
    operation(
        "pair",
        cmd_reader_pair,
        "bond with the Bluetooth reader ([reader.ble] address), which must be in pairing mode (root or readerhost)",
    )
    return parser
