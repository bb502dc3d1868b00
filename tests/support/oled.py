"""An I²C bus that records what luma's real SSD1306 driver sends, and a model of the panel's memory.

Give `RecordingBus()` to `luma.core.interface.serial.i2c(bus=..., address=0x3C)` and that to
`luma.oled.device.ssd1306(...)`: the driver runs its real init sequence and pixel packing, and
`frames()` replays what it sent into an SSD1306 GDDRAM model, one image per complete frame.

The model: a control byte 0x00 carries commands (with their argument bytes), 0x40 display data.
Horizontal addressing only (command 0x20 with 0x00, as luma sets it); 0x21 and 0x22 set the column
and page windows and put the pointer at their start; each data byte fills 8 rows of one column
of a page (bit 0 the top row), and the pointer wraps from the window's end to its start. A frame
is complete when the window has been filled since the last 0x21/0x22. The panel's height comes
from the multiplex ratio (0xA8), its RAM is 128 columns wide; an image shows RAM as luma lays it
out (x = column, y = page * 8 + bit), before any remapping by the panel's wiring (0xA1, 0xC8).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from PIL import Image

from readerhost.daemon.ui.screens import Screen, render

COMMAND = 0x00
DATA = 0x40
MAX_BLOCK = 32  # an SMBus block write carries at most 32 bytes after the control byte
COLUMNS = 128

# Argument bytes after each SSD1306 command that takes any; the others are single bytes.
ARGUMENTS = {0x20: 1, 0x21: 2, 0x22: 2, 0x26: 6, 0x27: 6, 0x29: 5, 0x2A: 5, 0x81: 1, 0x8D: 1, 0xA3: 2}
ARGUMENTS |= {0xA8: 1, 0xD3: 1, 0xD5: 1, 0xD9: 1, 0xDA: 1, 0xDB: 1}
SINGLE = {0x2E, 0x2F, 0xA0, 0xA1, 0xA4, 0xA5, 0xA6, 0xA7, 0xAE, 0xAF, 0xC0, 0xC8, 0xE3}
SINGLE |= set(range(0x40, 0x80))  # display start line


class RecordingBus:
    """An smbus stand-in: `write_i2c_block_data` records, `frames` and `commands` decode."""

    def __init__(self) -> None:
        self.transactions: list[tuple[int, int, bytes]] = []  # (address, control byte, data)

    def write_i2c_block_data(self, addr: int, ctrl: int, data: list[int]) -> None:
        if len(data) > MAX_BLOCK:
            raise ValueError(f"an I2C block write carries at most {MAX_BLOCK} bytes, not {len(data)}")
        if ctrl not in (COMMAND, DATA):
            raise ValueError(f"control byte 0x{ctrl:02X} is neither commands (0x00) nor data (0x40)")
        self.transactions.append((addr, ctrl, bytes(data)))

    def commands(self) -> list[tuple[int, ...]]:
        """Every command sent, with its arguments: [(0xAE,), (0xD5, 0x80), ...]."""
        return _replay(self.transactions).commands

    def frames(self) -> list[Image.Image]:
        """A mode "1" image of the panel's memory after each complete frame."""
        return _replay(self.transactions).frames


