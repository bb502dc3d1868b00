"""The display driver over luma.oled's real drivers, on a recording I²C bus decoded as an SSD1306 would."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from support.oled import COMMAND, DATA, Gddram, RecordingBus

from readerhost.drivers.display import DisplaySettings, Panel

# luma.oled 3.16 reads frames with Image.getdata(), which Pillow 13 deprecates (removed in Pillow 14).
pytestmark = pytest.mark.filterwarnings("ignore:Image.Image.getdata is deprecated:DeprecationWarning")

SSD1306 = DisplaySettings(kind="ssd1306")
# luma's SSD1306 init sequence, 128x64 (the reference's AE D5 A8 D3 40 8D 20 A1 C8 DA D9 DB A4 A6, with arguments).
SSD1306_INIT = [0xAE, 0xD5, 0x80, 0xA8, 0x3F, 0xD3, 0x00, 0x40, 0x8D, 0x14, 0x20, 0x00, 0xA1, 0xC8, 0xDA, 0x12]
SSD1306_INIT += [0xD9, 0xF1, 0xDB, 0x40, 0xA4, 0xA6]
FRAME_BYTES = 128 * 64 // 8
DISPLAY_OFF, DISPLAY_ON, SET_CONTRAST = 0xAE, 0xAF, 0x81


class Bus(RecordingBus):
    """The shared recording bus, plus what these tests count since a mark, and a panel that stops answering."""

    def __init__(self) -> None:
        super().__init__()
        self.failure: OSError | None = None

    def write_i2c_block_data(self, addr: int, ctrl: int, data: list[int]) -> None:
        if self.failure is not None:
            raise self.failure
        super().write_i2c_block_data(addr, ctrl, data)

    @property
    def mark(self) -> int:
        return len(self.transactions)

    def commands_since(self, mark: int) -> list[tuple[int, ...]]:
        """The commands sent from transaction `mark` on (luma sends whole commands per transaction)."""
        memory = Gddram()
        for _, control, data in self.transactions[mark:]:
            if control == COMMAND:
                memory.command_bytes(data)
        return memory.commands

    def data_since(self, mark: int) -> int:
        """How many display data bytes were sent from transaction `mark` on."""
        return sum(len(data) for _, control, data in self.transactions[mark:] if control == DATA)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def picture(text: str, size: tuple[int, int] = (128, 64)) -> Image.Image:
    image = Image.new("1", size)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, size[0] - 1, size[1] - 1), outline=1)
    draw.text((4, 4), text, fill=1)
    draw.line((0, size[1] - 1, size[0] - 1, 0), fill=1)
    return image


def same_pixels(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and a.convert("1").tobytes() == b.convert("1").tobytes()


def lighting(panel: Panel) -> str:
    return "asleep" if panel.asleep else "dimmed" if panel.dimmed else "full"


def open_panel(settings: DisplaySettings, bus: Bus, clock: Clock | None = None) -> Panel:
    panel = Panel.open(settings, bus=bus, clock=clock or Clock())
    assert panel is not None
    return panel


# -- luma over a recording bus -------------------------------------------------------------------


def test_ssd1306_runs_lumas_init_sequence_and_shows_the_image_it_is_given() -> None:
    bus = Bus()
    panel = open_panel(SSD1306, bus)
    assert bus.transactions[0] == (0x3C, COMMAND, bytes(SSD1306_INIT))
    assert (SET_CONTRAST, 200) in bus.commands()  # the configured contrast, after luma's own
    assert (DISPLAY_ON,) in bus.commands()
    assert (panel.width, panel.height) == (128, 64)

    image = picture("Pay 12.50")
    before = bus.mark
    assert panel.show(image) is True
    assert bus.data_since(before) == FRAME_BYTES
    assert same_pixels(bus.frames()[-1], image)
    panel.close()


def test_an_unchanged_image_is_not_sent_again() -> None:
    bus = Bus()
    panel = open_panel(SSD1306, bus)
    assert panel.show(picture("Ready"))
    writes = bus.mark

    assert panel.show(picture("Ready")) is False  # another image object, the same pixels
    assert panel.show(picture("Ready").convert("L")) is False
    assert bus.mark == writes

    assert panel.show(picture("Insert card")) is True
    assert bus.data_since(writes) == FRAME_BYTES
    assert same_pixels(bus.frames()[-1], picture("Insert card"))
    panel.close()


def test_idle_panel_dims_then_sleeps_and_a_new_frame_wakes_it() -> None:
    bus, clock = Bus(), Clock()
    settings = DisplaySettings(kind="ssd1306", contrast=200, dim_after_s=60, sleep_after_s=600)
    panel = open_panel(settings, bus, clock)
    panel.show(picture("Ready"))
    shown_at = clock.now
    assert panel.due() == shown_at + 60

    mark = bus.mark
    panel.tick(shown_at + 59.9)
    assert bus.mark == mark
    panel.tick(shown_at + 60)
    assert bus.commands_since(mark) == [(SET_CONTRAST, 200 // 8)]
    assert lighting(panel) == "dimmed"
    assert panel.due() == shown_at + 600
    panel.tick(shown_at + 120)
    assert bus.commands_since(mark) == [(SET_CONTRAST, 200 // 8)]  # dimmed once

    mark = bus.mark
    panel.tick(shown_at + 600)
    assert bus.commands_since(mark) == [(DISPLAY_OFF,)]
    assert lighting(panel) == "asleep"
    assert panel.due() is None
    panel.tick(shown_at + 900)
    assert bus.mark == mark + 1

    mark = bus.mark
    assert panel.show(picture("Ready")) is False  # nothing new: it stays asleep
    assert bus.mark == mark
    clock.now = shown_at + 1000
    assert panel.show(picture("Insert card")) is True
    assert bus.data_since(mark) == FRAME_BYTES
    assert bus.commands_since(mark)[-2:] == [(SET_CONTRAST, 200), (DISPLAY_ON,)]  # the frame first, then light
    assert lighting(panel) == "full"

    mark = bus.mark
    panel.tick(clock.now + 59)  # idle time counts from the last change
    assert bus.mark == mark
    panel.close()


class SlowBus(Bus):
    """A bus on which each transaction takes a millisecond of the test's clock."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock = clock

    def write_i2c_block_data(self, address: int, control: int, data: list[int]) -> None:
        self.clock.now += 0.001
        super().write_i2c_block_data(address, control, data)


