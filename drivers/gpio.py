"""The kiosk's buttons, status LED and buzzer, through gpiozero.

`Controls.open(settings, loop, on_press)` gives `Controls`, or None when GPIO is disabled or not
available (then one line says why, and the daemon runs without buttons and LEDs). Button callbacks
come from gpiozero's threads (lgpio's, the hold timer's) and are handed to the event loop with
`call_soon_threadsafe`: `on_press` always runs on the loop, with "ok" or "cancel" when a button
is let go after a short press, "ok_held" or "cancel_held" when it has been held. The LED blinks
and the buzzer beeps on gpiozero's own background threads.

gpiozero is imported only when controls are opened.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from readerhost.drivers.settings import Choice, Flag, Number, Pin, Pins, Section, Settings, setting

logger = logging.getLogger(__name__)

BUTTONS = ("ok", "cancel")
LED_PATTERNS = ("off", "steady", "blink", "fast")
BEEPS = {"approved": 1, "declined": 2}  # beeps per kind
BLINK_S = {"blink": 0.5, "fast": 0.125}  # on and off times: ~1 Hz while waiting for a card, ~4 Hz on an error
BEEP_S = 0.1  # one beep, and the gap between two
# An RGB LED: ready is green, waiting is blue, an error is red.
RGB_COLORS = {"steady": (0, 1, 0), "blink": (0, 0, 1), "fast": (1, 0, 0)}


@dataclass(frozen=True)
class GpioSettings(Settings):
    enabled: bool = setting(False, Flag())
    ok_pin: int | None = setting(17, Pin())  # BCM numbers; None (-1 in the file): not wired
    cancel_pin: int | None = setting(27, Pin())
    led_pin: int | None = setting(22, Pin())  # a single status LED
    # (red, green, blue): an RGB LED, used instead of led_pin
    led_rgb_pins: tuple[int, int, int] | None = setting(None, Pins())
    buzzer_pin: int | None = setting(None, Pin())
    bounce_s: float = setting(0.05, Number(at_least=0))
    hold_s: float = setting(3.0, Number(above=0))  # holding a button this long opens the technician screen
    # A gpiozero pin factory name ("lgpio" on a Pi); empty: gpiozero's default.
    pin_factory: str = setting("", Choice("", "lgpio", "rpigpio", "pigpio", "native"))


SETTINGS = Section("gpio", GpioSettings)


class Controls:
    """Buttons in, LED pattern and beeps out."""

    def __init__(
        self, devices: dict[str, Any], loop: asyncio.AbstractEventLoop, on_press: Callable[[str], None]
    ) -> None:
        self._devices = devices
        self._loop = loop
        self._on_press = on_press
        self._pattern = "off"
        self._closed = False
        self._was_held: set[str] = set()  # buttons held since they were pressed (gpiozero's threads)
        for name in BUTTONS:
            button = devices.get(name)
            if button is not None:
                # A press counts when the button is let go, unless it was held: holding OK on the
                # confirmation screen opens the technician screen and must not also confirm.
                button.when_released = functools.partial(self._released, name)
                button.when_held = functools.partial(self._held, name)

    @classmethod
    def open(
        cls,
        settings: GpioSettings,
        loop: asyncio.AbstractEventLoop,
        on_press: Callable[[str], None],
        *,
        factory: object | None = None,
    ) -> Controls | None:
        """The configured controls, or None (disabled, or no GPIO: said once in the log).

        `factory` is a gpiozero pin factory to use instead of the configured one (tests: MockFactory).
        """
        if not settings.enabled:
            return None
        try:
            import gpiozero  # type: ignore[import-untyped]
        except ImportError as error:
            _say_no_gpio(f"gpiozero is not installed: pip install 'readerhost[gpio]'; {error}")
            return None
        try:
            pin_factory = factory if factory is not None else _pin_factory(settings.pin_factory)
            devices = _create_devices(settings, pin_factory)
        except (gpiozero.GPIOZeroError, ImportError, OSError) as error:
            _say_no_gpio(str(error) or type(error).__name__)
            return None
        logger.info("gpio: %s", _describe(settings))
        return cls(devices, loop, on_press)

    def led(self, pattern: str) -> None:
        """Show `pattern` on the status LED: off, steady (ready), blink (waiting for a card), fast (error).
        Setting the pattern already shown changes nothing."""
        if pattern not in LED_PATTERNS:
            raise ValueError(f"LED pattern must be one of {', '.join(LED_PATTERNS)}; got {pattern!r}")
        if self._closed or pattern == self._pattern:
            return
        self._pattern = pattern
        if (rgb := self._devices.get("rgb")) is not None:
            if pattern == "off":
                rgb.off()
            elif pattern == "steady":
                rgb.color = RGB_COLORS[pattern]
            else:
                rgb.blink(BLINK_S[pattern], BLINK_S[pattern], on_color=RGB_COLORS[pattern], background=True)
        elif (led := self._devices.get("led")) is not None:
            if pattern == "off":
                led.off()
            elif pattern == "steady":
                led.on()
            else:
                led.blink(BLINK_S[pattern], BLINK_S[pattern], background=True)

    def beep(self, kind: str) -> None:
        """One short beep for `approved`, two for `declined` (in the background; no buzzer: nothing)."""
        if kind not in BEEPS:
            raise ValueError(f"beep must be one of {', '.join(BEEPS)}; got {kind!r}")
        buzzer = self._devices.get("buzzer")
        if buzzer is not None and not self._closed:
            buzzer.blink(BEEP_S, BEEP_S, n=BEEPS[kind], background=True)

    def close(self) -> None:
        """Stop blinking and beeping and release the pins. Idempotent."""
        if self._closed:
            return
        self._closed = True
        _close_all(self._devices.values())

    def _held(self, name: str) -> None:
        self._was_held.add(name)
        self._emit(f"{name}_held")

    def _released(self, name: str) -> None:
        # gpiozero forgets the hold before it reports the release: remember it ourselves.
        if name in self._was_held:
            self._was_held.discard(name)
        else:
            self._emit(name)

    def _emit(self, name: str) -> None:
        """From a gpiozero thread: run on_press(name) on the loop."""
        try:
            self._loop.call_soon_threadsafe(self._on_press, name)
        except RuntimeError:  # the loop is closed: the daemon is stopping
            logger.debug("gpio: %s dropped: the event loop is closed", name)


def _say_no_gpio(reason: str) -> None:
    logger.warning("no GPIO: buttons and LEDs are off (%s)", reason)


class OutputLines:
    """Output lines for luma's SPI interface (a panel's DC and RST), on a gpiozero pin factory.

    luma drives those lines through an RPi.GPIO-like object, and imports RPi.GPIO when given none;
    RPi.GPIO cannot drive a Pi 5. This object answers the calls luma makes (setup, output,
    cleanup) through gpiozero instead: lgpio on every Pi, MockFactory in tests. Each line is
    reserved in the factory, so a button or LED configured on the same pin is refused, not shared."""

    LOW = 0
    HIGH = 1
    OUT = "output"

    def __init__(self, factory: object | None = None) -> None:
        from gpiozero import Device

        if factory is None:
            Device.ensure_pin_factory()
            factory = Device.pin_factory
        self._factory: Any = factory
        self._pins: dict[int, Any] = {}

    def _conflicts_with(self, other: object) -> bool:
        """gpiozero's reservation protocol: these lines are shared with no other device."""
        return True

    def setup(self, number: int, mode: str, initial: int | None = None) -> None:
        if mode != self.OUT:
            raise ValueError(f"only output lines are driven here, not {mode!r}")
        pin = self._factory.pin(number)
        self._factory.reserve_pins(self, pin.info.name)
        pin.function = "output"
        if initial is not None:
            pin.state = initial
        self._pins[number] = pin

    def output(self, number: int, value: int) -> None:
        self._pins[number].state = 1 if value else 0

    def cleanup(self, numbers: list[int] | None = None) -> None:
        for number in list(self._pins) if numbers is None else numbers:
            pin = self._pins.pop(number, None)
            if pin is not None:
                self._factory.release_pins(self, pin.info.name)
                pin.close()


