"""`readerhost-demo`: the daemon's main job on its embedded defaults, with a sample payment.

It starts `readerhostd` on its built-in defaults — the simulated reader and the built-in Stripe
emulator, nothing real is charged — with one addition: the kiosk's OLED is drawn in the terminal.
It waits until the daemon is ready, takes a sample payment through its
socket with `readerhostctl pay` (which shows the reader's prompts and the states as they come),
shows `readerhostctl status`, and — when run on a terminal — keeps the daemon running until
Ctrl-C so that you can try `readerhostctl` yourself in another terminal. Without a terminal (a
script, CI), or with `--once`, it stops the daemon after the sample payment.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from readerhost.daemon.config import ConfigError, load_config, resolve_socket_path


def _relay(stream: object, ready: threading.Event, failed: threading.Event) -> None:
    """Copy the daemon's log to our output, and notice when it is ready (or gave up)."""
    for line in stream:  # type: ignore[attr-defined]
        starting = not ready.is_set()
        if " ready on " in line:
            ready.set()
        if starting or not line.startswith(("INFO", "DEBUG")):  # after start-up, only what needs attention
            print(f"  readerhostd | {line.rstrip()}", flush=True)
    failed.set()


def _copy(stream: object) -> None:
    for line in stream:  # type: ignore[attr-defined]
        print(line, end="", flush=True)


def _ctl(socket_path: Path, *args: str) -> int:
    command = [sys.executable, "-m", "readerhost.daemon.ctl", "--socket", str(socket_path), *args]
    print(f"\n$ readerhostctl {shlex.join(args)}", flush=True)
    return subprocess.run(command, check=False).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="readerhost-demo", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--once", action="store_true", help="stop the daemon after the sample payment (the default without a terminal)"
    )
    parser.add_argument("--amount", type=int, default=1250, help="the sample payment, in cents (default 1250)")
    args = parser.parse_args(argv)
    # SIGTERM ends the demo like Ctrl-C does: the daemon it started is stopped, never orphaned.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    env = {k: v for k, v in os.environ.items() if k != "STRIPE_API_KEY"}  # the demo never charges for real
    try:
        socket_path = resolve_socket_path(load_config(None, env), env, Path.cwd())
    except ConfigError as error:
        print(f"readerhost-demo: {error}", file=sys.stderr)
        return 2
    print(
        "Starting readerhostd on its embedded defaults: the simulated reader and the built-in Stripe emulator,\n"
        "with the kiosk's 128x64 OLED drawn in this terminal."
    )
    config = tempfile.NamedTemporaryFile("w", prefix="readerhost-demo-", suffix=".toml", delete=False)  # noqa: SIM115
    with config:
        config.write('[display]\nkind = "terminal"\n')
    daemon = subprocess.Popen(
        [sys.executable, "-m", "readerhost.daemon.app", "--config", config.name],
        env=env,
        stdout=subprocess.PIPE,  # the OLED preview: whole frames, one after another, between the other lines
        stderr=subprocess.PIPE,
        text=True,
    )
    ready, failed = threading.Event(), threading.Event()
    threading.Thread(target=_relay, args=(daemon.stderr, ready, failed), daemon=True).start()
    threading.Thread(target=_copy, args=(daemon.stdout,), daemon=True).start()
    try:
        while not ready.wait(0.2):  # a daemon that exits early ends the wait too
            if failed.is_set() or daemon.poll() is not None:
                print("readerhost-demo: readerhostd did not start (see its log above)", file=sys.stderr)
                return 1
        paid = _ctl(socket_path, "pay", str(args.amount), "--capture", "auto")
        _ctl(socket_path, "status")
        if args.once or not sys.stdin.isatty():
            return paid
        print(
            f"\nreaderhostd keeps running on {socket_path}. In another terminal, try:\n"
            f"  .venv/bin/readerhostctl --socket {socket_path} pay 500\n"
            f"  .venv/bin/readerhostctl --socket {socket_path} watch\n"
            "Ctrl-C stops it.",
            flush=True,
        )
        daemon.wait()
        return paid
    except KeyboardInterrupt:
        return 0
    finally:
        os.unlink(config.name)
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=15)
            except subprocess.TimeoutExpired:
                daemon.kill()


if __name__ == "__main__":
    sys.exit(main())
