"""Flexible authorisations on a Stripe smart reader (server-driven, both flows): the options ride on the
PaymentIntent readerhostd creates, the reader confirms on it, and the hold is raised through the outbox."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.daemon import of_type
from support.smart_reader import FLOWS, at_the_counter, run, waiting_for_card


@pytest.mark.parametrize("flow", sorted(FLOWS))
def test_a_smart_readers_payment_asked_incremental_is_raised_and_captured(tmp_path: Path, flow: str) -> None:
    async def scenario() -> None:
        async with at_the_counter(tmp_path, FLOWS[flow]) as (pos, customer):
            params = {"order_id": "SR-EV-1", "amount": 5000, "currency": "usd", "incremental": True}
            started = await pos.call("payment.start", params)
            payment_id = started["result"]["payment_id"]
            await waiting_for_card(pos, payment_id)
            await customer.presents()
            held = await pos.event(of_type("payment.state", payment_id=payment_id, state="authorized"))
            payment = held["params"]["data"]
            assert payment["card_support"]["incremental_authorization_supported"] is True
            intent = customer.stripe.v1.payment_intents.retrieve(payment["payment_intent"])
            assert intent.payment_method_options is not None
            assert intent.payment_method_options.card_present is not None
            assert intent.payment_method_options.card_present.request_incremental_authorization_support is True

            asked = {"payment_id": payment_id, "increment_id": "SR-EV-1-I1", "amount": 7000}
            assert "result" in await pos.call("payment.increment", asked)
            raised = await pos.event(of_type("increment.updated", increment_id="SR-EV-1-I1", state="succeeded"))
            assert raised["params"]["data"]["payment"]["authorized_amount"] == 7000
            captured = await pos.call("payment.capture", {"payment_id": payment_id, "amount": 6840})
            assert "result" in captured, captured
            done = await pos.event(of_type("payment.state", payment_id=payment_id, state="captured"))
            assert done["params"]["data"]["captured_amount"] == 6840
            assert [e.amount for e in customer.journal("payment_intent.increment_authorization")] == [7000]

    run(scenario())
