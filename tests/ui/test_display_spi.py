"""An SPI panel through luma's real SPI interface and SSD1306 driver: the SPI bus is a recording
stand-in, and the DC and RST lines go through gpiozero's MockFactory — the same path lgpio drives
on a Pi 5, where luma's own RPi.GPIO cannot."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from gpiozero import Button, Device, GPIOPinInUse  # type: ignore[import-untyped]
from gpiozero.pins.mock import MockFactory  # type: ignore[import-untyped]
from PIL import Image, ImageDraw
from support.oled import COMMAND, DATA, RecordingSpi

from readerhost.drivers.display import DisplaySettings, Panel

pytestmark = pytest.mark.filterwarnings("ignore:Image.Image.getdata is deprecated:DeprecationWarning")

SPI_PANEL = DisplaySettings(kind="ssd1306", interface="spi", spi_port=0, spi_device=1, spi_dc_pin=23, spi_rst_pin=5)
DISPLAY_ON = 0xAF


@pytest.fixture
def factory() -> Iterator[Any]:
    mock = MockFactory()
    yield mock
    mock.reset()
    Device.pin_factory = None


def picture(text: str) -> Image.Image:
    image = Image.new("1", (128, 64))
    ImageDraw.Draw(image).text((4, 20), text, fill=1)
    return image


def test_an_spi_panel_is_reset_then_driven_with_dc_low_for_commands_and_high_for_data(factory: Any) -> None:
    dc = factory.pin(23)
    spi = RecordingSpi(lambda: dc.state)
    panel = Panel.open(SPI_PANEL, spi=spi, pin_factory=factory)
    assert panel is not None

    assert spi.opened == (0, 1)
    assert spi.max_speed_hz == 8_000_000
    rst = factory.pin(5)
    # RST pulled low, then held high, before luma's init sequence: the controller was reset.
    assert [state.state for state in rst.states][-2:] == [False, True]
    assert dc.function == "output"
    assert spi.transactions[0][1] == COMMAND
    assert (DISPLAY_ON,) in spi.commands()

    image = picture("Tap to pay")
    before = len(spi.transactions)
    assert panel.show(image) is True
    assert sum(len(data) for _, kind, data in spi.transactions[before:] if kind == DATA) == 128 * 64 // 8
    assert list(spi.frames()[-1].getdata()) == list(image.getdata())

    panel.close()
    assert spi.closed
    Button(23, pin_factory=factory).close()  # the lines were given back
    Button(5, pin_factory=factory).close()


def test_without_a_reset_line_the_panel_is_driven_all_the_same(factory: Any) -> None:
    dc = factory.pin(24)
    spi = RecordingSpi(lambda: dc.state)
    settings = DisplaySettings(kind="ssd1306", interface="spi", spi_rst_pin=None)
    panel = Panel.open(settings, spi=spi, pin_factory=factory)
    assert panel is not None
    assert (DISPLAY_ON,) in spi.commands()
    assert factory.pin(25).function == "input"  # the default RST pin is left alone
    panel.close()


def test_a_dc_pin_taken_by_a_button_is_one_warning_and_no_panel(factory: Any, caplog: pytest.LogCaptureFixture) -> None:
    button = Button(23, pin_factory=factory)
    spi = RecordingSpi(lambda: 0)
    with caplog.at_level(logging.WARNING, logger="readerhost.drivers.display"):
        assert Panel.open(SPI_PANEL, spi=spi, pin_factory=factory) is None
    (record,) = caplog.records
    assert record.getMessage().startswith("display: cannot use the ssd1306 on SPI port 0 device 1 (DC on 23)")
    assert spi.transactions == []
    button.close()


def test_a_panel_configured_first_keeps_its_lines_from_a_button(factory: Any) -> None:
    dc = factory.pin(23)
    panel = Panel.open(SPI_PANEL, spi=RecordingSpi(lambda: dc.state), pin_factory=factory)
    assert panel is not None
    with pytest.raises(GPIOPinInUse):
        Button(23, pin_factory=factory)
    panel.close()


def test_a_missing_spi_bus_is_one_warning_and_the_lines_are_given_back(
    factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    class AbsentSpi(RecordingSpi):
        def open(self, port: int, device: int) -> None:
            raise FileNotFoundError(2, "No such file or directory")

    with caplog.at_level(logging.WARNING, logger="readerhost.drivers.display"):
        assert Panel.open(SPI_PANEL, spi=AbsentSpi(lambda: 0), pin_factory=factory) is None
    assert "SPI device not found" in caplog.records[0].getMessage()
    Button(23, pin_factory=factory).close()  # not left reserved
