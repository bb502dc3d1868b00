"""The status display: a small monochrome OLED (SSD1306, SH1106, SSD1309) through luma.oled, or a
preview in the terminal for development.

`Panel.open(settings)` gives a `Panel`, or None when no display is configured or the panel cannot be
opened (then one warning line says why, and the daemon runs without it). A Panel draws a frame only
when it differs from the last one (a frame is ~23 ms on a 400 kHz I²C bus), dims and switches off
when nothing changed for a while (`tick`, called by the UI's timers: no thread in here), and wakes
on the next change.

luma and Pillow are imported only when a panel is opened. A Panel does blocking I/O and is not
thread-safe: one caller at a time.
"""

from __future__ import annotations

import errno
import logging
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from readerhost.drivers.gpio import OutputLines
from readerhost.drivers.settings import Choice, FilePath, Int, Number, Pin, Section, Settings, setting

if TYPE_CHECKING:
    from PIL.Image import Image

logger = logging.getLogger(__name__)

DISPLAY_KINDS = ("none", "ssd1306", "sh1106", "ssd1309", "terminal")
INTERFACES = ("i2c", "spi")
SNAPSHOTS_KEPT = 50
DIM_DIVISOR = 8  # dimmed contrast = contrast // DIM_DIVISOR

_SNAPSHOT_NAME = re.compile(r"frame-(\d+)\.png")
# Terminal preview: one character for two pixel rows, indexed by (top << 1) | bottom.
HALF_BLOCKS = (" ", "▄", "▀", "█")


@dataclass(frozen=True)
class DisplaySettings(Settings):
    kind: str = setting("none", Choice(*DISPLAY_KINDS))
    interface: str = setting("i2c", Choice(*INTERFACES))  # OLED kinds only
    i2c_bus: int = setting(1, Int(0, 255))
    i2c_address: int = setting(0x3C, Int(0x03, 0x77))  # the 7-bit addresses a device may have
    spi_port: int = setting(0, Int(0, 15))
    spi_device: int = setting(0, Int(0, 15))
    # An SPI panel's data/command and reset lines (BCM numbers), driven through gpiozero (lgpio).
    spi_dc_pin: int = setting(24, Int(0, 53))
    spi_rst_pin: int | None = setting(25, Pin())  # None (-1 in the file): RST not wired
    width: int = setting(128, Int(32, 256))  # luma's panels: 64x32 (SSD1306) up to 256x128
    height: int = setting(64, Int(16, 128))  # 96x16 is the flattest
    rotate: int = setting(0, Int(0, 3))  # quarter turns clockwise
    contrast: int = setting(200, Int(0, 255))
    # Lower the contrast, and switch the panel off, when nothing changed for this long; 0 = never.
    dim_after_s: float = setting(60.0, Number(at_least=0))
    sleep_after_s: float = setting(600.0, Number(at_least=0))
    # If set, every new frame is also saved there as frame-<n>.png (the last 50).
    snapshot_dir: str = setting("", FilePath())

    @property
    def where(self) -> str:
        """Where the panel is wired, for messages: 'ssd1306 on I²C bus 1 at address 0x3C'."""
        if self.kind == "terminal":
            return "the terminal preview"
        if self.interface == "spi":
            return f"{self.kind} on SPI port {self.spi_port} device {self.spi_device} (DC on {self.spi_dc_pin})"
        return f"{self.kind} on I²C bus {self.i2c_bus} at address 0x{self.i2c_address:02X}"


SETTINGS = Section("display", DisplaySettings)


class _Output(Protocol):
    """What a Panel drives: a luma device or the terminal preview."""

    def draw(self, image: Image) -> None: ...

    def contrast(self, level: int) -> None: ...

    def power(self, on: bool) -> None: ...

    def close(self) -> None: ...


