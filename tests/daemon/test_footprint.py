"""What a daemon configured as on a kiosk loads: nothing of the simulator, no Pillow module the panel
does not draw with, no luma for a panel luma does not drive, and stripe only once it is ready
(issue 21: every module is resident memory on a 512 MB Pi, and time before READY=1).

The daemon is a real process with a serial reader (the reader emulator on a pty, presenting a card
by itself), the terminal panel, GPIO on gpiozero's mock pins, and Stripe at an emulator outside it,
as a live daemon has Stripe outside it. Python's `-X importtime` lists every module it imports; a
payment goes through first, so that what is imported lazily is listed too.
"""

from __future__ import annotations

from pathlib import Path

from conftest import EmulatorHandle

from bench.memory import UI_CONFIG, UI_ENV, one_payment
from bench.startup import external_config, reader_emulator, running_daemon, serial_reader


def imported_modules(log: list[str]) -> set[str]:
    """The modules a `-X importtime` process imported, from its stderr."""
    return {line.rsplit("|", 1)[-1].strip() for line in log if line.startswith("import time:")}


def imported_before_ready(log: list[str]) -> set[str]:
    """The modules imported before the daemon said it was ready (its log and -X importtime share stderr)."""
    ready = next(index for index, line in enumerate(log) if " ready on " in line)
    return imported_modules(log[:ready])


def test_a_kiosk_configured_daemon_loads_no_simulator_and_no_image_plugin(
    stripe_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    link = tmp_path / "reader-tty"
    with reader_emulator(link, "--card", "visa", "--present-after", "0"):
        config = external_config(stripe_emulator.url, UI_CONFIG, reader=serial_reader(link))
        with running_daemon(config, UI_ENV, python_flags=("-X", "importtime")) as daemon:
            assert one_payment(daemon.socket_path, present=False) == "captured"
        log = daemon.log
    loaded = imported_modules(log)
    assert "readerhost.daemon.ui.screens" in loaded, "the panel was not drawn: the test proves nothing"
    assert "serial" in loaded
    assert "gpiozero" in loaded
    assert sorted(m for m in loaded if m.startswith("readerhost.sim")) == []
    # The renderer stores pixels in PIL.Image and writes no image file: no format plugin (PNG, BMP...),
    # and draws its own bitmap fonts: no ImageDraw, ImageFont (FreeType), nor luma for the terminal panel.
    assert sorted(m for m in loaded if m.startswith("PIL.") and m.endswith("ImagePlugin")) == []
    assert sorted(m for m in loaded if m in ("PIL.ImageDraw", "PIL.ImageFont") or m.split(".")[0] == "luma") == []
    # The Stripe client, the panel and the pins are opened after READY=1 (nothing before it needs them).
    assert "stripe" in loaded
    after_ready = ("stripe", "requests", "gpiozero", "PIL")
    assert sorted(m for m in imported_before_ready(log) if m.split(".")[0] in after_ready) == []
    assert not [line for line in log if "Traceback" in line]
