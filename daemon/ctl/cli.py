"""One run of readerhostctl: parse and check the command line, connect, run the command, and turn
every failure into one line on stderr and its exit code."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence

from readerhost.client import CannotConnect, Client, ConnectionLost, IncompatibleProtocol, ReaderhostError

from .arguments import build_parser
from .backup import cmd_backup
from .commands import Command
from .exit_codes import EXIT_DAEMON_ERROR, EXIT_INTERRUPTED, EXIT_NO_DAEMON, EXIT_TIMEOUT, EXIT_USAGE
from .output import Output, fail


class UsageError(Exception):
    """A command line that cannot be carried out as given (exit 2)."""


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
    handler: Command = args.handler
    if args.command == "backup" and args.store is not None:
        return cmd_backup(None, args, out)  # the store is named: no daemon to ask
    try:
        with Client.connect(args.socket, args.timeout, call_timeout=args.timeout) as client:
            return handler(client, args, out)
    except ReaderhostError as error:
        return fail(f"{one_line(error.message)} ({error.reason or error.code})", EXIT_DAEMON_ERROR)
    except (CannotConnect, IncompatibleProtocol) as error:
        return fail(one_line(str(error)), EXIT_NO_DAEMON)
    except ConnectionLost as error:
        return fail(f"lost the connection to readerhostd: {one_line(str(error))}", EXIT_NO_DAEMON)
    except TimeoutError as error:
        return fail(f"{one_line(str(error)) or 'timed out'} (try --timeout)", EXIT_TIMEOUT)
    except BrokenPipeError:
        raise  # for main(), like KeyboardInterrupt (which is no Exception, so never caught below)
    except Exception as error:  # a bug here must still not print a traceback at a technician
        if os.environ.get("READERHOSTCTL_DEBUG"):
            raise
        return fail(f"internal error: {type(error).__name__}: {one_line(str(error))}", EXIT_DAEMON_ERROR)


def one_line(text: str) -> str:
    return " ".join(text.split())
