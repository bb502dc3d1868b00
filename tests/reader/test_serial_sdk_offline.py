"""Offline through the SDK's offline mode, end to end: readerhostd as a process, a protocol 2 serial
reader on a real pty (the reference device in another process, keeping what it stores in a file),
and a Stripe emulator that goes down. While Stripe is down the device stores the payment and the
daemon keeps it queued_offline; when Stripe is back the device forwards it, and the daemon checks
the PaymentIntent at Stripe and captures it exactly once — also when the daemon was SIGKILLed
between STORED and FORWARDED, and when the device restarted before it forwarded."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import EmulatorHandle
from support.daemon import daemon_process, of_type, subscribed_when_connected
from support.reader_emulator import reader_emulator


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 120))


def config(url: str, link: Path) -> str:
    return f"""
[stripe]
api_base = "{url}"
max_network_retries = 0
[reader]
driver = "serial"
reconnect_max_s = 0.3
[reader.serial]
device = "{link}"
protocol = 2
"""


TERMINAL_ID = "readerhost"  # the default [stripe] terminal_id


def journal(emulator: EmulatorHandle, op: str) -> list[Any]:
    return [e for e in emulator.emulator.journal_entries() if e.op == op]


@pytest.mark.parametrize("interruption", ["none", "daemon_killed", "device_restarted"])
def test_stored_while_stripe_is_down_then_forwarded_and_captured_once(
    tmp_path: Path, stripe_emulator: EmulatorHandle, interruption: str
) -> None:
    store = tmp_path / "device-offline.json"
    flags = (
        "--version",
        "2",
        "--stripe-api-base",
        stripe_emulator.url,
        "--card",
        "none",
        "--offline-store",
        str(store),
    )

    async def scenario() -> None:
        async with contextlib.AsyncExitStack() as stack:
            device = await stack.enter_async_context(reader_emulator(tmp_path, *flags))
            daemon = stack.enter_context(daemon_process(tmp_path, config(stripe_emulator.url, device.link)))
            pos = await subscribed_when_connected(daemon.socket_path)

            down = stripe_emulator.emulator.add_fault({"path": "^/v1/", "action": "down"})
            request = {"order_id": "OFF-1", "amount": 1250, "currency": "eur", "offline": "prefer_online"}
            payment_id = (await pos.call("payment.start", request))["result"]["payment_id"]
            await device.event("collecting")
            await device.command(present="visa")
            stored = await device.event("stored")
            queued = await pos.event(of_type("payment.state", payment_id=payment_id, state="queued_offline"))
            assert queued["params"]["data"]["card"]["last4"] == "4242"
            assert queued["params"]["data"]["payment_intent"] is None
            assert (await pos.call("payment.capture", {"payment_id": payment_id}))["result"][
                "state"
            ] == "queued_offline"
            await pos.close()

            if interruption == "daemon_killed":
                daemon.process.kill()  # SIGKILL between STORED and FORWARDED
                daemon.process.wait()
                daemon = stack.enter_context(daemon_process(tmp_path, config(stripe_emulator.url, device.link)))
            elif interruption == "device_restarted":
                await stack.aclose()  # the daemon stops, then the device: what it stored is in its file
                assert stored["offline_ref"] in store.read_text()
                device = await stack.enter_async_context(reader_emulator(tmp_path, *flags))
                daemon = stack.enter_context(daemon_process(tmp_path, config(stripe_emulator.url, device.link)))

            pos = await subscribed_when_connected(daemon.socket_path)
            snapshot = (await pos.call("payment.get", {"payment_id": payment_id}))["result"]
            assert snapshot["state"] == "queued_offline"
            assert journal(stripe_emulator, "payment_intent.create") == []  # Stripe was down all along

            stripe_emulator.emulator.faults.remove(down.id)  # the network returns
            forwarded = await device.event("forwarded")
            assert forwarded["offline_ref"] == stored["offline_ref"]
            captured = await pos.event(of_type("payment.state", payment_id=payment_id, state="captured"), timeout=30)
            intent_id = captured["params"]["data"]["payment_intent"]
            assert intent_id == forwarded["payment_intent"]
            await pos.close()

        intent = stripe_emulator.emulator.payment_intents.get(intent_id)
        assert (intent.status, intent.amount_received) == ("succeeded", 1250)
        # The bridge put the host's order metadata on the PaymentIntent it made (and its own reference).
        assert intent.metadata == {
            "offline_ref": stored["offline_ref"],
            "order_id": "OFF-1",
            "terminal_id": TERMINAL_ID,
            "payment_id": payment_id,
        }
        assert len(journal(stripe_emulator, "payment_intent.create")) == 1  # one PaymentIntent, made by the SDK
        assert len(journal(stripe_emulator, "payment_intent.confirm")) == 1
        assert len(journal(stripe_emulator, "payment_intent.capture")) == 1

    run(scenario())


def test_a_forwarded_payment_intent_without_the_orders_metadata_is_not_taken(
    tmp_path: Path, stripe_emulator: EmulatorHandle
) -> None:
    """A bridge that forwards with another order's metadata (here: its stored record altered while
    it was off) is not believed: the payment stays queued_offline and nothing is captured."""
    store = tmp_path / "device-offline.json"
    flags = (
        "--version",
        "2",
        "--stripe-api-base",
        stripe_emulator.url,
        "--card",
        "none",
        "--offline-store",
        str(store),
    )

    async def scenario() -> str:
        async with contextlib.AsyncExitStack() as stack:
            device = await stack.enter_async_context(reader_emulator(tmp_path, *flags))
            stack.enter_context(daemon_process(tmp_path, config(stripe_emulator.url, device.link)))
            pos = await subscribed_when_connected(tmp_path / "api.sock")
            down = stripe_emulator.emulator.add_fault({"path": "^/v1/", "action": "down"})
            request = {"order_id": "OFF-2", "amount": 1250, "currency": "eur", "offline": "prefer_online"}
            payment_id = (await pos.call("payment.start", request))["result"]["payment_id"]
            await device.event("collecting")
            await device.command(present="visa")
            await pos.event(of_type("payment.state", payment_id=payment_id, state="queued_offline"))
            await pos.call("payment.capture", {"payment_id": payment_id})
            await pos.close()
            await stack.aclose()  # the daemon stops, then the device

        held = json.loads(store.read_text())
        assert held[0]["metadata"] == {"order_id": "OFF-2", "terminal_id": TERMINAL_ID, "payment_id": payment_id}
        held[0]["metadata"]["order_id"] = "OFF-OTHER"
        store.write_text(json.dumps(held))

        async with contextlib.AsyncExitStack() as stack:
            device = await stack.enter_async_context(reader_emulator(tmp_path, *flags))
            daemon = stack.enter_context(daemon_process(tmp_path, config(stripe_emulator.url, device.link)))
            stripe_emulator.emulator.faults.remove(down.id)
            forwarded = await device.event("forwarded")
            refused = daemon.log.until(lambda line: "which is not this payment" in line)
            pos = await subscribed_when_connected(daemon.socket_path)
            snapshot = (await pos.call("payment.get", {"payment_id": payment_id}))["result"]
            await pos.close()
        assert snapshot["state"] == "queued_offline"
        assert snapshot["payment_intent"] is None
        assert stripe_emulator.emulator.payment_intents.get(forwarded["payment_intent"]).status == "requires_capture"
        assert journal(stripe_emulator, "payment_intent.capture") == []
        return refused

    refused = run(scenario())
    assert "its metadata's order_id is 'OFF-OTHER', not 'OFF-2'" in refused
