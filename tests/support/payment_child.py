"""A payment run in a separate process, to be killed with SIGKILL mid-way by tests.

Usage: python payment_child.py EMULATOR_URL DB_PATH ORDER_ID {create|capture|autopilot}
Prints `payment pay_...` once the payment exists, then carries it as far as asked and waits
(`autopilot`: authorised, then left to the autopilot with [reconcile] unattended = capture, its
deadline already within the lead).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for `support` and `conftest`

from conftest import TEST_KEY, EmulatorHandle

from readerhost.daemon.payments.autopilot import Autopilot, AutopilotSettings
from readerhost.daemon.payments.gateway import GatewaySettings, StripeGateway
from readerhost.daemon.payments.model import State, Unattended
from readerhost.daemon.payments.pacing import Pacer
from support.payments_core import running_core


async def main(url: str, db: Path, order_id: str, stop_at: str) -> None:
    handle = EmulatorHandle(url, emulator=None)  # type: ignore[arg-type]  # the journal is read by the parent
    async with running_core(handle, db) as core:
        payment = await core.service.start({"order_id": order_id, "amount": 1000, "currency": "usd"})
        print(f"payment {payment.payment_id}", flush=True)
        if stop_at == "capture":
            await core.until_collecting()
            core.reader.present("pm_card_present_visa")
            await core.until_state(payment.payment_id, State.AUTHORIZED)
            await core.service.capture(payment.payment_id)
        if stop_at == "autopilot":
            await core.until_collecting()
            core.reader.present("pm_card_present_visa")
            await core.until_state(payment.payment_id, State.AUTHORIZED)
            gateway = StripeGateway(GatewaySettings(api_key=TEST_KEY, api_base=url))
            settings = AutopilotSettings(Unattended.CAPTURE, lead_s=10 * 86_400)
            autopilot = Autopilot(
                core.store, core.service, core.events, gateway.retrieve_intent, Pacer(500).turn, settings
            )
            await autopilot.tend()
        await asyncio.Event().wait()  # until killed


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4]))