@dataclass
class Gddram:
    """The SSD1306's display memory and address pointer, fed one transaction at a time."""

    ram: bytearray = field(default_factory=lambda: bytearray(COLUMNS * 8))
    height: int = 64
    addressing: int = 0x00
    columns: tuple[int, int] = (0, COLUMNS - 1)
    pages: tuple[int, int] = (0, 7)
    column: int = 0
    page: int = 0
    written: int = 0  # data bytes since the window was last set
    pending: list[int] = field(default_factory=list)  # a command still waiting for arguments
    commands: list[tuple[int, ...]] = field(default_factory=list)
    frames: list[Image.Image] = field(default_factory=list)

    def command_bytes(self, data: bytes) -> None:
        for byte in data:
            if not self.pending and byte not in ARGUMENTS and byte not in SINGLE:
                raise ValueError(f"unknown SSD1306 command 0x{byte:02X}")
            self.pending.append(byte)
            if len(self.pending) > ARGUMENTS.get(self.pending[0], 0):
                self._execute(tuple(self.pending))
                self.pending.clear()

    def _execute(self, command: tuple[int, ...]) -> None:
        self.commands.append(command)
        opcode, *arguments = command
        if opcode == 0x20:
            self.addressing = arguments[0]
        elif opcode == 0x21:
            self.columns = (arguments[0], arguments[1])
            self._restart()
        elif opcode == 0x22:
            self.pages = (arguments[0] & 0x07, arguments[1] & 0x07)
            self._restart()
        elif opcode == 0xA8:
            self.height = arguments[0] + 1

    def _restart(self) -> None:
        self.column, self.page, self.written = self.columns[0], self.pages[0], 0

    def data_bytes(self, data: bytes) -> None:
        if self.pending:
            raise ValueError(f"display data while command 0x{self.pending[0]:02X} waits for arguments")
        if self.addressing != 0x00:
            raise ValueError(f"the model knows horizontal addressing only, not mode {self.addressing}")
        first_column, last_column = self.columns
        first_page, last_page = self.pages
        window = (last_column - first_column + 1) * (last_page - first_page + 1)
        for byte in data:
            self.ram[self.page * COLUMNS + self.column] = byte
            self.written += 1
            if self.column < last_column:
                self.column += 1
            else:
                self.column = first_column
                self.page = self.page + 1 if self.page < last_page else first_page
            if self.written % window == 0:
                self.frames.append(self.image())

    def image(self) -> Image.Image:
        """The memory as a mode "1" image, 128 pixels wide and as high as the panel."""
        image = Image.new("1", (COLUMNS, self.height))
        image.putdata(
            [
                self.ram[(row // 8) * COLUMNS + column] >> (row % 8) & 1
                for row in range(self.height)
                for column in range(COLUMNS)
            ]
        )
        return image


class RecordingSpi:
    """A spidev stand-in for luma's SPI interface: each `writebytes` is recorded with the level the
    panel's DC line had then (`dc_level()`, read from the GPIO model): low is commands, high is
    display data, as an SSD1306 on a 4-wire SPI bus reads them. `transactions` use the I²C control
    bytes (COMMAND, DATA), so `frames` and `commands` decode them with the same panel model."""

    def __init__(self, dc_level: Callable[[], int]) -> None:
        self._dc_level = dc_level
        self.opened: tuple[int, int] | None = None
        self.closed = False
        self.mode = 0
        self.max_speed_hz = 0
        self.transactions: list[tuple[int, int, bytes]] = []

    def open(self, port: int, device: int) -> None:
        self.opened = (port, device)

    def writebytes(self, data: list[int]) -> None:
        if self.opened is None or self.closed:
            raise OSError(9, "Bad file descriptor")  # as spidev says of a bus not open
        self.transactions.append((0, DATA if self._dc_level() else COMMAND, bytes(data)))

    def close(self) -> None:
        self.closed = True

    def commands(self) -> list[tuple[int, ...]]:
        return _replay(self.transactions).commands

    def frames(self) -> list[Image.Image]:
        return _replay(self.transactions).frames


def _replay(transactions: list[tuple[int, int, bytes]]) -> Gddram:
    memory = Gddram()
    for _address, control, data in transactions:
        if control == COMMAND:
            memory.command_bytes(data)
        else:
            memory.data_bytes(data)
    return memory


def marked(screen: Screen, marker: str | None = "EMU") -> Screen:
    """`screen` as the daemon shows it in a mode ("EMU" with the built-in emulator)."""
    return dataclasses.replace(screen, marker=marker)


def kinds_shown(frames: Iterable[Image.Image], candidates: Iterable[Screen]) -> list[str]:
    """What the panel showed, frame by frame: the kind of the candidate screen each frame is, to the
    pixel, or "?" for a frame that is none of them."""
    known = {render(screen).tobytes(): screen.kind for screen in candidates}
    return [known.get(frame.tobytes(), "?") for frame in frames]
