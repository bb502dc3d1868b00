"""`readerhost-stripe-emulator`: serve the Stripe emulator until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from .emulator import StripeEmulator
from .server import EmulatorHTTPServer


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="readerhost-stripe-emulator",
        description="A local stand-in for the Stripe API (card-present PaymentIntents), on 127.0.0.1 only. "
        "State is kept in memory and forgotten when the emulator stops.",
    )
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: one chosen by the OS)")
    parser.add_argument(
        "--rate-limit",
        type=float,
        default=None,
        metavar="R",
        help="answer 429 above R read and R write requests per second, as Stripe does (test mode: 25)",
    )
    parser.add_argument(
        "--search-lag",
        type=float,
        default=2.0,
        metavar="S",
        help="seconds before a change shows in /v1/payment_intents/search (default 2)",
    )
    parser.add_argument(
        "--reader-processing",
        type=float,
        default=1.0,
        metavar="S",
        help="seconds a simulated reader takes to process a presented card (default 1)",
    )
    parser.add_argument(
        "--accept-live-keys",
        action="store_true",
        help="emulate a live-mode account too: accept sk_live_ keys, and refuse what Stripe refuses in live mode",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not 0 <= args.port <= 65535:
        print(f"readerhost-stripe-emulator: --port must be 0-65535, not {args.port}", file=sys.stderr)
        return 2
    if args.rate_limit is not None and args.rate_limit <= 0:
        print("readerhost-stripe-emulator: --rate-limit must be positive", file=sys.stderr)
        return 2
    if args.search_lag < 0:
        print("readerhost-stripe-emulator: --search-lag must not be negative", file=sys.stderr)
        return 2
    if not 0 <= args.reader_processing <= 300:
        print("readerhost-stripe-emulator: --reader-processing must be 0-300 seconds", file=sys.stderr)
        return 2
    emulator = StripeEmulator(
        rate_limit=args.rate_limit,
        search_lag_s=args.search_lag,
        reader_processing_s=args.reader_processing,
        accept_live_keys=args.accept_live_keys,
    )
    try:
        server = EmulatorHTTPServer(emulator, args.port, verbose=args.verbose)
    except OSError as error:
        print(f"readerhost-stripe-emulator: cannot listen on 127.0.0.1:{args.port}: {error.strerror}", file=sys.stderr)
        return 1

    def stop(signum: int, frame: FrameType | None) -> None:
        emulator.stop()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"listening on {server.url}", flush=True)
    server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