def test_idle_time_counts_from_when_the_frame_was_asked_for() -> None:
    clock = Clock()
    panel = open_panel(SSD1306, SlowBus(clock), clock)
    asked_at = clock.now
    panel.show(picture("Ready"))
    assert clock.now > asked_at + 0.03  # a frame is 33 transactions
    assert panel.due() == asked_at + 60  # a timer set from the caller's clock reading finds it due
    panel.tick(asked_at + 60)
    assert lighting(panel) == "dimmed"
    panel.close()


def test_wake_counts_as_activity_without_redrawing() -> None:
    bus, clock = Bus(), Clock()
    panel = open_panel(DisplaySettings(kind="ssd1306", dim_after_s=10, sleep_after_s=0), bus, clock)
    panel.show(picture("Ready"))
    panel.tick(clock.now + 10)
    assert lighting(panel) == "dimmed"

    clock.now += 3600
    panel.tick(clock.now)
    assert lighting(panel) == "dimmed"  # sleep_after_s = 0: never off
    mark = bus.mark
    panel.wake()
    assert bus.commands_since(mark) == [(SET_CONTRAST, 200)]
    panel.tick(clock.now + 9)
    assert lighting(panel) == "full"
    panel.close()


def test_close_switches_the_panel_off() -> None:
    bus = Bus()
    panel = open_panel(SSD1306, bus)
    panel.show(picture("Bye"))
    mark = bus.mark
    panel.close()
    panel.close()
    assert bus.commands_since(mark) == [(DISPLAY_OFF,)]
    assert panel.show(picture("After")) is False
    assert bus.mark == mark + 1


