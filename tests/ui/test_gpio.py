"""Buttons, LED and buzzer through gpiozero's real devices on its MockFactory.

Pins are driven from another thread, as lgpio's callbacks arrive on a Pi; the LED's and buzzer's
pins notify a condition on every change, so that tests wait for what they expect, with a timeout.
"""

from __future__ import annotations

import asyncio
import errno
import importlib.util
import itertools
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero import Device  # type: ignore[import-untyped]
from gpiozero.pins.mock import MockFactory, MockPWMPin  # type: ignore[import-untyped]

from readerhost.drivers.gpio import BEEP_S, BLINK_S, Controls, GpioSettings

SETTINGS = GpioSettings(enabled=True, ok_pin=17, cancel_pin=27, led_pin=22, buzzer_pin=23)
WAIT_S = 5.0


class SignallingPin(MockPWMPin):  # type: ignore[misc]
    """A mock pin that tells a condition whenever its state changes."""

    changed = threading.Condition()

    def _change_state(self, value: Any) -> bool:
        with SignallingPin.changed:
            did: bool = super()._change_state(value)
            SignallingPin.changed.notify_all()
        return did


@pytest.fixture
def factory() -> Iterator[Any]:
    mock = MockFactory(pin_class=SignallingPin)
    yield mock
    mock.reset()
    Device.pin_factory = None


@pytest.fixture(autouse=True)
def _reset_gpiozero() -> Iterator[None]:
    yield
    Device.pin_factory = None


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A loop for tests that need one only to hand to Controls (nothing is pressed)."""
    new = asyncio.new_event_loop()
    yield new
    new.close()


def states(pin: Any) -> list[bool]:
    return [bool(state.state) for state in pin.states]


def rises(pin: Any) -> int:
    values = states(pin)
    return sum(1 for before, after in itertools.pairwise(values) if after and not before)


def wait_for(predicate: Callable[[], bool], timeout: float = WAIT_S) -> bool:
    with SignallingPin.changed:
        return SignallingPin.changed.wait_for(predicate, timeout)


def ignore(name: str) -> None:
    pass


def in_another_thread(action: Callable[[], object]) -> None:
    """Run `action` in a thread of its own, as lgpio delivers edges, and wait for it."""
    thread = threading.Thread(target=action)
    thread.start()
    thread.join(WAIT_S)
    assert not thread.is_alive()


class Presses:
    """on_press for the tests: records the name and the thread it ran in; wait() for the next one."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self._event = asyncio.Event()

    def __call__(self, name: str) -> None:
        self.calls.append((name, threading.get_ident()))
        self._event.set()

    async def wait(self) -> str:
        await asyncio.wait_for(self._event.wait(), WAIT_S)
        self._event.clear()
        return self.calls[-1][0]


def open_controls(settings: GpioSettings, factory: Any, on_press: Callable[[str], None]) -> Controls:
    controls = Controls.open(settings, asyncio.get_running_loop(), on_press, factory=factory)
    assert controls is not None
    return controls


# -- buttons ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "pin"), [("ok", 17), ("cancel", 27)])
def test_a_press_reaches_on_press_on_the_event_loop(
    loop: asyncio.AbstractEventLoop, factory: Any, name: str, pin: int
) -> None:
    async def scenario() -> None:
        presses = Presses()
        controls = open_controls(SETTINGS, factory, presses)
        in_another_thread(factory.pin(pin).drive_low)
        in_another_thread(factory.pin(pin).drive_high)  # a press counts when the button is let go
        assert await presses.wait() == name
        assert presses.calls == [(name, threading.get_ident())]  # once, and on the loop's thread
        controls.close()

    asyncio.run(scenario())


def test_holding_a_button_is_a_held_press(factory: Any) -> None:
    async def scenario() -> None:
        presses = Presses()
        controls = open_controls(GpioSettings(enabled=True, hold_s=0.1), factory, presses)
        in_another_thread(factory.pin(27).drive_low)
        assert await presses.wait() == "cancel_held"  # from gpiozero's hold thread, after hold_s
        in_another_thread(factory.pin(27).drive_high)
        in_another_thread(factory.pin(27).drive_low)  # then a short press: a plain cancel again
        in_another_thread(factory.pin(27).drive_high)
        assert await presses.wait() == "cancel"
        # A held button is not also a press: holding OK on the confirmation screen must not confirm.
        assert [name for name, _ in presses.calls] == ["cancel_held", "cancel"]
        assert {thread for _, thread in presses.calls} == {threading.get_ident()}
        controls.close()

    asyncio.run(scenario())


def test_a_press_after_the_loop_closed_is_dropped(factory: Any) -> None:
    loop = asyncio.new_event_loop()
    controls = Controls.open(SETTINGS, loop, lambda name: None, factory=factory)
    assert controls is not None
    loop.close()
    factory.pin(17).drive_low()  # would raise here if the callback did
    controls.close()


# -- LED and buzzer -------------------------------------------------------------------------------


def test_led_steady_and_off(loop: asyncio.AbstractEventLoop, factory: Any) -> None:
    controls = Controls.open(SETTINGS, loop, ignore, factory=factory)
    assert controls is not None
    led = factory.pin(22)
    controls.led("steady")
    assert led.state
    controls.led("off")
    assert not led.state
    with pytest.raises(ValueError, match="pattern"):
        controls.led("disco")
    controls.close()


