"""A crash between attempts never yields two successes: readerhostd as a real process, SIGKILLed while
Stripe holds the cancel of an order's first attempt, then while it holds the create of its second,
restarted on the same store each time; the order is paid in its third attempt. Three payments, one
success, each attempt one PaymentIntent under its own key, and the reliability invariants hold."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import stripe
from support.killed_daemon import kill_while_held, until_payment

from reliability.pos import PosClient, payment_event
from reliability.world import World, world

ORDER = {"order_id": "KA-1", "amount": 1500, "currency": "usd"}


def in_state(*states: str) -> Callable[[dict[str, Any]], bool]:
    return lambda payment: payment["state"] in states


async def authorised(w: World, pos: PosClient) -> str:
    started = await pos.call("payment.start", ORDER)
    assert started.ok, started.error
    payment_id: str = started.result["payment_id"]
    await until_payment(pos, payment_id, in_state("collecting"))
    while not (await pos.call("reader.present", {"card": "visa"})).ok:
        await pos.event(payment_event(payment_id, "reader.input_options"), 2.0)
    await until_payment(pos, payment_id, in_state("authorized"))
    return payment_id


async def ask_killed(w: World, path: str, method: str, params: dict[str, Any], pos: PosClient) -> Any:
    """The POS's request, answered, then the daemon SIGKILLed while Stripe holds what it sent for it."""
    loop = asyncio.get_running_loop()

    def ask() -> Any:
        return asyncio.run_coroutine_threadsafe(pos.call(method, params), loop).result(10)

    return await asyncio.to_thread(kill_while_held, w, path, ask)


def test_an_order_killed_between_its_attempts_is_paid_once(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        await asyncio.to_thread(w.start)
        pos = await w.client()
        first = await authorised(w, pos)
        canceled = await ask_killed(w, r"/cancel$", "payment.cancel", {"payment_id": first}, pos)
        assert canceled.result["state"] == "canceled"
        w.record.cancel_accepted.add(first)

        await asyncio.to_thread(w.start)  # the first attempt's cancel goes again, under its own key
        pos = await w.client()
        second = await ask_killed(w, r"^/v1/payment_intents$", "payment.start", ORDER, pos)
        assert (second.result["order_attempt"], second.result["state"]) == (2, "creating")

        await asyncio.to_thread(w.start)  # the second attempt's customer is gone: canceled at the restart
        pos = await w.client()
        assert (await until_payment(pos, second.result["payment_id"], in_state("canceled")))["order_attempt"] == 2
        third = await authorised(w, pos)
        assert (await pos.call("payment.capture", {"payment_id": third})).ok
        w.record.capture_asked[third] = 1500
        captured = await until_payment(pos, third, in_state("captured"))
        assert captured["order_attempt"] == 3
        await w.until_settled(60)

        attempts = (await pos.call("payment.list", {"order_id": "KA-1"})).result["payments"]
        assert [(p["payment_id"], p["order_attempt"], p["state"]) for p in reversed(attempts)] == [
            (first, 1, "canceled"),
            (second.result["payment_id"], 2, "canceled"),
            (third, 3, "captured"),
        ]
        creates = [e for e in w.emulator.journal_entries() if e.op == "payment_intent.create"]
        assert sorted(e.idempotency_key or "" for e in creates) == [
            "readerhost:rel-kiosk:KA-1:1:create",
            "readerhost:rel-kiosk:KA-1:2:create",
            "readerhost:rel-kiosk:KA-1:3:create",
        ]
        client = stripe.StripeClient(w.key, base_addresses={"api": w.url}, max_network_retries=0)
        statuses = sorted(client.v1.payment_intents.retrieve(e.object).status for e in creates)
        assert statuses == ["canceled", "canceled", "succeeded"]
        assert w.violations(settled=True) == []
        await pos.close()

    with world(tmp_path) as w:
        asyncio.run(asyncio.wait_for(scenario(w), 150))
