"""A readerhostd process (reliability.world's World) killed with SIGKILL while Stripe holds one of its
requests, and a POS that waits for a payment to get somewhere: for the crash tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from reliability.pos import PosClient
from reliability.world import World


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
