"""A protocol 2 link reader (a Stripe Terminal SDK bridge) over a real pty: pyserial's real POSIX code,
the reference device speaking version 2 in another process and calling the Stripe emulator itself
with the connection token the host gave it; the host's side of Stripe is stripe-python over HTTP.
What the device says about money is checked against the PaymentIntent at Stripe each time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import stripe
from conftest import EmulatorHandle, make_client
from support.reader_emulator import AsyncEmulator, reader_emulator
from support.reader_notices import Notices, Prompts

from readerhost.daemon.payments.gateway import GatewaySettings
from readerhost.daemon.payments.sdk_backend import StripeSdkBackend
from readerhost.drivers.reader import ReaderSettings
from readerhost.drivers.reader import ble as ble_driver
from readerhost.drivers.reader import serial as serial_driver
from readerhost.drivers.reader.base import OPERATIONS, Capability, ReaderBase, ReaderContext, ReaderError
from readerhost.drivers.reader.ble import BleSettings
from readerhost.drivers.reader.link import SDK_CAPABILITIES
from readerhost.drivers.reader.link.reader import LinkSettings, SdkLinkReader
from readerhost.drivers.reader.link.session import LinkTimings
from readerhost.drivers.reader.serial import SerialSettings, SerialTransport

SETTINGS = LinkSettings(
    card_wait_s=10,
    backoff_min_s=0.05,
    backoff_max_s=0.2,
    process_wait_s=10,
    timings=LinkTimings(ack_timeout_s=0.2, retransmissions=3, keepalive_s=1.0),
)


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 60))


class Rig:
    def __init__(self, device: AsyncEmulator, reader: SdkLinkReader, stripe_client: stripe.StripeClient) -> None:
        self.device, self.reader, self.stripe = device, reader, stripe_client

    def intent(self, amount: int = 1250) -> stripe.PaymentIntent:
        return self.stripe.v1.payment_intents.create(
            {
                "amount": amount,
                "currency": "eur",
                "allowed_payment_method_types": ["card_present"],
                "capture_method": "manual",
            }
        )

    def status(self, intent: stripe.PaymentIntent) -> str:
        return str(self.stripe.v1.payment_intents.retrieve(intent.id).status)


@contextlib.asynccontextmanager
async def rig(tmp_path: Path, emulator: EmulatorHandle, *flags: str) -> AsyncIterator[Rig]:
    backend = StripeSdkBackend(GatewaySettings(api_key="sk_test_emulator", api_base=emulator.url), "tml_Kiosk1")
    notices = Notices()
    async with reader_emulator(
        tmp_path, "--version", "2", "--stripe-api-base", emulator.url, "--present-after", "0.1", *flags
    ) as device:
        reader = SdkLinkReader(
            SerialTransport(str(device.link)), SETTINGS, notices, "readerhostd test", backend=backend
        )
        await reader.start()
        try:
            await notices.wait_for("reader.connected")
            yield Rig(device, reader, make_client(emulator.url))
        finally:
            await reader.stop()


def test_a_card_is_collected_then_confirmed_by_the_devices_sdk(
    tmp_path: Path, stripe_emulator: EmulatorHandle, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, stripe_emulator, "--card", "mastercard") as r:
            assert r.reader.capabilities == frozenset({Capability.CONFIRMS_ITSELF, Capability.FORWARDS_OFFLINE})
            assert r.reader.status()["state"] == "ready"
            intent = r.intent()
            method = await r.reader.collect(1250, "eur", Prompts(), payment_intent=intent.id)
            assert (method.brand, method.last4, method.reference) == ("mastercard", "4444", "")
            assert r.status(intent) == "requires_confirmation"  # collected, not confirmed
            await r.reader.process(intent.id, Prompts())
            assert r.status(intent) == "requires_capture"
            assert (await r.device.event("processed"))["status"] == "requires_capture"

    with caplog.at_level(logging.DEBUG):
        run(scenario())
    # Neither the connection token nor the client secret reaches readerhost's log (the daemon keeps
    # stripe-python's own logger at INFO at most, where it logs no bodies: daemon/journal.py).
    ours = [record.getMessage() for record in caplog.records if record.name.startswith("readerhost")]
    assert any("gave the reader a connection token" in message for message in ours)
    assert not any("pst_" in message or "_secret_" in message for message in ours)
    stripe_info = [r.getMessage() for r in caplog.records if r.name == "stripe" and r.levelno >= logging.INFO]
    assert not any("pst_" in message or "_secret_" in message for message in stripe_info)


def test_a_decline_leaves_the_payment_intent_for_another_card(tmp_path: Path, stripe_emulator: EmulatorHandle) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, stripe_emulator, "--card", "charge_declined") as r:
            intent = r.intent()
            await r.reader.collect(1250, "eur", Prompts(), payment_intent=intent.id)
            await r.reader.process(intent.id, Prompts())  # returns: the PaymentIntent says how it went
            assert r.status(intent) == "requires_payment_method"
            assert (await r.device.event("process_failed"))["code"] == "card_declined"

            await r.device.command(script={"card": "visa"})
            method = await r.reader.collect(1250, "eur", Prompts(), payment_intent=intent.id)
            assert method.last4 == "4242"
            await r.reader.process(intent.id, Prompts())
            assert r.status(intent) == "requires_capture"

    run(scenario())


def test_an_sdk_that_cannot_reach_stripe_is_asked_to_process_again(
    tmp_path: Path, stripe_emulator: EmulatorHandle
) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, stripe_emulator, "--fail-process", "unreachable") as r:
            intent = r.intent()
            await r.reader.collect(1250, "eur", Prompts(), payment_intent=intent.id)
            await r.reader.process(intent.id, Prompts())
            failed = await r.device.event("process_failed")
            assert failed["payment_intent_status"] == "requires_confirmation"
            await r.device.event("processed")  # the second PROCESS, for the same PaymentIntent
            assert r.status(intent) == "requires_capture"

    run(scenario())


@pytest.mark.parametrize("failure", ["timeout_after_confirm", "drop_after_confirm"])
def test_a_confirm_whose_answer_is_lost_is_an_error_and_stripe_holds_the_truth(
    tmp_path: Path, stripe_emulator: EmulatorHandle, failure: str
) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, stripe_emulator, "--fail-process", failure) as r:
            intent = r.intent()
            await r.reader.collect(1250, "eur", Prompts(), payment_intent=intent.id)
            with pytest.raises(ReaderError) as lost:
                await r.reader.process(intent.id, Prompts())
            assert lost.value.code in ("reader_answer_lost", "READER_UNAVAILABLE")
            # The device did confirm: the host learns it from Stripe, never from the device.
            assert r.status(intent) == "requires_capture"
            confirms = [e for e in stripe_emulator.emulator.journal_entries() if e.op == "payment_intent.confirm"]
            assert len(confirms) == 1

    run(scenario())


@pytest.mark.parametrize("fault", ["reset_before", "reset_after"])
def test_a_confirm_the_sdks_network_lost_is_answered_and_the_link_stays_up(
    tmp_path: Path, stripe_emulator: EmulatorHandle, fault: str
) -> None:
    """stripe-python's text for a network error spans lines: the device's PROCESS_FAILED carries it
    as one printable line (it once killed the device's sending half, and the device with it)."""

    async def scenario() -> None:
        async with rig(tmp_path, stripe_emulator) as r:
            intent = r.intent()
            await r.reader.collect(1250, "eur", Prompts(), payment_intent=intent.id)
            stripe_emulator.emulator.add_fault({"method": "POST", "path": "/confirm$", "action": fault})
            with pytest.raises(ReaderError) as lost:
                await r.reader.process(intent.id, Prompts())
            assert lost.value.code == "reader_answer_lost"
            failed = await r.device.event("process_failed")
            assert (failed["code"], failed["payment_intent_status"]) == ("stripe_unreachable", None)
            # Stripe holds the truth: confirmed (reset_after) or not (reset_before), then PROCESS again.
            if r.status(intent) == "requires_confirmation":
                await r.reader.process(intent.id, Prompts())
            assert r.status(intent) == "requires_capture"
            # The same link serves the next customer: the device did not fail, nor was it reconnected.
            second = r.intent(700)
            await r.reader.collect(700, "eur", Prompts(), payment_intent=second.id)
            await r.reader.process(second.id, Prompts())
            assert r.status(second) == "requires_capture"
            assert r.reader.status()["link"]["connections"] == 1

    run(scenario())


class NoStripe:
    """A backend that is never reached (opening a reader reaches nothing)."""

    def connection_token(self) -> str:
        raise AssertionError("not reached")

    def client_secret(self, payment_intent: str) -> str:
        raise AssertionError("not reached")


def opened(settings: SerialSettings, *, live: bool = False) -> Any:
    context = ReaderContext(
        ReaderSettings(driver="serial"), lambda kind, data: None, sdk_backend=lambda location: NoStripe(), live=live
    )
    return serial_driver.open_reader(settings, context)


def test_protocol_2_opens_a_reader_that_confirms_itself_and_overrides_just_that() -> None:
    reader = opened(SerialSettings(device="/dev/null", protocol=2))
    assert isinstance(reader, SdkLinkReader)
    assert reader.capabilities == SDK_CAPABILITIES == {Capability.CONFIRMS_ITSELF, Capability.FORWARDS_OFFLINE}
    for operation, capability in OPERATIONS.items():
        overridden = getattr(type(reader), operation) is not getattr(ReaderBase, operation)
        assert overridden == (capability in reader.capabilities), operation
    assert opened(SerialSettings(device="/dev/null")).capabilities == serial_driver.CAPABILITIES


def test_with_a_live_key_a_protocol_1_reader_is_refused_saying_why() -> None:
    notices: list[tuple[str, dict[str, Any]]] = []

    async def scenario() -> None:
        context = ReaderContext(
            ReaderSettings(driver="serial"),
            lambda kind, data: notices.append((kind, data)),
            sdk_backend=lambda location: NoStripe(),
            live=True,
        )
        reader = serial_driver.open_reader(SerialSettings(device="/dev/null", protocol=1), context)
        await reader.start()
        try:
            assert reader.unavailable() == "the reader is not connected (protocol 1 devices cannot take real cards)"
            assert reader.status()["link"]["last_error"] == "protocol 1 devices cannot take real cards"
            assert reader.status()["link"]["refused"] == "live key"
        finally:
            await reader.stop()

    run(scenario())
    # Said once, as a refusal: the daemon journals it with READER_REFUSED (tests/ble/test_bonding.py).
    refusal = {"id": "serial /dev/null", "model": None, "reason": "protocol 1 devices cannot take real cards"}
    assert notices == [("reader.refused", refusal)]


def test_with_a_live_key_a_ble_reader_found_by_scanning_is_refused_saying_why() -> None:
    context = ReaderContext(
        ReaderSettings(driver="ble"), lambda kind, data: None, sdk_backend=lambda location: NoStripe(), live=True
    )

    async def scenario() -> None:
        anyone = ble_driver.open_reader(BleSettings(protocol=2), context)
        await anyone.start()
        try:
            assert anyone.status()["link"]["last_error"] == ble_driver.ANY_DEVICE_REFUSED
        finally:
            await anyone.stop()
        named = ble_driver.open_reader(BleSettings(protocol=2, address="C0:FF:EE:12:34:56"), context)
        assert named.status()["link"]["last_error"] == "not connected yet"  # it will try that one

    run(scenario())
