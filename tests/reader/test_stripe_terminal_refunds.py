"""Refunds with a Stripe smart reader: readerhostd in this process with the stripe_terminal driver and
the built-in emulator's simulated WisePOS E, the POS on the real socket, the customer played with
Stripe's test helper. (The same with a SIGKILL in the middle: tests/payments/test_refund_crashes.py.)"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from conftest import make_client
from support.daemon import LineClient, emulator_of, of_type, running_daemon, subscribed_when_connected

CONFIG = """
[reader]
driver = "stripe_terminal"
cancel_confirm_s = 2
[reader.stripe_terminal]
registration_code = "simulated-wpe"
"""


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 60))


async def refund_event(pos: LineClient, refund_id: str, state: str) -> dict[str, Any]:
    event = await pos.event(of_type("refund.updated", refund_id=refund_id, state=state), timeout=20)
    data: dict[str, Any] = event["params"]["data"]
    return data


def test_a_card_refund_at_the_reader_is_refused_by_stripe_and_online_it_is_made(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_daemon(tmp_path, CONFIG) as daemon:
            pos = await subscribed_when_connected(daemon.socket_path)
            emulator = emulator_of(daemon)
            stripe = make_client(emulator.url)
            reader_id = str(daemon.parts.reader.status()["id"])
            emulator.emulator.configure_reader(reader_id, {"processing_s": 0.05})
            started = await pos.call("payment.start", {"order_id": "SR-1", "amount": 1800, "currency": "usd"})
            payment_id = started["result"]["payment_id"]
            await pos.event(of_type("reader.display_message", payment_id=payment_id, message="follow_reader"))
            await asyncio.to_thread(
                stripe.v1.test_helpers.terminal.readers.present_payment_method,
                reader_id,
                {"card_present": {"number": "4242424242424242"}},
            )
            await pos.event(of_type("payment.state", payment_id=payment_id, state="authorized"))
            await pos.call("payment.capture", {"payment_id": payment_id})
            await pos.event(of_type("payment.state", payment_id=payment_id, state="captured"))

            # Asked at the reader: Stripe makes in-person refunds only for Interac, and says so.
            asked = await pos.call(
                "payment.refund", {"payment_id": payment_id, "refund_id": "SR-1-R1", "amount": 800, "at_reader": True}
            )
            assert (asked["result"]["state"], asked["result"]["at_reader"]) == ("pending", True)
            failed = await refund_event(pos, "SR-1-R1", "failed")
            assert failed["error"]["reason"] == "STRIPE_REFUSED"
            assert "Interac" in failed["error"]["message"]
            assert failed["payment"]["refunded_amount"] == 0
            # The reader is free again; online the refund is made, and the failed one held nothing back.
            online = await pos.call("payment.refund", {"payment_id": payment_id, "refund_id": "SR-1-R2"})
            assert online["result"]["amount"] == 1800
            made = await refund_event(pos, "SR-1-R2", "succeeded")
            assert made["payment"]["refunded_amount"] == 1800
            journal = emulator.emulator.journal_entries()
            assert [e.amount for e in journal if e.op == "refund.create"] == [1800]
            assert [e.op for e in journal if e.op == "reader.refund_payment"] == []  # refused: never begun
            await pos.close()

    run(scenario())
