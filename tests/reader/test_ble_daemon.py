"""readerhostd with a Bluetooth LE reader: real bleak through its public API, on a bumble-backed
backend, with the device emulator as a GATT peripheral on the same virtual radio. The POS sees it
all through the real socket."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from support.daemon import LineClient, of_type, running_daemon, screen_of, subscribed_when_connected
from support.oled import RecordingBus, kinds_shown, marked

from readerhost.daemon.ui import catalog
from readerhost.sim.ble_radio import VirtualRadio
from readerhost.sim.reader_device.ble import peripheral_on
from readerhost.sim.reader_device.device import DeviceScript, ReaderDevice

DISPLAY = """
[display]
kind = "ssd1306"
"""
CONFIG = """
[reader]
driver = "ble"
reconnect_max_s = 0.5
[reader.ble]
require_bond = false  # the emulator's peripheral here does not ask for bonding (tests/ble/test_bonding.py does)
scan_timeout_s = 3
connect_timeout_s = 5
"""


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 60))


def test_a_payment_through_a_ble_reader_and_a_drop_mid_collection(tmp_path: Path) -> None:
    bus = RecordingBus()

    async def scenario() -> None:
        async with VirtualRadio() as radio:
            device = ReaderDevice(script=DeviceScript(card=None, prompts=("insert_or_swipe_card",)))
            async with (
                peripheral_on(radio, device) as peripheral,
                running_daemon(
                    tmp_path, DISPLAY + CONFIG, ble_backends=radio.bleak_backends(), display_bus=bus
                ) as daemon,
            ):
                pos = await subscribed_when_connected(daemon.socket_path)
                # Until the reader answered, the kiosk's screen said so.
                shown = kinds_shown(bus.frames()[1:], [marked(catalog.reader_disconnected()), marked(catalog.idle())])
                assert (shown[0], shown[-1]) == ("reader_disconnected", "idle")
                assert screen_of(daemon).kind == "idle"
                status = (await pos.call("status.get"))["result"]["reader"]
                assert (status["state"], status["serial"], status["link"]["transport"]) == ("ready", "EMU-0001", "ble")

                # A whole payment: the reader's prompts reach the POS, the card is authorised.
                await pos.call("payment.start", {"order_id": "B-1", "amount": 1250, "currency": "eur"})
                await pos.event(of_type("reader.display_message", message="insert_or_swipe_card"))
                device.present("visa")
                authorised = await pos.event(of_type("payment.state", state="authorized"))
                assert authorised["params"]["data"]["card"]["last4"] == "4242"
                await pos.call("payment.capture", {"payment_id": authorised["params"]["data"]["payment_id"]})

                # The reader drops the connection while waiting for a card.
                started = await pos.call("payment.start", {"order_id": "B-2", "amount": 990, "currency": "eur"})
                payment_id = started["result"]["payment_id"]
                await pos.event(of_type("reader.input_options", payment_id=payment_id))
                await peripheral.disconnect()
                failed = await pos.event(lambda e: e["type"] == "payment.state" and e["data"].get("error"))
                assert failed["params"]["data"]["error"]["reason"] == "READER_UNAVAILABLE"
                assert failed["params"]["data"]["state"] == "collecting"  # not lost: collectable again
                await pos.event(of_type("reader.disconnected", id="EMU-0001"))
                shown = kinds_shown(bus.frames()[1:], [marked(catalog.reader_disconnected())])
                assert "reader_disconnected" in shown[1:]  # said again while the reader is gone
                await pos.event(of_type("reader.connected", reason="reconnected"))

                # Back by itself: the same payment takes the card on the same PaymentIntent.
                await pos.call("payment.collect_again", {"payment_id": payment_id})
                await asyncio.wait_for(device.wait_collecting(), 10)
                device.present("mastercard")
                done = await pos.event(of_type("payment.state", payment_id=payment_id, state="authorized"))
                assert done["params"]["data"]["card"]["brand"] == "mastercard"
                await pos.close()

    run(scenario())


def test_three_remote_disconnects_and_reconnects_to_a_reader_named_by_its_address(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with VirtualRadio() as radio:
            device = ReaderDevice(script=DeviceScript(card="visa", present_after_s=0))
            # Another reader in range, first to advertise: the address picks ours, not the first found.
            async with peripheral_on(radio, ReaderDevice(), name="other"), peripheral_on(radio, device) as peripheral:
                by_address = CONFIG + f'address = "{peripheral.address}"\n'
                async with running_daemon(tmp_path, by_address, ble_backends=radio.bleak_backends()) as daemon:
                    pos = await subscribed_when_connected(daemon.socket_path)
                    status = (await pos.call("status.get"))["result"]["reader"]
                    assert status["link"]["address"] == peripheral.address
                    assert device.serving
                    await cycles(pos, peripheral)
                    status = (await pos.call("status.get"))["result"]["reader"]
                    assert status["link"]["connections"] == 4
                    await pos.close()

    run(scenario())


async def cycles(pos: LineClient, peripheral: Any) -> None:
    """Three remote disconnects, each followed by the reader coming back and taking a payment."""
    for cycle in range(3):
        await peripheral.wait_connected()
        await peripheral.disconnect()
        await pos.event(of_type("reader.disconnected"))
        await pos.event(of_type("reader.connected", reason="reconnected"))
        await pos.call("payment.start", {"order_id": f"C-{cycle}", "amount": 1000 + 100 * cycle, "currency": "eur"})
        await pos.event(of_type("payment.state", state="authorized"))


def test_garbled_frames_and_a_cancel_the_reader_never_answers_over_ble(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        async with VirtualRadio() as radio:
            device = ReaderDevice(script=DeviceScript(card="visa", present_after_s=0))
            async with (
                peripheral_on(radio, device),
                running_daemon(
                    tmp_path,
                    CONFIG.replace("[reader]\n", "[reader]\ncancel_confirm_s = 0.5\n"),
                    ble_backends=radio.bleak_backends(),
                ) as daemon,
            ):
                pos = await subscribed_when_connected(daemon.socket_path)
                device.garble_next(3)
                await pos.call("payment.start", {"order_id": "G-1", "amount": 1250, "currency": "eur"})
                await pos.event(of_type("payment.state", state="authorized"))

                device.set_script(DeviceScript(card=None))
                started = await pos.call("payment.start", {"order_id": "G-2", "amount": 1250, "currency": "eur"})
                await asyncio.wait_for(device.wait_collecting(), 10)
                device.stop_answering()
                canceled = await pos.call("payment.cancel", {"payment_id": started["result"]["payment_id"]})
                assert canceled["result"]["state"] == "canceled"
                lost = await pos.event(of_type("reader.disconnected"))
                # The link was reset: the CANCEL, or a keepalive PING ahead of it, went unanswered.
                reason = lost["params"]["data"]["reason"]
                assert "cancel" in reason.lower() or "no acknowledgement" in reason
                device.stop_answering(False)
                await pos.event(of_type("reader.connected", reason="reconnected"))
                await pos.close()

    with caplog.at_level(logging.WARNING, logger="readerhost.reader"):
        run(scenario())
    assert sum("dropped a damaged frame" in message for message in caplog.messages) == 3


def test_without_bluetooth_the_daemon_runs_and_says_why_it_has_no_reader(tmp_path: Path) -> None:
    # No injected backend: bleak's own (BlueZ over D-Bus), on a machine with no Bluetooth at all.
    async def scenario() -> str:
        said = LogLineSeen("unavailable")
        logging.getLogger("readerhost.reader").addHandler(said)
        try:
            async with running_daemon(tmp_path, CONFIG) as daemon:
                await asyncio.wait_for(said.seen.wait(), 20)  # the first attempt failed, and was logged
                pos = await LineClient.connect(daemon.socket_path)
                await pos.receive()
                reader = (await pos.call("status.get"))["result"]["reader"]
                assert reader["state"] == "connecting"
                assert reader["link"]["connected"] is False
                refused = await pos.call("payment.start", {"order_id": "N-1", "amount": 1250, "currency": "eur"})
                assert refused["error"]["data"]["reason"] == "READER_UNAVAILABLE"
                assert reader["link"]["last_error"] in refused["error"]["message"]
                await pos.close()
                return str(reader["link"]["last_error"])
        finally:
            logging.getLogger("readerhost.reader").removeHandler(said)

    why = run(scenario())
    assert why.startswith(("Bluetooth is not available", "Bluetooth: "))


class LogLineSeen(logging.Handler):
    """Sets `seen` when a log line containing `text` is emitted (from the event loop's thread)."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.WARNING)
        self.text = text
        self.seen = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.seen.set()