@pytest.mark.parametrize("pattern", ["blink", "fast"])
def test_led_blinks_at_its_pace(loop: asyncio.AbstractEventLoop, factory: Any, pattern: str) -> None:
    controls = Controls.open(SETTINGS, loop, ignore, factory=factory)
    assert controls is not None
    led = factory.pin(22)
    led.clear_states()
    controls.led(pattern)
    assert wait_for(lambda: rises(led) >= 2 and states(led)[-1] is False)
    controls.close()
    # Each state lasted at least the pattern's half period (the mock records how long it held).
    assert all(state.timestamp >= BLINK_S[pattern] * 0.9 for state in led.states[2:4])


def test_rgb_led_shows_ready_waiting_and_error_in_colours(loop: asyncio.AbstractEventLoop, factory: Any) -> None:
    settings = GpioSettings(enabled=True, led_rgb_pins=(5, 6, 13))
    controls = Controls.open(settings, loop, ignore, factory=factory)
    assert controls is not None
    red, green, blue = (factory.pin(n) for n in (5, 6, 13))
    assert not factory.pin(22).state  # the single LED's pin is not used

    controls.led("steady")
    assert (red.state, green.state, blue.state) == (0, 1, 0)

    controls.led("fast")
    red.clear_states()
    assert wait_for(lambda: rises(red) >= 2)
    assert not green.state
    assert not blue.state

    controls.led("off")
    assert (red.state, green.state, blue.state) == (0, 0, 0)
    controls.close()


@pytest.mark.parametrize(("kind", "beeps"), [("approved", 1), ("declined", 2)])
def test_buzzer_beeps_once_for_approved_and_twice_for_declined(
    loop: asyncio.AbstractEventLoop, factory: Any, kind: str, beeps: int
) -> None:
    controls = Controls.open(SETTINGS, loop, ignore, factory=factory)
    assert controls is not None
    buzzer = factory.pin(23)
    before = set(threading.enumerate())
    controls.beep(kind)
    for thread in set(threading.enumerate()) - before:  # gpiozero's blink thread: wait for it to end
        thread.join(WAIT_S + beeps * 2 * BEEP_S)
        assert not thread.is_alive()
    assert rises(buzzer) == beeps
    assert not buzzer.state
    controls.close()


def test_close_stops_blinking_and_releases_the_pins(loop: asyncio.AbstractEventLoop, factory: Any) -> None:
    controls = Controls.open(SETTINGS, loop, ignore, factory=factory)
    assert controls is not None
    controls.led("fast")
    assert wait_for(lambda: rises(factory.pin(22)) >= 1)
    controls.close()
    controls.close()
    assert not factory.pin(22).state
    again = Controls.open(SETTINGS, loop, ignore, factory=factory)
    assert again is not None  # the pins were free to take again
    again.close()


# -- without GPIO ----------------------------------------------------------------------------------


def test_disabled_is_no_controls(loop: asyncio.AbstractEventLoop, factory: Any) -> None:
    assert Controls.open(GpioSettings(), loop, ignore, factory=factory) is None


def no_gpio_line(caplog: pytest.LogCaptureFixture) -> str:
    assert [record.levelname for record in caplog.records] == ["WARNING"]
    message = caplog.records[0].getMessage()
    assert message.startswith("no GPIO: buttons and LEDs are off (")
    assert "\n" not in message
    return message


def test_an_unknown_pin_factory_in_the_environment_is_no_gpio(
    loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "bogus")
    Device.pin_factory = None
    assert Controls.open(SETTINGS, loop, ignore) is None
    assert "bogus" in no_gpio_line(caplog)


def test_a_configured_pin_factory_that_cannot_load_is_no_gpio(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    # The settings refuse an unknown name (tests/daemon/test_config.py); a known one whose library
    # is missing (the pigpio module, not installed here) fails when the controls open.
    settings = GpioSettings(enabled=True, pin_factory="pigpio")
    assert Controls.open(settings, loop, ignore) is None
    assert "pigpio" in no_gpio_line(caplog)


class DeniedFactory(MockFactory):  # type: ignore[misc]
    """A factory whose pins cannot be opened, as when /dev/gpiochip0 is not ours."""

    def pin(self, name: Any, pin_class: Any = None, **kwargs: Any) -> Any:
        if name == 27:
            raise OSError(errno.EACCES, "Permission denied", "/dev/gpiochip0")
        return super().pin(name, pin_class, **kwargs)


def test_pins_that_cannot_be_opened_are_no_gpio_and_leave_nothing_reserved(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    denied = DeniedFactory(pin_class=SignallingPin)
    assert Controls.open(SETTINGS, loop, ignore, factory=denied) is None
    assert "Permission denied" in no_gpio_line(caplog)
    # The OK button, made before the failure, was released.
    assert Controls.open(GpioSettings(enabled=True, cancel_pin=None), loop, ignore, factory=denied)
    denied.reset()


@pytest.mark.skipif(
    Path("/dev/gpiochip0").exists() or any(importlib.util.find_spec(m) for m in ("lgpio", "RPi", "pigpio")),
    reason="this machine has GPIO",
)
def test_a_machine_without_gpio_is_told_once_why(
    loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    Device.pin_factory = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert Controls.open(SETTINGS, loop, ignore) is None
    assert caught == []  # gpiozero's PinFactoryFallback warnings are in the one line instead
    message = no_gpio_line(caplog)
    assert "Unable to load any default pin factory" in message
    assert "Falling back from lgpio: No module named 'lgpio'" in message


def test_without_gpiozero_installed_there_are_no_controls(
    loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "gpiozero", None)
    assert Controls.open(SETTINGS, loop, ignore) is None
    assert "readerhost[gpio]" in no_gpio_line(caplog)


def test_importing_the_driver_does_not_load_gpiozero() -> None:
    code = (
        "import sys\n"
        "import readerhost.drivers.gpio\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] == 'gpiozero')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
