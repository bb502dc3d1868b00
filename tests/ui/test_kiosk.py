"""The kiosk as a whole: readerhostd with its OLED on luma's real driver over a recording I²C bus and
its buttons and LED on gpiozero's MockFactory, taking payments with the simulated reader."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import EmulatorHandle
from support.daemon import (
    LineClient,
    daemon_env,
    emulator_of,
    screen_of,
    subscribed_when_connected,
    ui_of,
    write_config,
)
from support.oled import RecordingBus, marked
from support.smart_reader import Customer

from readerhost.daemon.app import Daemon, StandIns, build
from readerhost.daemon.config import load_config
from readerhost.daemon.ui import catalog
from readerhost.daemon.ui.screens import render

KIOSK = """
[display]
kind = "ssd1306"

[gpio]
enabled = true
hold_s = 0.2

[reader.simulated]
present_after_s = -1
"""


@pytest.fixture
def factory() -> Iterator[Any]:
    from gpiozero import Device  # type: ignore[import-untyped]
    from gpiozero.pins.mock import MockFactory, MockPWMPin  # type: ignore[import-untyped]

    mock = MockFactory(pin_class=MockPWMPin)
    yield mock
    mock.reset()
    Device.pin_factory = None


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 60))


async def kiosk(tmp_path: Path, bus: Any, factory: Any, config: str = KIOSK) -> Daemon:
    env = daemon_env(tmp_path)
    config_file = load_config(str(write_config(tmp_path, config)), env)
    stand_ins = StandIns(display_bus=bus, gpio_factory=factory)
    daemon = await build(config_file, env, cwd=tmp_path, home=tmp_path, stand_ins=stand_ins)
    await daemon.start()
    return daemon


async def pos(daemon: Daemon) -> LineClient:
    client = await LineClient.connect(daemon.socket_path)
    await client.receive()
    await client.call("events.subscribe", {"topics": ["payment", "reader"]})
    return client


def state_is(state: str) -> Any:
    return lambda e: e["type"] == "payment.state" and e["data"]["state"] == state


def press(factory: Any, pin: int) -> None:
    """A short press from another thread, as lgpio delivers it."""
    worker = threading.Thread(target=lambda: (factory.pin(pin).drive_low(), factory.pin(pin).drive_high()))
    worker.start()
    worker.join()


def test_a_payment_walks_through_its_screens_and_the_panel_shows_each(tmp_path: Path, factory: Any) -> None:
    bus = RecordingBus()
    config = KIOSK.replace("present_after_s = -1", "present_after_s = -1\nretry_card_once = true")

    async def scenario() -> None:
        daemon = await kiosk(tmp_path, bus, factory, config)
        try:
            client = await pos(daemon)
            await client.call("payment.start", {"order_id": "K-1", "amount": 1250, "currency": "usd"})
            await client.event(lambda e: e["type"] == "reader.input_options")
            await client.call("reader.present", {"card": "visa"})  # the first read fails...
            await client.event(lambda e: e["type"] == "reader.display_message")
            await client.call("reader.present", {"card": "visa"})  # ...the second one is taken
            await client.event(state_is("authorized"))
            await client.close()
            # What the panel shows, frame by frame, to the pixel; every screen carries the emulator's
            # badge, so the kiosk is never mistaken for a live terminal.
            expected = [
                catalog.idle(),
                catalog.amount_due(1250, "usd", ("tap", "insert", "swipe")),
                catalog.reader_message("retry_card", 1250, "usd"),
                catalog.amount_due(1250, "usd", ("tap", "insert", "swipe")),
                catalog.processing(),
                catalog.approved(1250, "usd"),
            ]
            frames = bus.frames()
            assert not frames[0].getbbox()  # luma clears the panel once when it starts
            assert [f.tobytes() for f in frames[1:]] == [render(marked(s)).tobytes() for s in expected]
            assert catalog.reader_message("retry_card", 1250, "usd").lines == ("Retry card",)
            assert catalog.amount_due(1250, "usd").headline == "$12.50"
        finally:
            await daemon.stop()

    run(scenario())


def test_ok_confirms_and_cancel_cancels_with_the_buttons(tmp_path: Path, factory: Any) -> None:
    async def scenario() -> None:
        daemon = await kiosk(tmp_path, RecordingBus(), factory)
        try:
            client = await pos(daemon)
            await client.call("payment.start", {"order_id": "K-2", "amount": 900, "currency": "usd", "confirm": True})
            await client.event(lambda e: e["type"] == "reader.input_options")
            await client.call("reader.present", {"card": "visa"})
            await client.event(state_is("awaiting_confirmation"))
            assert screen_of(daemon).kind == "confirm"
            assert screen_of(daemon).buttons == ("OK", "Cancel")
            press(factory, 17)  # OK
            await client.event(state_is("authorized"))

            cancel_me = await client.call("payment.start", {"order_id": "K-3", "amount": 900, "currency": "usd"})
            await client.event(lambda e: e["type"] == "reader.input_options")
            press(factory, 27)  # Cancel
            canceled = await client.event(state_is("canceled"))
            assert canceled["params"]["data"]["payment_id"] == cancel_me["result"]["payment_id"]
            await daemon.worker.stop()  # let the PaymentIntent's cancel finish before looking at Stripe
            stripe = emulator_of(daemon).emulator
            intent = canceled["params"]["data"]["payment_intent"]
            assert [(e.object, e.status) for e in stripe.journal_entries() if e.op == "payment_intent.cancel"] == [
                (intent, "canceled")
            ]
            await client.close()
        finally:
            await daemon.stop()

    run(scenario())


def test_holding_a_button_shows_the_technician_screen_and_the_led_follows(tmp_path: Path, factory: Any) -> None:
    async def scenario() -> None:
        daemon = await kiosk(tmp_path, RecordingBus(), factory)
        try:
            led = factory.pin(22)
            assert led.state == 1  # steady: ready
            client = await pos(daemon)
            await client.call("payment.start", {"order_id": "K-4", "amount": 900, "currency": "usd"})
            await client.event(lambda e: e["type"] == "reader.input_options")
            assert screen_of(daemon).kind == "amount_due"
            assert ui_of(daemon).controls_pattern == "blink"  # waiting for a card
            held = asyncio.Event()
            loop = asyncio.get_running_loop()
            original = ui_of(daemon).on_press

            def noted(button: str) -> None:
                original(button)
                if button.endswith("_held"):
                    loop.call_soon(held.set)

            ui_of(daemon).on_press = noted  # type: ignore[method-assign]  # observe the press the GPIO delivers
            threading.Thread(target=factory.pin(17).drive_low).start()
            await asyncio.wait_for(held.wait(), 10)
            assert screen_of(daemon).kind == "technician"
            assert any(line.startswith("Queue") for line in screen_of(daemon).lines)
            threading.Thread(target=factory.pin(17).drive_high).start()
            payment = (await client.call("payment.get", {"order_id": "K-4"}))["result"]
            assert payment["state"] == "collecting"  # holding OK did not confirm or cancel anything
            await client.close()
        finally:
            await daemon.stop()

    run(scenario())


def test_without_a_panel_or_gpio_the_daemon_still_takes_payments(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class AbsentBus(RecordingBus):
        def write_i2c_block_data(self, addr: int, ctrl: int, data: list[int]) -> None:
            raise OSError(121, "Remote I/O error")

    config = KIOSK.replace("hold_s = 0.2", 'hold_s = 0.2\npin_factory = "native"')

    async def scenario() -> None:
        daemon = await kiosk(tmp_path, AbsentBus(), None, config)
        try:
            assert daemon.ui is None
            client = await pos(daemon)
            await client.call("payment.start", {"order_id": "K-5", "amount": 700, "currency": "usd"})
            await client.event(lambda e: e["type"] == "reader.input_options")
            await client.call("reader.present", {"card": "visa"})
            await client.event(state_is("authorized"))
            await client.close()
        finally:
            await daemon.stop()

    with caplog.at_level("WARNING"):
        run(scenario())
    assert any("0x3C" in r.getMessage() for r in caplog.records)
    assert any("no GPIO" in r.getMessage() for r in caplog.records)


def test_a_kiosk_with_an_spi_panel_drives_its_lines_through_the_same_pin_factory_as_its_buttons(
    tmp_path: Path, factory: Any
) -> None:
    from support.oled import RecordingSpi

    spi = RecordingSpi(lambda: factory.pin(24).state)
    config = KIOSK.replace('kind = "ssd1306"', 'kind = "ssd1306"\ninterface = "spi"')

    async def scenario() -> None:
        env = daemon_env(tmp_path)
        settings = load_config(str(write_config(tmp_path, config)), env)
        stand_ins = StandIns(display_spi=spi, gpio_factory=factory)
        daemon = await build(settings, env, cwd=tmp_path, home=tmp_path, stand_ins=stand_ins)
        await daemon.start()
        try:
            client = await pos(daemon)
            await client.call("payment.start", {"order_id": "S-1", "amount": 700, "currency": "usd"})
            await client.event(lambda e: e["type"] == "reader.input_options")
            await client.call("reader.present", {"card": "visa"})
            await client.event(state_is("authorized"))
            await client.close()
            shown = [frame.tobytes() for frame in spi.frames()]
            assert render(marked(catalog.approved(700, "usd"))).tobytes() in shown
            assert render(marked(catalog.idle())).tobytes() in shown
        finally:
            await daemon.stop()
        assert spi.closed

    run(scenario())


SMART_KIOSK = """
[display]
kind = "ssd1306"

