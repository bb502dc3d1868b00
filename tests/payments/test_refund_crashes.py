"""Refunds end to end with readerhostd as a real process, SIGKILLed while Stripe holds the refund's
request (the emulator's `delay_during`: the key in flight, the answer never read), then restarted on
the same store: each refund is made exactly once, and read from Stripe. The POS speaks on the real
socket; the daemon uses the real stripe library over HTTP to the emulator in this process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import stripe
from support.emulator_fidelity import INTERAC_PAYMENT, create_intent
from support.killed_daemon import kill_while_held, until_payment
from support.smart_reader import smart_reader_config

from reliability.pos import payment_event
from reliability.world import World, world

INTERAC = "4506445006931933"  # Stripe's Interac test card


def run(scenario: Callable[[World], Any], tmp_path: Path) -> None:
    with world(tmp_path) as w:
        asyncio.run(asyncio.wait_for(scenario(w), 120))


def stripe_of(w: World) -> stripe.StripeClient:
    return stripe.StripeClient(w.key, base_addresses={"api": w.url}, max_network_retries=0)


def refund_state(refund_id: str) -> Callable[[dict[str, Any]], bool]:
    def settled(payment: dict[str, Any]) -> bool:
        return any(r["refund_id"] == refund_id and r["state"] == "succeeded" for r in payment["refunds"])

    return settled


def test_a_card_refund_killed_between_request_and_answer_is_made_once(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        await asyncio.to_thread(w.start)
        pos = await w.client()
        started = await pos.call("payment.start", {"order_id": "KR-1", "amount": 1500, "currency": "usd"})
        payment_id = started.result["payment_id"]
        await until_payment(pos, payment_id, lambda p: p["state"] == "collecting")
        while not (await pos.call("reader.present", {"card": "visa"})).ok:
            await pos.event(payment_event(payment_id, "reader.input_options"), 2.0)
        await until_payment(pos, payment_id, lambda p: p["state"] == "authorized")
        assert (await pos.call("payment.capture", {"payment_id": payment_id})).ok
        w.record.capture_asked[payment_id] = 1500  # what the harness's invariants judge by
        await until_payment(pos, payment_id, lambda p: p["state"] == "captured")

        asked = {"payment_id": payment_id, "refund_id": "KR-1-R1", "amount": 600, "reason": "requested_by_customer"}
        w.record.refund_maybe.add("KR-1-R1")
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Any] = loop.create_future()

        def ask() -> None:
            # The POS's request is answered (pending) before the worker sends it to Stripe.
            answer.set_result(asyncio.run_coroutine_threadsafe(pos.call("payment.refund", asked), loop).result(10))

        await asyncio.to_thread(kill_while_held, w, r"^/v1/refunds$", ask)
        accepted = answer.result()
        assert accepted.ok, accepted.error
        assert (accepted.result["state"], accepted.result["amount"]) == ("pending", 600)

        await asyncio.to_thread(w.start)
        pos = await w.client()
        payment = await until_payment(pos, payment_id, refund_state("KR-1-R1"))
        assert payment["refunded_amount"] == 600
        made = [e for e in w.emulator.journal_entries() if e.op == "refund.create"]
        assert [(e.amount, e.idempotency_key, e.metadata["refund_id"]) for e in made] == [
            (600, f"{payment_id}:refund:KR-1-R1", "KR-1-R1")
        ]
        assert payment["refunds"][0]["stripe_refund"] == made[0].object
        # Asked again after the restart: the same refund; more than is left: refused.
        again = await pos.call("payment.refund", asked)
        assert (again.result["refund_id"], again.result["state"]) == ("KR-1-R1", "succeeded")
        too_much = await pos.call("payment.refund", {"payment_id": payment_id, "refund_id": "KR-1-R2", "amount": 901})
        assert too_much.reason == "REFUND_EXCEEDS_CAPTURED"
        assert too_much.error is not None
        assert too_much.error["code"] == 1011
        assert len([e for e in w.emulator.journal_entries() if e.op == "refund.create"]) == 1
        assert w.violations(settled=True) == []
        await pos.close()

    run(scenario, tmp_path)


@pytest.mark.timeout(150)
def test_an_interac_refund_at_the_reader_killed_between_request_and_answer_is_made_once(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        client = stripe_of(w)
        reader_id = client.v1.terminal.readers.create({"registration_code": "simulated-wpe"}).id
        w.emulator.configure_reader(reader_id, {"processing_s": 0.05})
        config = smart_reader_config(w.url, reader_id)
        await asyncio.to_thread(w.start, config)
        pos = await w.client()
        # An Interac payment: the POS's backend made the PaymentIntent (CAD, interac_present), the
        # daemon takes the card on it at the reader; Stripe captures Interac as it authorises.
        intent = create_intent(client, 4000, currency="cad", **INTERAC_PAYMENT)
        started = await pos.call(
            "payment.start",
            {
                "order_id": "KI-1",
                "amount": 4000,
                "currency": "cad",
                "payment_intent_client_secret": intent.client_secret,
            },
        )
        assert started.ok, started.error
        payment_id = started.result["payment_id"]
        await pos.event(payment_event(payment_id, "reader.display_message"), 30.0)
        present = client.v1.test_helpers.terminal.readers.present_payment_method
        await asyncio.to_thread(present, reader_id, {"type": "interac_present", "interac_present": {"number": INTERAC}})
        paid = await until_payment(pos, payment_id, lambda p: p["state"] in ("captured", "failed", "declined"))
        assert (paid["state"], paid["card"]["brand"]) == ("captured", "interac")

        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Any] = loop.create_future()
        asked = {"payment_id": payment_id, "refund_id": "KI-1-R1", "amount": 1500}

        def ask() -> None:
            answer.set_result(asyncio.run_coroutine_threadsafe(pos.call("payment.refund", asked), loop).result(10))

        # Interac goes to the reader without being asked: killed while Stripe holds refund_payment.
        await asyncio.to_thread(kill_while_held, w, r"/refund_payment$", ask)
        accepted = answer.result()
        assert accepted.ok, accepted.error
        assert (accepted.result["state"], accepted.result["at_reader"]) == ("pending", True)

        # Restarted before the customer presents the card: the daemon looks at Stripe (no refund),
        # then follows the reader's action already under way instead of asking for another.
        await asyncio.to_thread(w.start, config)
        pos = await w.client()
        card: Any = {"type": "interac_present", "interac_present": {"number": INTERAC}}
        deadline = time.monotonic() + 30
        while True:  # presented once the reader waits for the card again (Stripe refuses it before)
            try:
                await asyncio.to_thread(present, reader_id, card)
                break
            except stripe.InvalidRequestError:
                assert time.monotonic() < deadline, "the reader never waited for the card again"
                await pos.event(payment_event(payment_id), 0.5)
        payment = await until_payment(pos, payment_id, refund_state("KI-1-R1"))
        assert payment["refunded_amount"] == 1500
        journal = w.emulator.journal_entries()
        made = [e for e in journal if e.op == "refund.create"]
        assert [(e.amount, e.metadata["refund_id"]) for e in made] == [(1500, "KI-1-R1")]
        actions = [e for e in journal if e.op == "reader.refund_payment"]
        assert [(e.idempotency_key, e.amount) for e in actions] == [(f"{payment_id}:reader_refund:KI-1-R1", 1500)]
        assert payment["refunds"][0]["stripe_refund"] == made[0].object
        await pos.close()

    run(scenario, tmp_path)
