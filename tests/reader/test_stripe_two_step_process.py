"""The smart reader's two-step flow with readerhostd as a real process: the POS on the real socket,
the daemon's real stripe library over HTTP to the emulator in this process, the customer played
with Stripe's test helper. A payment confirmed at the kiosk; a decline collected again on the same
PaymentIntent; a confirm whose answer is lost ends authorised with one confirm; cancels while the
reader collects and while the card waits for the kiosk; and a SIGKILL while the reader confirms,
after which the PaymentIntent decides, never a second confirm."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import stripe
from support.smart_reader import DECLINED_INSUFFICIENT_FUNDS, smart_reader_config

from reliability.pos import PosClient, payment_event
from reliability.world import World, world

pytestmark = pytest.mark.timeout(150)


def run(scenario: Callable[[World], Any], tmp_path: Path) -> None:
    with world(tmp_path) as w:
        asyncio.run(asyncio.wait_for(scenario(w), 120))


def stripe_of(w: World) -> stripe.StripeClient:
    return stripe.StripeClient(w.key, base_addresses={"api": w.url}, max_network_retries=0)


class Counter:
    """The kiosk's counter: a registered simulated WisePOS E, the daemon started on it, a POS."""

    def __init__(self, w: World) -> None:
        self.w = w
        self.stripe = stripe_of(w)
        self.reader_id = self.stripe.v1.terminal.readers.create({"registration_code": "simulated-wpe"}).id
        w.emulator.configure_reader(self.reader_id, {"processing_s": 0.05})
        self.config = smart_reader_config(w.url, self.reader_id, 'flow = "two_step"')

    async def open(self) -> PosClient:
        await asyncio.to_thread(self.w.start, self.config)
        return await self.w.client()

    async def presents(self, number: str = "4242424242424242") -> None:
        present = self.stripe.v1.test_helpers.terminal.readers.present_payment_method
        await asyncio.to_thread(present, self.reader_id, {"card_present": {"number": number}})

    def journal(self, op: str, intent_id: str | None = None) -> list[Any]:
        entries = [e for e in self.w.emulator.journal_entries() if e.op == op]
        return [e for e in entries if intent_id is None or e.object == intent_id]


async def until(pos: PosClient, payment_id: str, state: str) -> dict[str, Any]:
    """The payment once it is in `state`, re-read after each of its events (bounded)."""
    deadline = time.monotonic() + 60
    while True:
        reply = await pos.call("payment.get", {"payment_id": payment_id})
        assert reply.ok, reply.error
        if reply.result["state"] == state:
            return dict(reply.result)
        assert time.monotonic() < deadline, f"payment {payment_id} never got {state}: {reply.result}"
        await pos.event(payment_event(payment_id, "payment.state"), 2.0)


async def start(pos: PosClient, order_id: str, **options: Any) -> str:
    params = {"order_id": order_id, "amount": 1250, "currency": "usd", **options}
    started = await pos.call("payment.start", params)
    assert started.ok, started.error
    payment_id: str = started.result["payment_id"]
    # The reader waits for the card once it says so (follow_reader).
    assert await pos.event(payment_event(payment_id, "reader.display_message"), 30.0) is not None
    return payment_id