[gpio]
enabled = true
hold_s = 0.2

[reader]
driver = "stripe_terminal"

[reader.stripe_terminal]
registration_code = "simulated-wpe"
"""


def test_a_smart_reader_card_is_shown_on_the_kiosk_and_confirmed_with_its_ok_button(
    tmp_path: Path, factory: Any
) -> None:
    async def scenario() -> None:
        daemon = await kiosk(tmp_path, RecordingBus(), factory, SMART_KIOSK)
        try:
            client = await subscribed_when_connected(daemon.socket_path)
            customer = Customer(daemon)
            await client.call("payment.start", {"order_id": "SK-1", "amount": 900, "currency": "usd", "confirm": True})
            await client.event(lambda e: e["type"] == "reader.display_message")
            await customer.presents("5555555555554444")
            await client.event(state_is("awaiting_confirmation"))
            assert screen_of(daemon).kind == "confirm"
            assert screen_of(daemon).lines == ("Pay with Mastercard 4444?",)
            assert customer.journal("reader.confirm_payment_intent") == []
            press(factory, 17)  # OK: the reader confirms
            await client.event(state_is("authorized"))
            assert len(customer.journal("reader.confirm_payment_intent")) == 1
            assert [e.status for e in customer.journal("payment_intent.confirm")] == ["requires_capture"]
            await client.close()
        finally:
            await daemon.stop()

    run(scenario())


def test_a_payment_whose_wait_for_stripe_ran_out_says_card_payments_are_unavailable(
    tmp_path: Path, factory: Any, stripe_emulator: EmulatorHandle
) -> None:
    config = f'{KIOSK}\n[stripe]\napi_base = "{stripe_emulator.url}"\n\n[payments]\ncustomer_wait_s = 0.5\n'

    async def scenario() -> None:
        daemon = await kiosk(tmp_path, RecordingBus(), factory, config)
        try:
            client = await pos(daemon)
            stripe_emulator.emulator.add_fault({"method": "POST", "path": "^/v1/payment_intents", "action": "down"})
            await client.call("payment.start", {"order_id": "KW-1", "amount": 700, "currency": "usd"})
            failed = await client.event(state_is("failed"))
            assert failed["params"]["data"]["error"]["reason"] == "STRIPE_UNAVAILABLE"
            # Not "Declined": the card was never asked for; the customer is told why, not blamed.
            assert screen_of(daemon) == marked(catalog.stripe_unreachable())
            await client.close()
        finally:
            await daemon.stop()

    run(scenario())


def test_the_technician_screen_shows_the_nearest_capture_deadline_in_local_time(tmp_path: Path, factory: Any) -> None:
    async def scenario() -> None:
        daemon = await kiosk(tmp_path, RecordingBus(), factory)
        try:
            client = await pos(daemon)
            await client.call("payment.start", {"order_id": "K-9", "amount": 900, "currency": "usd"})
            await client.event(lambda e: e["type"] == "reader.input_options")
            await client.call("reader.present", {"card": "visa"})
            authorised = await client.event(state_is("authorized"))
            stored = daemon.parts.store.payment(authorised["params"]["data"]["payment_id"])
            assert stored is not None
            assert stored.capture_before is not None
            held = asyncio.Event()
            loop = asyncio.get_running_loop()
            original = ui_of(daemon).on_press

            def noted(button: str) -> None:
                original(button)
                if button.endswith("_held"):
                    loop.call_soon(held.set)

            ui_of(daemon).on_press = noted  # type: ignore[method-assign]  # observe the press the GPIO delivers
            threading.Thread(target=factory.pin(17).drive_low).start()
            await asyncio.wait_for(held.wait(), 10)
            threading.Thread(target=factory.pin(17).drive_high).start()
            local = time.strftime("%d %b %H:%M", time.localtime(stored.capture_before))
            assert screen_of(daemon).kind == "technician"
            assert f"Capture {local}" in screen_of(daemon).lines
            await client.close()
        finally:
            await daemon.stop()

    run(scenario())