@pytest.mark.parametrize("kind", ["sh1106", "ssd1309"])
def test_other_controllers_open_and_draw(kind: str) -> None:
    bus = Bus()
    panel = open_panel(DisplaySettings(kind=kind), bus)
    assert (0x3C, COMMAND, bytes([DISPLAY_ON])) in bus.transactions  # sh1106: no SSD1306 decoding
    mark = bus.mark
    assert panel.show(picture(kind))
    assert bus.data_since(mark) == FRAME_BYTES
    if kind == "ssd1309":  # the SSD1306 command set: the model decodes it
        assert same_pixels(bus.frames()[-1], picture(kind))
    panel.close()


def test_a_rotated_panel_takes_upright_images() -> None:
    bus = Bus()
    panel = open_panel(DisplaySettings(kind="ssd1306", rotate=1), bus)
    assert (panel.width, panel.height) == (64, 128)
    image = picture("Up", (64, 128))
    assert panel.show(image)
    assert same_pixels(bus.frames()[-1], image.rotate(-90, expand=True))
    with pytest.raises(ValueError, match="64x128"):
        panel.show(picture("Wrong way"))
    panel.close()


def test_an_absent_panel_is_one_warning_and_no_panel(caplog: pytest.LogCaptureFixture) -> None:
    bus = Bus()
    bus.failure = OSError(121, "Remote I/O error")
    caplog.set_level(logging.INFO, logger="readerhost.drivers.display")

    assert Panel.open(DisplaySettings(kind="ssd1306", i2c_address=0x3D), bus=bus) is None

    assert [record.levelname for record in caplog.records] == ["WARNING"]
    message = caplog.records[0].getMessage()
    assert "I²C bus 1 at address 0x3D" in message
    assert "running without" in message
    assert "\n" not in message


def test_a_missing_i2c_bus_is_one_warning_and_no_panel(caplog: pytest.LogCaptureFixture) -> None:
    assert not Path("/dev/i2c-99").exists()
    assert Panel.open(DisplaySettings(kind="sh1106", i2c_bus=99)) is None  # luma's own smbus2 bus
    assert [record.levelname for record in caplog.records] == ["WARNING"]
    assert "/dev/i2c-99" in caplog.records[0].getMessage()


def test_a_size_the_controller_cannot_drive_is_one_warning_and_no_panel(caplog: pytest.LogCaptureFixture) -> None:
    assert Panel.open(DisplaySettings(kind="ssd1306", width=100, height=50), bus=Bus()) is None
    assert [record.levelname for record in caplog.records] == ["WARNING"]
    assert "100 x 50" in caplog.records[0].getMessage()


def test_a_panel_that_stops_answering_is_told_once_and_drawn_again_when_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = Bus()
    panel = open_panel(SSD1306, bus)
    panel.show(picture("Ready"))
    caplog.set_level(logging.INFO, logger="readerhost.drivers.display")

    bus.failure = OSError(121, "Remote I/O error")
    assert panel.show(picture("Insert card")) is False
    assert panel.show(picture("Insert card")) is False
    panel.tick(10**6)
    assert [record.levelname for record in caplog.records] == ["WARNING"]
    assert "stopped answering" in caplog.records[0].getMessage()

    bus.failure = None
    assert panel.show(picture("Insert card")) is True
    assert same_pixels(bus.frames()[-1], picture("Insert card"))
    assert "answers again" in caplog.records[-1].getMessage()
    panel.close()


def test_without_luma_installed_the_daemon_runs_without_a_display(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "luma.oled.device", None)  # import fails as if not installed
    assert Panel.open(SSD1306, bus=Bus()) is None
    assert len(caplog.records) == 1
    assert "readerhost[oled]" in caplog.records[0].getMessage()


def test_no_display_configured_is_no_panel() -> None:
    assert Panel.open(DisplaySettings()) is None