def test_confirm_at_the_kiosk_a_lost_confirm_answer_and_a_decline_collected_again(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        counter = Counter(w)
        pos = await counter.open()

        # The card is read and shown; nothing is authorised until the kiosk says go. The reader's
        # confirm then applies but its answer is lost: the daemon follows it, never asks again.
        payment_id = await start(pos, "P2-1", confirm=True)
        await counter.presents()
        waiting = await until(pos, payment_id, "awaiting_confirmation")
        assert (waiting["card"]["brand"], waiting["card"]["last4"]) == ("visa", "4242")
        intent_id = waiting["payment_intent"]
        assert counter.journal("payment_intent.confirm", intent_id) == []
        w.emulator.configure_reader(counter.reader_id, {"timeout": "after_apply", "processing_s": 1.0})
        assert (await pos.call("payment.confirm", {"payment_id": payment_id})).ok
        authorised = await until(pos, payment_id, "authorized")
        assert authorised["payment_intent"] == intent_id
        assert len(counter.journal("payment_intent.confirm", intent_id)) == 1
        assert len(counter.journal("reader.confirm_payment_intent")) == 1
        w.emulator.configure_reader(counter.reader_id, {"processing_s": 0.05})

        # A decline, then another card on the same PaymentIntent.
        payment_id = await start(pos, "P2-2")
        await counter.presents(DECLINED_INSUFFICIENT_FUNDS)
        declined = await until(pos, payment_id, "declined")
        assert declined["decline"]["decline_code"] == "insufficient_funds"
        assert (await pos.call("payment.collect_again", {"payment_id": payment_id})).ok
        await pos.event(payment_event(payment_id, "reader.display_message"), 30.0)
        await counter.presents("5555555555554444")
        authorised = await until(pos, payment_id, "authorized")
        assert authorised["payment_intent"] == declined["payment_intent"]
        assert [e.status for e in counter.journal("payment_intent.confirm", authorised["payment_intent"])] == [
            "requires_payment_method",
            "requires_capture",
        ]
        assert len(counter.journal("payment_intent.create")) == 2  # one per payment, never a new one
        assert w.violations(settled=False) == []
        await pos.close()

    run(scenario, tmp_path)


def test_cancel_while_collecting_and_while_the_card_waits_for_the_kiosk(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        counter = Counter(w)
        pos = await counter.open()

        payment_id = await start(pos, "P2-C1", confirm=True)
        canceled = await pos.call("payment.cancel", {"payment_id": payment_id})
        assert canceled.result["state"] == "canceled"
        assert await asyncio.to_thread(w.emulator.wait_reader_action, counter.reader_id, 10)

        payment_id = await start(pos, "P2-C2", confirm=True)
        await counter.presents()
        intent_id = (await until(pos, payment_id, "awaiting_confirmation"))["payment_intent"]
        assert (await pos.call("payment.cancel", {"payment_id": payment_id})).ok
        await until(pos, payment_id, "canceled")
        deadline = time.monotonic() + 30
        while counter.stripe.v1.payment_intents.retrieve(intent_id).status != "canceled":
            assert time.monotonic() < deadline, "the PaymentIntent was never canceled"
            await pos.event(payment_event(payment_id), 0.5)
        assert counter.journal("payment_intent.confirm", intent_id) == []
        assert counter.journal("reader.confirm_payment_intent") == []
        await pos.close()

    run(scenario, tmp_path)


def test_a_sigkill_while_the_reader_confirms_leaves_the_payment_intent_to_decide(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        counter = Counter(w)
        pos = await counter.open()
        payment_id = await start(pos, "P2-K", confirm=True)
        await counter.presents()
        intent_id = (await until(pos, payment_id, "awaiting_confirmation"))["payment_intent"]

        # Stripe holds the reader's confirm_payment_intent (applied, the answer not yet sent): SIGKILL.
        rule = w.emulator.add_fault(
            {"method": "POST", "path": "/confirm_payment_intent$", "action": "delay_during", "seconds": 2.5}
        )
        assert (await pos.call("payment.confirm", {"payment_id": payment_id})).ok
        assert await asyncio.to_thread(w.emulator.faults.wait_fired, rule, 1, 30.0)
        w.kill()
        w.emulator.faults.clear()

        pos = await counter.open()
        settled = await until_settled(pos, payment_id)
        # Whatever the reader did is what the payment says: authorised, or failed with its PaymentIntent
        # canceled through the outbox (also when the held confirm lands after the restart read it:
        # the cancel then releases that authorisation); one confirm at most reached the card.
        wanted = "requires_capture" if settled["state"] == "authorized" else "canceled"
        assert settled["state"] in ("authorized", "failed")
        deadline = time.monotonic() + 30
        while (truth := counter.stripe.v1.payment_intents.retrieve(intent_id).status) != wanted:
            assert time.monotonic() < deadline, f"payment {settled['state']} but its PaymentIntent {truth}"
            await pos.event(payment_event(payment_id), 0.5)
        # The held confirm was applied (authorised; released again by the cancel if the restart read the
        # PaymentIntent just before), or came too late for a canceled one: never a second confirm.
        assert len(counter.journal("reader.confirm_payment_intent")) <= 1
        assert len(counter.journal("payment_intent.confirm", intent_id)) <= 1
        assert w.violations(settled=False) == []
        await pos.close()

    run(scenario, tmp_path)


async def until_settled(pos: PosClient, payment_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        reply = await pos.call("payment.get", {"payment_id": payment_id})
        assert reply.ok, reply.error
        if reply.result["state"] in ("authorized", "failed", "captured"):
            return dict(reply.result)
        assert time.monotonic() < deadline, f"payment {payment_id} never settled: {reply.result}"
        await pos.event(payment_event(payment_id, "payment.state"), 2.0)
