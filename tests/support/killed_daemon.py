"""For the crash tests: a readerhostd process (reliability.world's World), or the payment core in a
child process (payment_child.py), killed with SIGKILL while Stripe holds one of its requests; and a
POS that waits for a payment to get somewhere."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import EmulatorHandle

from reliability.pos import PosClient
from reliability.world import World

CHILD = Path(__file__).resolve().parent / "payment_child.py"


async def until_payment(pos: PosClient, payment_id: str, accept: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The payment once `accept` holds for it: re-read after each of its events (bounded)."""
    deadline = time.monotonic() + 60
    while True:
        reply = await pos.call("payment.get", {"payment_id": payment_id})
        assert reply.ok, reply.error
        if accept(reply.result):
            return dict(reply.result)
        assert time.monotonic() < deadline, f"payment {payment_id} never got there: {reply.result}"
        await pos.event(
            lambda e: (e.get("data") or {}).get("payment_id") == payment_id and e.get("type") != "reader.card", 2.0
        )


def kill_while_held(w: World, path: str, ask: Callable[[], Any]) -> Any:
    """Arm `delay_during` on `path`, run `ask` (the POS's request), wait until Stripe holds the
    daemon's request, SIGKILL the daemon; what `ask` answered."""
    rule = w.emulator.add_fault({"method": "POST", "path": path, "action": "delay_during", "seconds": 2.5})
    answered = ask()
    assert w.emulator.faults.wait_fired(rule, 1, 30.0), f"the request to {path} never reached Stripe"
    w.kill()
    w.emulator.faults.clear()
    return answered


def kill_when_in_flight(emulator: EmulatorHandle, db: Path, order_id: str, stop_at: str, path: str) -> str:
    """Start the child, wait until Stripe holds its request in flight, SIGKILL it; the payment id."""
    rule = emulator.emulator.add_fault({"method": "POST", "path": path, "action": "delay_during", "seconds": 1.5})
    child = subprocess.Popen(
        [sys.executable, str(CHILD), emulator.url, str(db), order_id, stop_at],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.startswith("payment "), line
        # Once the rule fired, the request is held by the emulator with its key in flight.
        assert emulator.emulator.faults.wait_fired(rule, timeout=30), "the request never reached Stripe"
        assert child.poll() is None, "the child died on its own"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return line.split()[1]
