"""`readerhost-reader-emulator`: a reader link device on a pty, until SIGTERM or SIGINT.

Prints `pty: /dev/pts/N` (and `link: PATH`) once the pty is ready, then takes control commands on
stdin (control.py) and reports on stdout, one JSON line each: answers, and events such as
{"event": "collecting", "collection": 1, "amount": 1250, "currency": "eur"}.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import selectors
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from . import control
from .device import ReaderDevice
from .pty import PluggablePty
from .script import DeviceIdentity, DeviceScript, LinkTimings

PROG = "readerhost-reader-emulator"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="A card reader speaking the reader link protocol (docs/reader-link-protocol.md) on a "
        "pseudo-terminal, scripted by flags and driven by JSON lines on stdin.",
    )
    parser.add_argument("--pty", action="store_true", default=True, help="serve on a pseudo-terminal (default)")
    parser.add_argument("--link", type=Path, metavar="PATH", help="keep a symlink PATH to the pty while plugged in")
    parser.add_argument("--ble", metavar="TRANSPORT", help="serve over Bluetooth LE instead (not available yet)")
    parser.add_argument(
        "--card", default="visa", metavar="NAME|none", help="test card presented by itself (default visa)"
    )
    parser.add_argument(
        "--present-after", type=float, default=1.0, metavar="S", help="seconds before it is (default 1)"
    )
    parser.add_argument(
        "--prompt", action="append", default=[], metavar="MSG", help="a display message before the card (repeatable)"
    )
    parser.add_argument("--error", metavar="CODE", help="end every collection with this ERROR code instead")
    parser.add_argument("--card-events", action="store_true", help="send card_inserted/card_removed (a contact read)")
    parser.add_argument("--delay", type=float, default=0.0, metavar="S", help="seconds between a collection's steps")
    parser.add_argument("--model", default=DeviceIdentity.model)
    parser.add_argument("--serial", default=DeviceIdentity.serial)
    parser.add_argument("--firmware", default=DeviceIdentity.firmware)
    parser.add_argument("--battery", default="100", metavar="0-100|none", help="battery level (none: mains powered)")
    parser.add_argument("--versions", default="1", metavar="N[,N...]", help="protocol versions spoken (default 1)")
    parser.add_argument("--host-silence", type=float, default=15.0, metavar="S", help=argparse.SUPPRESS)
    parser.add_argument("--verbose", action="store_true", help="log the link to stderr")
    return parser


def _configure(args: argparse.Namespace) -> tuple[DeviceIdentity, DeviceScript]:
    """ValueError with a message naming the flag for anything wrong."""
    try:
        battery = None if args.battery == "none" else int(args.battery)
    except ValueError:
        raise ValueError("--battery takes 0-100 or none") from None
    try:
        versions = tuple(int(v) for v in args.versions.split(","))
    except ValueError:
        raise ValueError("--versions takes numbers separated by commas") from None
    identity = DeviceIdentity(
        model=args.model, serial=args.serial, firmware=args.firmware, battery=battery, versions=versions
    )
    script = DeviceScript(
        card=None if args.card == "none" else args.card,
        present_after_s=args.present_after,
        prompts=tuple(args.prompt),
        error=args.error,
        card_events=args.card_events,
        delay_s=args.delay,
    )
    if args.host_silence <= 0:
        raise ValueError("--host-silence must be positive")
    return identity, script


def _say(fields: Mapping[str, Any]) -> None:
    with contextlib.suppress(BrokenPipeError):  # nobody listens any more; run on until told to stop
        print(json.dumps(dict(fields)), flush=True)


def _on_event(name: str, fields: Mapping[str, Any]) -> None:
    _say({"event": name, **fields})


def _pollable(stream: TextIO) -> bool:
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(stream.fileno(), selectors.EVENT_READ)
    except (OSError, ValueError):
        return False
    return True


async def _control(device: ReaderDevice, port: PluggablePty) -> None:
    """Serve the control channel on stdin until EOF; without a readable stdin there is none."""
    if not _pollable(sys.stdin):
        return  # e.g. /dev/null or a file: epoll refuses them
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        if line.strip():
            _say(await control.handle(line.decode(errors="replace"), device, port))


async def _run(identity: DeviceIdentity, script: DeviceScript, args: argparse.Namespace) -> int:
    device = ReaderDevice(identity, script, timings=LinkTimings(host_silence_s=args.host_silence), on_event=_on_event)
    try:
        port = PluggablePty(device, args.link)
        path = port.plug()
    except OSError as error:  # no ptys left, or --link names something that is not a symlink
        print(f"{PROG}: cannot plug in: {error}", file=sys.stderr)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"pty: {path}", flush=True)
    if args.link is not None:
        print(f"link: {args.link}", flush=True)
    controlling = loop.create_task(_control(device, port))
    try:
        await stop.wait()
    finally:
        controlling.cancel()
        if port.path is not None:
            await port.unplug()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.ble is not None:
        print(f"{PROG}: --ble is not available yet", file=sys.stderr)
        return 2
    try:
        identity, script = _configure(args)
    except ValueError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr, format=f"{PROG}: %(message)s"
    )
    return asyncio.run(_run(identity, script, args))


if __name__ == "__main__":
    sys.exit(main())