def _pin_factory(name: str) -> object | None:
    """The named pin factory, or None for gpiozero's default (resolved now, so that failing is told now).

    gpiozero's "Falling back from lgpio: ..." warnings become part of the failure, or info lines."""
    from gpiozero import BadPinFactory, PinFactoryFallback

    failure: BadPinFactory | None = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PinFactoryFallback)
        try:
            factory = _load_pin_factory(name)
        except BadPinFactory as error:
            failure = error
    reasons = []
    for warning in caught:
        if issubclass(warning.category, PinFactoryFallback):
            reasons.append(str(warning.message))
        else:  # not ours to swallow
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    if failure is not None:
        raise BadPinFactory("; ".join([str(failure), *reasons])) from failure
    for reason in reasons:
        logger.info("gpio: %s", reason)
    return factory


def _load_pin_factory(name: str) -> object | None:
    from gpiozero import BadPinFactory, Device

    if not name:
        Device.ensure_pin_factory()
        return None
    from importlib.metadata import entry_points

    for entry in entry_points(group="gpiozero_pin_factories"):
        if entry.name in (name, name.lower()):
            try:
                factory: object = entry.load()()
                return factory
            except Exception as error:  # a factory's library fails its own way (lgpio.error, RuntimeError)
                raise BadPinFactory(f"pin factory {name!r}: {error}") from error
    raise BadPinFactory(f"no gpiozero pin factory named {name!r}")


def _create_devices(settings: GpioSettings, pin_factory: object | None) -> dict[str, Any]:
    from gpiozero import LED, RGBLED, Button, Buzzer

    devices: dict[str, Any] = {}
    try:
        for name, pin in (("ok", settings.ok_pin), ("cancel", settings.cancel_pin)):
            if pin is not None:
                devices[name] = Button(
                    pin,
                    pull_up=True,
                    bounce_time=settings.bounce_s or None,
                    hold_time=settings.hold_s,
                    pin_factory=pin_factory,
                )
        if settings.led_rgb_pins is not None:
            red, green, blue = settings.led_rgb_pins
            devices["rgb"] = RGBLED(red, green, blue, pwm=False, pin_factory=pin_factory)
        elif settings.led_pin is not None:
            devices["led"] = LED(settings.led_pin, pin_factory=pin_factory)
        if settings.buzzer_pin is not None:
            devices["buzzer"] = Buzzer(settings.buzzer_pin, pin_factory=pin_factory)
    except BaseException:
        _close_all(devices.values())
        raise
    return devices


def _close_all(devices: Any) -> None:
    for device in devices:
        try:
            device.close()
        except Exception as error:  # releasing a pin that already failed: nothing more to tell
            logger.debug("gpio: closing %r failed: %s", device, error)


def _describe(settings: GpioSettings) -> str:
    parts = [f"OK on {settings.ok_pin}"] if settings.ok_pin is not None else []
    if settings.cancel_pin is not None:
        parts.append(f"Cancel on {settings.cancel_pin}")
    if settings.led_rgb_pins is not None:
        parts.append("RGB LED on {}/{}/{}".format(*settings.led_rgb_pins))
    elif settings.led_pin is not None:
        parts.append(f"LED on {settings.led_pin}")
    if settings.buzzer_pin is not None:
        parts.append(f"buzzer on {settings.buzzer_pin}")
    return "GPIO " + (", ".join(parts) or "with nothing wired")
