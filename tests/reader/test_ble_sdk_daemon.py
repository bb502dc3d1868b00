"""readerhostd with a protocol 2 Bluetooth LE reader (a Stripe Terminal SDK bridge): real bleak on a
bumble-backed backend, the reference device speaking version 2 as a GATT peripheral on the same
virtual radio and calling the Stripe emulator itself (the real stripe library over HTTP) with the
connection token the daemon gave it. Every outcome is checked against the PaymentIntent at Stripe."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from conftest import EmulatorHandle
from support.daemon import of_type, running_daemon, subscribed_when_connected

from readerhost.sim.ble_radio import VirtualRadio
from readerhost.sim.reader_device.ble import peripheral_on
from readerhost.sim.reader_device.device import DeviceIdentity, DeviceScript, ReaderDevice
from readerhost.sim.reader_device.sdk import SdkClient


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 60))


def config(url: str) -> str:
    return f"""
[stripe]
api_base = "{url}"
max_network_retries = 0
[reader]
driver = "ble"
reconnect_max_s = 0.5
[reader.ble]
require_bond = false  # the emulator's peripheral here does not ask for bonding (tests/ble/test_bonding.py does)
scan_timeout_s = 3
connect_timeout_s = 5
protocol = 2
"""


def confirms(emulator: EmulatorHandle, intent_id: str) -> int:
    return sum(
        1 for e in emulator.emulator.journal_entries() if e.op == "payment_intent.confirm" and e.object == intent_id
    )


def test_online_then_a_lost_answer_then_offline_over_ble(tmp_path: Path, stripe_emulator: EmulatorHandle) -> None:
    async def scenario() -> None:
        async with VirtualRadio() as radio:
            device = ReaderDevice(
                DeviceIdentity(versions=(2,)), DeviceScript(card=None), sdk=SdkClient(stripe_emulator.url)
            )
            async with (
                peripheral_on(radio, device),
                running_daemon(tmp_path, config(stripe_emulator.url), ble_backends=radio.bleak_backends()) as daemon,
            ):
                pos = await subscribed_when_connected(daemon.socket_path)
                status = (await pos.call("status.get"))["result"]["reader"]
                assert (status["state"], status["link"]["transport"]) == ("ready", "ble")
                intents = stripe_emulator.emulator.payment_intents

                # Online: collected and confirmed by the device's SDK.
                started = await pos.call("payment.start", {"order_id": "BLE-1", "amount": 1250, "currency": "eur"})
                payment_id = started["result"]["payment_id"]
                await device.wait_collecting()
                device.present("visa")
                authorised = await pos.event(of_type("payment.state", payment_id=payment_id, state="authorized"))
                intent_id = authorised["params"]["data"]["payment_intent"]
                assert intents.get(intent_id).status == "requires_capture"

                # The device's confirm answer is lost: settled from Stripe, confirmed once.
                device.fail_next_process("timeout_after_confirm")
                started = await pos.call("payment.start", {"order_id": "BLE-2", "amount": 990, "currency": "eur"})
                lost_id = started["result"]["payment_id"]
                await device.wait_collecting()
                device.present("mastercard")
                authorised = await pos.event(of_type("payment.state", payment_id=lost_id, state="authorized"))
                lost_intent = authorised["params"]["data"]["payment_intent"]
                assert intents.get(lost_intent).status == "requires_capture"
                assert confirms(stripe_emulator, lost_intent) == 1

                # Offline: stored by the device while Stripe is down, forwarded and captured once after.
                down = stripe_emulator.emulator.add_fault({"path": "^/v1/", "action": "down"})
                request = {"order_id": "BLE-3", "amount": 700, "currency": "eur", "offline": "prefer_online"}
                offline_id = (await pos.call("payment.start", request))["result"]["payment_id"]
                await device.wait_collecting()
                device.present("amex")
                await pos.event(of_type("payment.state", payment_id=offline_id, state="queued_offline"))
                await pos.call("payment.capture", {"payment_id": offline_id})
                stripe_emulator.emulator.faults.remove(down.id)
                captured = await pos.event(
                    of_type("payment.state", payment_id=offline_id, state="captured"), timeout=30
                )
                forwarded = intents.get(captured["params"]["data"]["payment_intent"])
                assert (forwarded.status, forwarded.amount_received) == ("succeeded", 700)
                await pos.close()

    run(scenario())
