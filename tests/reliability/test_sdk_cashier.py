"""The soak's cashier with a protocol 2 serial reader (the reference device in its own process,
readerhostd as a process): when the reader's SDK cannot attach the card it read (its own request to
Stripe lost), the payment stays collecting with the error until its POS collects again — and the
cashier does, as a POS would, instead of waiting out its patience with the reader held."""

from __future__ import annotations

import asyncio
import random

import pytest

from bench.support import workdir
from reliability.cashier import Cashier, Order
from reliability.world import stripe_settings, world


@pytest.mark.timeout(120)
def test_a_card_the_sdk_could_not_attach_is_collected_again() -> None:
    with workdir("rel-ci-sdk-cashier-") as folder, world(folder) as w:
        w.start(stripe_settings(w.url, reader=w.add_sdk_reader()))
        # The device's collect reaches Stripe's TCP and no further, once: its SDK reports an error.
        lost = w.emulator.add_fault({"method": "POST", "path": "/collect$", "action": "reset_before", "times": 1})
        cashier = Cashier(w, random.Random(1), patience_s=45.0)

        async def sell() -> str | None:
            try:
                return await cashier.sell(Order("SDK-1", 1250, "visa"))
            finally:
                await cashier.hang_up()

        state = asyncio.run(sell())
        assert lost.fired == 1
        assert state == "captured"
        assert cashier.stuck == []
        assert w.violations(settled=False) == []
