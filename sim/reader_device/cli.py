"""`readerhost-reader-emulator`: a reader link device on a pty, until SIGTERM or SIGINT.

Prints `pty: /dev/pts/N` (and `link: PATH`) once the pty is ready, then takes control commands on
stdin (control.py) and reports on stdout, one JSON line each: answers, and events such as
{"event": "collecting", "collection": 1, "amount": 1250, "currency": "eur"}. With --ble TRANSPORT
it is a Bluetooth LE peripheral instead (ble_cli.py), with the same console (console.py).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys
from pathlib import Path

from . import console, control
from .device import PROCESS_FAILURES, ReaderDevice
from .offline import OfflineStore
from .pty import PluggablePty
from .script import DeviceIdentity, DeviceScript, LinkTimings
from .sdk import SdkClient

PROG = console.PROG
# A random static address has its two top bits set: the first byte is C0-FF.
_STATIC_ADDRESS = re.compile(r"[C-Fc-f][0-9A-Fa-f](:[0-9A-Fa-f]{2}){5}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="A card reader speaking the reader link protocol (docs/reader-link-protocol.md) on a "
        "pseudo-terminal, scripted by flags and driven by JSON lines on stdin.",
    )
    parser.add_argument("--pty", action="store_true", default=True, help="serve on a pseudo-terminal (default)")
    parser.add_argument("--link", type=Path, metavar="PATH", help="keep a symlink PATH to the pty while plugged in")
    parser.add_argument(
        "--ble",
        metavar="TRANSPORT",
        help="serve over Bluetooth LE instead, on a bumble HCI transport: usb:0, serial:/dev/ttyUSB0, "
        "tcp-client:HOST:PORT, ...",
    )
    parser.add_argument("--ble-name", metavar="NAME", help="the local name advertised (default readerhost-emu)")
    parser.add_argument(
        "--ble-address", metavar="ADDR", help="a random static address to keep (default: a fresh one each run)"
    )
    parser.add_argument(
        "--ble-require-encryption",
        action="store_true",
        help="take writes to the link only over an encrypted link: the host must pair (bond) first",
    )
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
    parser.add_argument(
        "--version", type=int, metavar="N", help="speak protocol version N only (--version 2: an SDK bridge)"
    )
    parser.add_argument(
        "--stripe-api-base",
        metavar="URL",
        help="version 2: where the device's Terminal SDK reaches Stripe (the Stripe emulator's URL)",
    )
    parser.add_argument(
        "--offline-store",
        type=Path,
        metavar="PATH",
        help="version 2: keep the payments stored offline in this file (they survive a restart)",
    )
    parser.add_argument(
        "--fail-process",
        metavar="MODE",
        help="version 2: make the first PROCESS fail: drop_after_confirm, timeout_after_confirm or unreachable",
    )
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
        versions = (args.version,) if args.version is not None else tuple(int(v) for v in args.versions.split(","))
    except ValueError:
        raise ValueError("--versions takes numbers separated by commas") from None
    if 2 in versions and not args.stripe_api_base:
        raise ValueError("version 2 needs --stripe-api-base: the device's SDK goes to Stripe itself")
    if args.fail_process is not None and args.fail_process not in PROCESS_FAILURES:
        raise ValueError(f"--fail-process takes one of {', '.join(PROCESS_FAILURES)}")
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
    if args.ble is None and (args.ble_address is not None or args.ble_name is not None or args.ble_require_encryption):
        raise ValueError("--ble-name, --ble-address and --ble-require-encryption go with --ble")
    if args.ble is not None and args.link is not None:
        raise ValueError("--link is for a pty, not --ble")
    if args.ble_address is not None and not _STATIC_ADDRESS.fullmatch(args.ble_address):
        raise ValueError("--ble-address takes a random static address such as C0:DE:00:00:00:01 (first byte C0-FF)")
    return identity, script


async def _run(identity: DeviceIdentity, script: DeviceScript, args: argparse.Namespace) -> int:
    timings = LinkTimings(host_silence_s=args.host_silence)
    sdk = SdkClient(args.stripe_api_base) if args.stripe_api_base else None
    offline = OfflineStore(args.offline_store)
    device = ReaderDevice(identity, script, timings=timings, on_event=console.on_event, sdk=sdk, offline=offline)
    if args.fail_process is not None:
        device.fail_next_process(args.fail_process)
    if args.ble is not None:
        from . import ble_cli  # loads bumble, which the pty mode does without

        return await ble_cli.serve(
            device,
            args.ble,
            name=args.ble_name,
            address=args.ble_address,
            require_encryption=args.ble_require_encryption,
        )
    return await _serve_pty(device, args.link)


async def _serve_pty(device: ReaderDevice, link: Path | None) -> int:
    try:
        port = PluggablePty(device, link)
        path = port.plug()
    except OSError as error:  # no ptys left, or --link names something that is not a symlink
        print(f"{PROG}: cannot plug in: {error}", file=sys.stderr)
        return 1
    stop = console.stop_on_signals()
    print(f"pty: {path}", flush=True)
    if link is not None:
        print(f"link: {link}", flush=True)

    async def handle(line: str) -> console.Answer:
        return await control.handle(line, device, port)

    try:
        await console.serve_until(stop, handle)
    finally:
        if port.path is not None:
            await port.unplug()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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