@pytest.mark.parametrize(
    ("field", "value"), [("kind", "ssd1351"), ("interface", "usb"), ("rotate", 4), ("contrast", 256)]
)
def test_settings_refuse_what_no_panel_can_do(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        DisplaySettings(**{field: value})  # type: ignore[arg-type]


# -- the terminal preview ------------------------------------------------------------------------

HALF_BLOCKS = {" ": (0, 0), "▀": (1, 0), "▄": (0, 1), "█": (1, 1)}


def decode_terminal(lines: list[str], width: int) -> Image.Image:
    """The framed half-block text back to pixels: each character is a pixel above a pixel."""
    assert lines[0] == "┌" + "─" * width + "┐"
    assert lines[-1] == "└" + "─" * width + "┘"
    rows = lines[1:-1]
    image = Image.new("1", (width, 2 * len(rows)))
    for row, line in enumerate(rows):
        assert line == "│" + line[1:-1] + "│"
        assert len(line) == width + 2
        for x, char in enumerate(line[1:-1]):
            top, bottom = HALF_BLOCKS[char]
            image.putpixel((x, 2 * row), top)
            image.putpixel((x, 2 * row + 1), bottom)
    return image


def test_terminal_preview_draws_the_image_in_half_blocks() -> None:
    out = io.StringIO()
    panel = Panel.open(DisplaySettings(kind="terminal"), output=out)
    assert panel is not None
    image = picture("Approved")
    assert panel.show(image)
    assert panel.show(picture("Approved")) is False

    lines = out.getvalue().splitlines()
    assert len(lines) == 64 // 2 + 2
    assert same_pixels(decode_terminal(lines, 128), image)
    assert "\x1b" not in out.getvalue()

    assert panel.show(picture("Declined"))  # not a TTY: appended below
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 * (64 // 2 + 2)
    assert same_pixels(decode_terminal(lines[34:], 128), picture("Declined"))


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_preview_redraws_in_place_on_a_tty() -> None:
    out = FakeTty()
    panel = Panel.open(DisplaySettings(kind="terminal", width=32, height=16), output=out)
    assert panel is not None
    panel.show(picture("A", (32, 16)))
    first = out.getvalue()
    assert not first.startswith("\x1b")
    panel.show(picture("B", (32, 16)))
    second = out.getvalue()[len(first) :]
    assert second.startswith("\x1b[10A")  # back up over the 8 rows and 2 frame lines
    assert same_pixels(decode_terminal(second[len("\x1b[10A") :].splitlines(), 32), picture("B", (32, 16)))


# -- snapshots ---------------------------------------------------------------------------------


def test_snapshots_keep_new_frames_only(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    panel = Panel.open(DisplaySettings(kind="terminal", snapshot_dir=str(folder)), output=io.StringIO())
    assert panel is not None
    panel.show(picture("One"))
    panel.show(picture("One"))
    panel.show(picture("Two"))

    assert sorted(path.name for path in folder.iterdir()) == ["frame-1.png", "frame-2.png"]
    with Image.open(folder / "frame-2.png") as saved:
        assert same_pixels(saved, picture("Two"))


def test_snapshots_keep_the_last_fifty_and_number_on(tmp_path: Path) -> None:
    bus = Bus()
    panel = open_panel(DisplaySettings(kind="ssd1306", snapshot_dir=str(tmp_path)), bus)
    for n in range(1, 56):
        assert panel.show(picture(f"#{n}"))
    panel.close()
    numbers = sorted(int(path.stem.removeprefix("frame-")) for path in tmp_path.iterdir())
    assert numbers == list(range(6, 56))
    with Image.open(tmp_path / "frame-55.png") as saved:
        assert same_pixels(saved, picture("#55"))

    again = Panel.open(DisplaySettings(kind="terminal", snapshot_dir=str(tmp_path)), output=io.StringIO())
    assert again is not None
    again.show(picture("After a restart"))
    assert (tmp_path / "frame-56.png").exists()
    assert not (tmp_path / "frame-6.png").exists()


# -- import hygiene ------------------------------------------------------------------------------


def test_importing_the_driver_loads_neither_luma_nor_pillow() -> None:
    code = (
        "import sys\n"
        "import readerhost.drivers.display\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in ('luma', 'PIL'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