class Panel:
    """A display that redraws only on change and dims, then sleeps, when idle."""

    def __init__(self, settings: DisplaySettings, output: _Output, clock: Callable[[], float]) -> None:
        self.settings = settings
        self.width = settings.width if settings.rotate % 2 == 0 else settings.height
        self.height = settings.height if settings.rotate % 2 == 0 else settings.width
        self.dim_after_s = settings.dim_after_s
        self.sleep_after_s = settings.sleep_after_s
        self._output = output
        self._clock = clock
        self._last: tuple[tuple[int, int], bytes] | None = None
        self._changed_at = clock()
        self._dimmed = False
        self._asleep = False
        self._failing = False
        self._closed = False
        self._snapshots = _Snapshots(Path(settings.snapshot_dir)) if settings.snapshot_dir else None

    @classmethod
    def open(
        cls,
        settings: DisplaySettings,
        *,
        bus: object | None = None,
        spi: object | None = None,
        pin_factory: object | None = None,
        output: TextIO = sys.stdout,
        clock: Callable[[], float] = time.monotonic,
    ) -> Panel | None:
        """The configured display, or None (kind `none`, or the panel could not be opened: logged once).

        Stand-ins for tests: `bus` replaces the I²C bus with any object that has
        `write_i2c_block_data(addr, ctrl, data)`; `spi` the SPI bus with a spidev-like object;
        `pin_factory` is the gpiozero pin factory an SPI panel's DC and RST lines go through
        (default: gpiozero's own, lgpio on a Pi). `output` is where the terminal preview draws;
        `clock` must be the clock of the times given to `tick`.
        """
        if settings.kind == "none":
            return None
        if settings.kind == "terminal":
            return cls(settings, _TerminalOutput(output), clock)
        opened = _open_luma(settings, bus, spi, pin_factory)
        if opened is None:
            return None
        panel = cls(settings, _LumaOutput(*opened), clock)
        logger.info("display: %s, %dx%d", settings.where, settings.width, settings.height)
        return panel

    @property
    def asleep(self) -> bool:
        return self._asleep

    @property
    def dimmed(self) -> bool:
        return self._dimmed

    def show(self, image: Image) -> bool:
        """Draw `image` (width x height; converted to 1 bit) if it differs from the last one drawn,
        waking the panel if it dimmed or slept. Returns whether it drew."""
        if self._closed:
            return False
        requested_at = self._clock()
        if image.size != (self.width, self.height):
            raise ValueError(f"the display is {self.width}x{self.height}; got an image of {image.size}")
        frame = image if image.mode == "1" else image.convert("1")
        key = (frame.size, frame.tobytes())
        if key == self._last:
            return False
        if not self._attempt(self._output.draw, frame):
            self._last = None  # draw it again next time
            return False
        self._last = key
        if self._snapshots is not None and not self._snapshots.save(frame):
            self._snapshots = None
        self._wake(requested_at)
        return True

    def wake(self) -> None:
        """Count now as activity (e.g. a button press): full contrast and panel on again, no redraw."""
        self._wake(self._clock())

    def due(self) -> float | None:
        """When `tick` next has something to do, on the panel's clock; None: nothing (asleep, or never)."""
        if self._closed or self._asleep:
            return None
        times = [self._changed_at + self.sleep_after_s] if self.sleep_after_s > 0 else []
        if self.dim_after_s > 0 and not self._dimmed:
            times.append(self._changed_at + self.dim_after_s)
        return min(times, default=None)

    def _wake(self, at: float) -> None:
        if self._closed:
            return
        self._changed_at = at
        if self._dimmed and self._attempt(self._output.contrast, self.settings.contrast):
            self._dimmed = False
        if self._asleep and self._attempt(self._output.power, True):
            self._asleep = False

    def tick(self, now: float) -> None:
        """Dim or switch off the panel if nothing changed since `now - dim_after_s` / `sleep_after_s`."""
        if self._closed or self._asleep:
            return
        idle = now - self._changed_at
        if 0 < self.sleep_after_s <= idle:
            self._asleep = self._attempt(self._output.power, False)
        elif 0 < self.dim_after_s <= idle and not self._dimmed:
            self._dimmed = self._attempt(self._output.contrast, self.settings.contrast // DIM_DIVISOR)

    def close(self) -> None:
        """Switch the panel off and release its bus. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._attempt(self._output.close)

    def _attempt(self, action: Callable[..., None], *args: Any) -> bool:
        """Run one panel operation; a panel that stops answering is told once, not raised."""
        try:
            action(*args)
        except Exception as error:
            if not _is_panel_error(error):
                raise
            if not self._failing:
                self._failing = True
                logger.warning(
                    "display: %s stopped answering (%s); retrying on the next change", self.settings.where, error
                )
            return False
        if self._failing:
            self._failing = False
            logger.info("display: %s answers again", self.settings.where)
        return True


def _is_panel_error(error: Exception) -> bool:
    if isinstance(error, OSError):
        return True
    luma_error = sys.modules.get("luma.core.error")
    return luma_error is not None and isinstance(error, luma_error.Error)


# -- luma --------------------------------------------------------------------------------------


def _open_luma(
    settings: DisplaySettings, bus: object | None, spi_bus: object | None, pin_factory: object | None
) -> tuple[Any, OutputLines | None] | None:
    """A luma device that ran its init sequence, with the SPI panel's lines (luma leaves lines it was
    given to their owner), or None after one warning line."""
    serial: Any = None
    try:
        import luma.core.error  # type: ignore[import-untyped]
        import luma.oled.device  # type: ignore[import-untyped]
        from luma.core.interface.serial import i2c, spi  # type: ignore[import-untyped]
    except ImportError as error:
        logger.warning(
            "display: %s is configured but luma.oled is not installed (pip install 'readerhost[oled]'): %s; "
            "running without the display",
            settings.kind,
            error,
        )
        return None
    lines: OutputLines | None = None
    try:
        if settings.interface == "spi":
            lines = OutputLines(pin_factory)
            serial = spi(
                spi=spi_bus,
                gpio=lines,
                port=settings.spi_port,
                device=settings.spi_device,
                gpio_DC=settings.spi_dc_pin,
                gpio_RST=settings.spi_rst_pin,
            )
        elif bus is not None:
            serial = i2c(bus=bus, address=settings.i2c_address)
        else:
            serial = i2c(port=settings.i2c_bus, address=settings.i2c_address)
        driver = getattr(luma.oled.device, settings.kind)
        device = driver(serial, width=settings.width, height=settings.height, rotate=settings.rotate)
        device.contrast(settings.contrast)
    except (OSError, ImportError, luma.core.error.Error, *_gpio_errors()) as error:
        logger.warning("display: cannot use the %s (%s); running without it", settings.where, _reason(error))
        if serial is not None and bus is None:
            _quietly(serial.cleanup)
        elif lines is not None:
            _quietly(lines.cleanup)  # lines set up before the SPI bus failed
        return None
    return device, lines


def _gpio_errors() -> tuple[type[Exception], ...]:
    """gpiozero's refusals (no pin factory, a pin in use): an SPI panel's lines cannot be driven."""
    try:
        import gpiozero  # type: ignore[import-untyped]
    except ImportError:
        return ()
    return (gpiozero.GPIOZeroError,)


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.errno in (errno.EREMOTEIO, errno.EIO):
        return f"no answer: {error}"
    return str(error) or type(error).__name__


def _quietly(action: Callable[[], object]) -> None:
    try:
        action()
    except Exception as error:  # closing a bus that failed: nothing more to tell
        logger.debug("display: cleanup failed: %s", error)


class _LumaOutput:
    def __init__(self, device: Any, lines: OutputLines | None) -> None:
        self._device = device
        self._lines = lines

    def draw(self, image: Image) -> None:
        self._device.display(image)

    def contrast(self, level: int) -> None:
        self._device.contrast(level)

    def power(self, on: bool) -> None:
        if on:
            self._device.show()
        else:
            self._device.hide()

    def close(self) -> None:
        try:
            self._device.hide()
        finally:
            # luma's exit hook would clear and hide the panel again: it is off already.
            self._device.persist = True
            try:
                self._device.cleanup()
            finally:
                if self._lines is not None:
                    self._lines.cleanup()


# -- terminal preview ------------------------------------------------------------------------


class _TerminalOutput:
    """Frames drawn with half blocks, framed; redrawn in place on a TTY, appended otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lines_drawn = 0

    def draw(self, image: Image) -> None:
        lines = terminal_lines(image)
        rewind = f"\x1b[{self._lines_drawn}A" if self._lines_drawn and self._stream.isatty() else ""
        self._stream.write(rewind + "".join(line + "\n" for line in lines))
        self._stream.flush()
        self._lines_drawn = len(lines)

    def contrast(self, level: int) -> None:
        pass  # a terminal has no contrast to lower

    def power(self, on: bool) -> None:
        pass  # nor a panel to switch off: the preview keeps the last frame

    def close(self) -> None:
        pass


