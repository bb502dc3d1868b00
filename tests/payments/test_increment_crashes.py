"""An EV-charging session end to end with readerhostd as a real process: authorise 50.00 with incremental
support, raise the hold twice, one raise declined, capture 73.40 — and the daemon SIGKILLed while Stripe
holds each increment's request and the capture's (the emulator's `delay_during`: the key in flight, the
answer never read), then restarted on the same store. Each increment reaches Stripe exactly once (one
request per increment_id in the emulator's journal), the declined one leaves the hold as it was, and the
capture takes what was used, once. The POS speaks on the real socket."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from support.emulator_fidelity import wait_until
from support.killed_daemon import until_payment

from reliability.pos import PosClient, payment_event
from reliability.world import World, world

INCREMENTS = ("payment_intent.increment_authorization", "payment_intent.increment_authorization.declined")


def increment_state(increment_id: str, state: str) -> Callable[[dict[str, Any]], bool]:
    return lambda p: any(i["increment_id"] == increment_id and i["state"] == state for i in p["increments"])


def increments_sent(w: World, increment_id: str) -> list[Any]:
    return [
        e
        for e in w.emulator.journal_entries()
        if e.op in INCREMENTS and (e.idempotency_key or "").endswith(increment_id)
    ]


async def killed_in_flight(
    w: World, pos: PosClient, method: str, asked: dict[str, Any], path: str, carried_out: Callable[[], bool]
) -> dict[str, Any]:
    """Ask `method`; SIGKILL the daemon while Stripe holds its request to `path`; restart once Stripe has
    carried it out (`carried_out`: its answer was lost with the daemon). What the POS was answered."""
    rule = w.emulator.add_fault({"method": "POST", "path": path, "action": "delay_during", "seconds": 1.0})
    accepted = await pos.call(method, asked)
    assert accepted.ok, accepted.error
    assert await asyncio.to_thread(w.emulator.faults.wait_fired, rule, 1, 30.0), f"{method} never reached Stripe"
    await pos.close()
    await asyncio.to_thread(w.kill)
    w.emulator.faults.clear()
    await asyncio.to_thread(wait_until, carried_out, timeout=10.0, what=f"Stripe's answer to {method}")
    await asyncio.to_thread(w.start)
    return dict(accepted.result)


async def increment_killed_in_flight(w: World, pos: PosClient, asked: dict[str, Any]) -> None:
    def sent_once() -> bool:
        return len(increments_sent(w, asked["increment_id"])) == 1

    accepted = await killed_in_flight(w, pos, "payment.increment", asked, "/increment_authorization$", sent_once)
    mine = [i for i in accepted["increments"] if i["increment_id"] == asked["increment_id"]]
    assert [(i["state"], i["amount"]) for i in mine] == [("pending", asked["amount"])]  # committed before sending


def test_an_ev_charging_session_killed_during_each_increment_raises_each_once(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        await asyncio.to_thread(w.start)
        pos = await w.client()
        started = await pos.call(
            "payment.start", {"order_id": "EV-K1", "amount": 5000, "currency": "usd", "incremental": True}
        )
        assert started.ok, started.error
        payment_id = started.result["payment_id"]
        await until_payment(pos, payment_id, lambda p: p["state"] == "collecting")
        while not (await pos.call("reader.present", {"card": "visa"})).ok:
            await pos.event(payment_event(payment_id, "reader.input_options"), 2.0)
        held = await until_payment(pos, payment_id, lambda p: p["state"] == "authorized")
        assert held["authorized_amount"] == 5000
        assert held["card_support"]["incremental_authorization_supported"] is True

        for increment_id, amount in (("EV-K1-I1", 6200), ("EV-K1-I2", 8000)):
            asked = {"payment_id": payment_id, "increment_id": increment_id, "amount": amount}
            await increment_killed_in_flight(w, pos, asked)
            pos = await w.client()
            raised = await until_payment(pos, payment_id, increment_state(increment_id, "succeeded"))
            assert (raised["state"], raised["authorized_amount"]) == ("authorized", amount)

        w.emulator.decline_increments(1, "insufficient_funds")
        declined_ask = {"payment_id": payment_id, "increment_id": "EV-K1-I3", "amount": 9500}
        await increment_killed_in_flight(w, pos, declined_ask)
        pos = await w.client()
        declined = await until_payment(pos, payment_id, increment_state("EV-K1-I3", "declined"))
        assert (declined["state"], declined["authorized_amount"]) == ("authorized", 8000)  # the old hold stays
        again = await pos.call("payment.increment", declined_ask)  # asked again: the same, declined, increment
        assert again.ok, again.error
        assert [i["state"] for i in again.result["increments"]] == ["succeeded", "succeeded", "declined"]
        conflict = await pos.call("payment.increment", {**declined_ask, "amount": 9000})
        assert conflict.reason == "IDEMPOTENCY_CONFLICT"

        def captures() -> list[Any]:
            return [e for e in w.emulator.journal_entries() if e.op == "payment_intent.capture"]

        w.record.capture_asked[payment_id] = 7340  # what the harness's invariants judge by
        capture = {"payment_id": payment_id, "amount": 7340}
        await killed_in_flight(w, pos, "payment.capture", capture, "/capture$", lambda: len(captures()) == 1)
        pos = await w.client()
        captured = await until_payment(pos, payment_id, lambda p: p["state"] == "captured")
        assert [(e.amount, e.idempotency_key) for e in captures()] == [(7340, f"{payment_id}:capture")]
        assert captured["captured_amount"] == 7340

        for increment_id, op, amount in (
            ("EV-K1-I1", INCREMENTS[0], 6200),
            ("EV-K1-I2", INCREMENTS[0], 8000),
            ("EV-K1-I3", INCREMENTS[1], 9500),
        ):
            sent = increments_sent(w, increment_id)
            assert [(e.op, e.amount, e.idempotency_key) for e in sent] == [
                (op, amount, f"{payment_id}:increment:{increment_id}")
            ]
        intent = w.emulator.payment_intents.get(captured["payment_intent"])
        assert (intent.status, intent.amount, intent.amount_received, intent.increment_attempts) == (
            "succeeded",
            8000,
            7340,
            3,
        )
        assert w.lives == 5
        assert w.violations(settled=True) == []
        await pos.close()

    with world(tmp_path) as w:
        asyncio.run(asyncio.wait_for(scenario(w), 150))
