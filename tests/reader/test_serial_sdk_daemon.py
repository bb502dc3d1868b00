"""readerhostd as a process with a protocol 2 serial reader (a Stripe Terminal SDK bridge): pyserial's
real POSIX code on a real pty, the reference device speaking version 2 in another process and
calling the Stripe emulator itself with the connection token the daemon gave it, the POS on the
real socket. The daemon never believes the device about money: every outcome is checked here
against the PaymentIntent at Stripe, and each PaymentIntent is confirmed exactly once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import stripe
from conftest import EmulatorHandle, make_client
from support.daemon import DaemonProcess, LineClient, daemon_process, of_type, subscribed_when_connected
from support.reader_emulator import AsyncEmulator, reader_emulator

from readerhost.sim.stripe_emulator import StripeEmulator


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 90))


def config(url: str, link: Path) -> str:
    return f"""
[stripe]
api_base = "{url}"
[reader]
driver = "serial"
reconnect_max_s = 0.5
[reader.serial]
device = "{link}"
protocol = 2
location = "tml_Kiosk1"
"""


class Kiosk:
    def __init__(self, device: AsyncEmulator, daemon: DaemonProcess, pos: LineClient, emulator: EmulatorHandle) -> None:
        self.device, self.daemon, self.pos = device, daemon, pos
        self.stripe = make_client(emulator.url)
        self.emulator: StripeEmulator = emulator.emulator

    async def start(self, order: str, amount: int = 1250, **params: Any) -> str:
        request = {"order_id": order, "amount": amount, "currency": "eur", **params}
        started = await self.pos.call("payment.start", request)
        return str(started["result"]["payment_id"])

    async def state(self, payment_id: str, state: str) -> dict[str, Any]:
        event = await self.pos.event(of_type("payment.state", payment_id=payment_id, state=state), timeout=20)
        return dict(event["params"]["data"])

    def intent(self, intent_id: str) -> stripe.PaymentIntent:
        return self.stripe.v1.payment_intents.retrieve(intent_id)

    def confirms(self, intent_id: str) -> int:
        entries = self.emulator.journal_entries()
        return sum(1 for e in entries if e.op == "payment_intent.confirm" and e.object == intent_id)


@contextlib.asynccontextmanager
async def kiosk(tmp_path: Path, emulator: EmulatorHandle, *flags: str) -> AsyncIterator[Kiosk]:
    async with reader_emulator(
        tmp_path, "--version", "2", "--stripe-api-base", emulator.url, "--card", "none", *flags
    ) as device:
        with daemon_process(tmp_path, config(emulator.url, device.link)) as daemon:
            pos = await subscribed_when_connected(daemon.socket_path)
            try:
                yield Kiosk(device, daemon, pos, emulator)
            finally:
                await pos.close()


@pytest.fixture
def emulator(stripe_emulator: EmulatorHandle) -> EmulatorHandle:
    return stripe_emulator


def test_approve_then_a_decline_and_another_card_on_the_same_payment_intent(
    tmp_path: Path, emulator: EmulatorHandle
) -> None:
    async def scenario() -> None:
        async with kiosk(tmp_path, emulator) as k:
            status = (await k.pos.call("status.get"))["result"]["reader"]
            assert (status["state"], status["link"]["connected"]) == ("ready", True)

            # Approved: collected by the device's SDK, confirmed by it, captured by the host.
            paid = await k.start("V2-1")
            await k.device.event("collecting")
            assert (await k.device.command(present="visa")) == {"ok": True}
            authorised = await k.state(paid, "authorized")
            assert authorised["card"]["brand"] == "visa"
            assert authorised["card"]["last4"] == "4242"
            intent_id = authorised["payment_intent"]
            assert k.intent(intent_id).status == "requires_capture"
            await k.pos.call("payment.capture", {"payment_id": paid})
            await k.state(paid, "captured")
            assert k.intent(intent_id).status == "succeeded"
            assert k.confirms(intent_id) == 1

            # Declined, then another card on the same PaymentIntent.
            declined_id = await k.start("V2-2", 990)
            await k.device.event("collecting")
            await k.device.command(present="charge_declined")
            declined = await k.state(declined_id, "declined")
            first_intent = declined["payment_intent"]
            assert k.intent(first_intent).status == "requires_payment_method"
            await k.pos.call("payment.collect_again", {"payment_id": declined_id})
            await k.device.event("collecting")
            await k.device.command(present="mastercard")
            authorised = await k.state(declined_id, "authorized")
            assert authorised["payment_intent"] == first_intent
            assert authorised["card"]["brand"] == "mastercard"
            assert k.intent(first_intent).status == "requires_capture"
            assert k.confirms(first_intent) == 2  # the decline, then the approval: never a new PaymentIntent
            secrets_seen = (k.intent(intent_id).client_secret, k.intent(first_intent).client_secret)

        # No connection token or client secret in the daemon's log or in its store (SQLite and journal).
        log = k.daemon.log.rest()  # the daemon has stopped: its whole log
        assert "gave the reader a connection token" in log
        assert "pst_" not in log
        assert not any(secret and secret in log for secret in secrets_seen)
        stored = b"".join(path.read_bytes() for path in (tmp_path / "state").rglob("*") if path.is_file())
        assert stored, "the store was not found"
        assert b"pst_" not in stored
        assert b"_secret_" not in stored

    run(scenario())


@pytest.mark.parametrize("failure", ["timeout_after_confirm", "drop_after_confirm", "unreachable"])
def test_a_confirm_whose_answer_is_lost_is_settled_from_stripe_once(
    tmp_path: Path, emulator: EmulatorHandle, failure: str
) -> None:
    async def scenario() -> None:
        async with kiosk(tmp_path, emulator, "--fail-process", failure) as k:
            paid = await k.start("LOST-1")
            await k.device.event("collecting")
            await k.device.command(present="visa")
            if failure == "drop_after_confirm":
                await k.device.event("process_answer_lost")
                await k.device.command(replug=True)  # the device comes back; the payment did not wait for it
            authorised = await k.state(paid, "authorized")
            intent_id = authorised["payment_intent"]
            assert k.intent(intent_id).status == "requires_capture"
            assert k.confirms(intent_id) == 1

    run(scenario())


def test_cancel_while_collecting_and_while_awaiting_the_customers_ok(tmp_path: Path, emulator: EmulatorHandle) -> None:
    async def scenario() -> None:
        async with kiosk(tmp_path, emulator) as k:
            collecting = await k.start("C-1")
            await k.device.event("collecting")
            await k.pos.call("payment.cancel", {"payment_id": collecting})
            canceled = await k.state(collecting, "canceled")
            await k.device.event("canceled")

            waiting = await k.start("C-2", confirm=True)
            await k.device.event("collecting")
            await k.device.command(present="visa")
            awaiting = await k.state(waiting, "awaiting_confirmation")
            intent_id = awaiting["payment_intent"]
            assert k.intent(intent_id).status == "requires_confirmation"  # collected, not confirmed
            await k.pos.call("payment.cancel", {"payment_id": waiting})
            await k.state(waiting, "canceled")
            for intent in (canceled["payment_intent"], intent_id):
                await _until(lambda intent=intent: k.intent(intent).status == "canceled")
            assert k.confirms(intent_id) == 0

            # And the customer's OK: confirmed by the device only then.
            ok = await k.start("C-3", confirm=True)
            await k.device.event("collecting")
            await k.device.command(present="amex")
            await k.state(ok, "awaiting_confirmation")
            await k.pos.call("payment.confirm", {"payment_id": ok})
            authorised = await k.state(ok, "authorized")
            assert k.intent(authorised["payment_intent"]).status == "requires_capture"

    run(scenario())


async def _until(done: Any, timeout: float = 10.0) -> None:
    """Poll Stripe (the emulator over HTTP) until `done()`; the daemon's cancel goes through its outbox."""
    async with asyncio.timeout(timeout):
        while not await asyncio.to_thread(done):
            await asyncio.sleep(0.1)