def terminal_lines(image: Image) -> list[str]:
    """`image` as framed text: each character is two pixels, one above the other."""
    width, height = image.size
    pixels = image.convert("L").tobytes()

    def lit(x: int, y: int) -> int:
        return 1 if y < height and pixels[y * width + x] else 0

    rows = [
        "│" + "".join(HALF_BLOCKS[lit(x, y) << 1 | lit(x, y + 1)] for x in range(width)) + "│"
        for y in range(0, height, 2)
    ]
    return ["┌" + "─" * width + "┐", *rows, "└" + "─" * width + "┘"]


# -- snapshots ---------------------------------------------------------------------------------


class _Snapshots:
    """New frames saved as PNGs, numbered on from what the folder holds; the last SNAPSHOTS_KEPT kept."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._next: int | None = None

    def save(self, image: Image) -> bool:
        """Save one frame; False (after one warning) when the folder cannot be written."""
        try:
            if self._next is None:
                self._folder.mkdir(parents=True, exist_ok=True)
                self._next = max(self._numbers(), default=0) + 1
            image.save(self._folder / f"frame-{self._next}.png", format="PNG")
            self._next += 1
            for old in sorted(self._numbers())[:-SNAPSHOTS_KEPT]:
                (self._folder / f"frame-{old}.png").unlink(missing_ok=True)
        except OSError as error:
            logger.warning("display: snapshots to %s stopped: %s", self._folder, error)
            return False
        return True

    def _numbers(self) -> list[int]:
        found = (_SNAPSHOT_NAME.fullmatch(path.name) for path in self._folder.iterdir())
        return [int(match.group(1)) for match in found if match]
