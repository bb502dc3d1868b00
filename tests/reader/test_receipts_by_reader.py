"""The payment's receipt, on the host-confirmed path of a link reader: readerhostd with a serial reader
(pyserial on a real pty, the reader emulator in another process), the POS on the real socket, the
built-in Stripe emulator behind the daemon's confirm. (The simulated reader's is in
tests/client/test_ctl.py, the smart reader's in test_stripe_terminal_operations.py.)"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from support.daemon import of_type, running_daemon, subscribed_when_connected
from support.reader_emulator import reader_emulator


def test_a_serial_readers_payment_carries_its_charges_receipt(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with (
            reader_emulator(tmp_path, "--card", "none", "--serial", "SER-R") as emulator,
            running_daemon(
                tmp_path, f'[reader]\ndriver = "serial"\n[reader.serial]\ndevice = "{emulator.link}"\n'
            ) as daemon,
        ):
            pos = await subscribed_when_connected(daemon.socket_path)
            started = await pos.call("payment.start", {"order_id": "RC-1", "amount": 1250, "currency": "usd"})
            payment_id = started["result"]["payment_id"]
            assert started["result"]["receipt"] is None  # nothing from Stripe yet
            await emulator.event("collecting")
            assert (await emulator.command(present="visa")) == {"ok": True}
            authorised = await pos.event(of_type("payment.state", payment_id=payment_id, state="authorized"))
            receipt: dict[str, Any] = authorised["params"]["data"]["receipt"]
            assert (receipt["brand"], receipt["last4"], receipt["read_method"]) == ("visa", "4242", "contactless_emv")
            assert (receipt["dedicated_file_name"], receipt["application_preferred_name"]) == (
                "A0000000031010",
                "Visa Credit",
            )
            assert receipt["authorization_response_code"] == "3030"
            assert receipt["authorization_code"] is not None
            assert receipt["receipt_url"].startswith("https://pay.stripe.com/receipts/payment/ch_")
            # The store has it: read back, and through the capture that follows.
            await pos.call("payment.capture", {"payment_id": payment_id})
            captured = await pos.event(of_type("payment.state", payment_id=payment_id, state="captured"))
            assert captured["params"]["data"]["receipt"] == receipt
            assert (await pos.call("payment.get", {"payment_id": payment_id}))["result"]["receipt"] == receipt
            await pos.close()

    asyncio.run(asyncio.wait_for(scenario(), 60))
