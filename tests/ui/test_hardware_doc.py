"""docs/hardware.md's wiring tables give the pins the settings default to, and its picture exists."""

from __future__ import annotations

import re
import xml.dom.minidom
from pathlib import Path

from readerhost.drivers.display import DisplaySettings
from readerhost.drivers.gpio import GpioSettings

DOCS = Path(__file__).resolve().parents[2] / "docs"
# BCM number -> physical pin on the 40-pin header, for the pins the defaults use.
PHYSICAL = {2: 3, 3: 5, 8: 24, 10: 19, 11: 23, 17: 11, 22: 15, 24: 18, 25: 22, 27: 13}


def rows() -> dict[str, tuple[str, str, str]]:
    """{first cell: (physical pin, BCM, configuration)} of the doc's wiring tables."""
    found = {}
    for line in (DOCS / "hardware.md").read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and re.fullmatch(r"\d+|e\.g\. .*", cells[-3]):
            found[cells[0]] = (cells[-3], cells[-2], cells[-1])
    return found


def test_the_wiring_tables_use_the_default_pins() -> None:
    display, gpio = DisplaySettings(), GpioSettings()
    table = rows()
    for part, bcm in (
        ("DC (D/C, A0)", display.spi_dc_pin),
        ("RST (RES)", display.spi_rst_pin),
        ("OK button", gpio.ok_pin),
        ("Cancel button", gpio.cancel_pin),
        ("status LED", gpio.led_pin),
    ):
        physical, named, configuration = table[part]
        assert bcm is not None
        assert named == f"GPIO{bcm}", part
        assert physical == str(PHYSICAL[bcm]), part
        assert configuration.endswith(f"= {bcm}`") or f"= {bcm}`" in configuration, part


def test_the_picture_is_an_svg_the_guide_links() -> None:
    text = (DOCS / "hardware.md").read_text(encoding="utf-8")
    assert "](hardware/wiring.svg)" in text
    root = xml.dom.minidom.parse(str(DOCS / "hardware" / "wiring.svg")).documentElement
    assert root is not None
    assert root.tagName == "svg"
