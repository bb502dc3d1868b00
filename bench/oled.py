"""The OLED: render time per frame, what a frame costs on the I²C bus, and frames per payment.

Every example screen (daemon/ui/examples.py) is rendered by `render()` and sent through luma.oled's
real ssd1306 driver to a RecordingBus (tests/support/oled.py), which records each I²C block write.
Render alone and render + display are timed separately. Frames per payment come from readerhostd
itself, in process, with its panel on a RecordingBus: one payment from `payment.start` to the
panel being back at idle.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import Result, spread, table

KEY = "oled"
BUS_HZ = 400_000  # I²C fast mode
# Per transaction on the wire: a start and a stop condition (about one bit time each), the address
# byte and the control byte, then the data bytes; every byte is 8 bits plus an ACK.
START_STOP_BITS = 2
HEADER_BYTES = 2  # address + control byte

KIOSK = """
[display]
kind = "ssd1306"

[reader.simulated]
present_after_s = -1
"""


@dataclass(frozen=True)
class BusCost:
    transactions: int
    payload_bytes: int  # control + data bytes, as smbus write_i2c_block_data is given them

    @property
    def wire_bytes(self) -> int:
        return self.payload_bytes + self.transactions  # plus the address byte of each transaction

    @property
    def bits(self) -> int:
        return self.wire_bytes * 9 + self.transactions * START_STOP_BITS

    @property
    def seconds(self) -> float:
        return self.bits / BUS_HZ


def _cost(transactions: list[tuple[int, int, bytes]]) -> BusCost:
    return BusCost(len(transactions), sum(1 + len(data) for _addr, _ctrl, data in transactions))


def run(quick: bool) -> Result:
    tests = str(Path(__file__).resolve().parents[1] / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    with warnings.catch_warnings():
        # luma.oled 3.16 reads pixels with Image.getdata(), which Pillow 13 deprecates.
        warnings.filterwarnings("ignore", "Image.Image.getdata is deprecated", DeprecationWarning)
        repetitions = 5 if quick else 200
        per_size = _frames(repetitions)
        payment = asyncio.run(_one_payment())
    return _result(repetitions, per_size, payment)


@dataclass
class SizeFigures:
    screens: int = 0
    render_ms: list[float] = field(default_factory=list)  # per screen: the median over the repetitions
    both_ms: list[float] = field(default_factory=list)
    cost: BusCost | None = None


def _frames(repetitions: int) -> dict[tuple[int, int], SizeFigures]:
    from luma.core.interface.serial import i2c  # type: ignore[import-untyped]
    from luma.oled.device import ssd1306  # type: ignore[import-untyped]
    from support.oled import RecordingBus

    from readerhost.daemon.ui.examples import examples
    from readerhost.daemon.ui.screens import render

    figures: dict[tuple[int, int], SizeFigures] = {}
    devices: dict[tuple[int, int], tuple[Any, Any]] = {}
    for example in examples():
        size = example.size
        if size not in devices:
            bus = RecordingBus()
            devices[size] = (bus, ssd1306(i2c(bus=bus, address=0x3C), width=size[0], height=size[1]))
            figures[size] = SizeFigures()
        bus, device = devices[size]
        entry = figures[size]
        entry.screens += 1
        alone: list[float] = []
        both: list[float] = []
        for _ in range(repetitions):
            started = time.perf_counter()
            render(example.screen, *size)
            alone.append((time.perf_counter() - started) * 1000)
        for _ in range(repetitions):
            bus.transactions.clear()
            started = time.perf_counter()
            device.display(render(example.screen, *size))
            both.append((time.perf_counter() - started) * 1000)
        entry.render_ms.append(statistics.median(alone))
        entry.both_ms.append(statistics.median(both))
        cost = _cost(bus.transactions)
        assert entry.cost is None or entry.cost == cost, f"{example.name}: a frame of another size on the bus"
        entry.cost = cost
    return figures


@dataclass(frozen=True)
class PaymentFrames:
    screens: tuple[str, ...]
    frames: int
    cost: BusCost


async def _one_payment() -> PaymentFrames:
    from support.daemon import LineClient, daemon_env, write_config
    from support.oled import RecordingBus, kinds_shown, marked

    from readerhost.daemon.app import StandIns, build
    from readerhost.daemon.config import load_config
    from readerhost.daemon.ui import catalog

    with tempfile.TemporaryDirectory(prefix="bench-oled-") as tmp:
        path = Path(tmp)
        bus = RecordingBus()
        env = daemon_env(path)
        config = load_config(str(write_config(path, KIOSK)), env)
        daemon = await build(config, env, cwd=path, home=path, stand_ins=StandIns(display_bus=bus))
        await daemon.start()
        try:
            client = await LineClient.connect(daemon.socket_path)
            await client.receive()
            await client.call("events.subscribe", {"topics": ["payment", "reader"]})
            frames_before = len(bus.frames())
            transactions_before = len(bus.transactions)
            started = await client.call("payment.start", {"order_id": "B-1", "amount": 1250, "currency": "usd"})
            payment_id = started["result"]["payment_id"]
            await client.event(lambda e: e["type"] == "reader.input_options")
            await client.call("reader.present", {"card": "visa"})
            await client.event(lambda e: e["type"] == "payment.state" and e["data"]["state"] == "authorized")
            await client.call("payment.capture", {"payment_id": payment_id})
            await client.event(lambda e: e["type"] == "payment.state" and e["data"]["state"] == "captured")
            deadline = time.monotonic() + 10.0  # the result stays up for a few seconds, then idle
            ui = daemon.ui
            assert ui is not None
            while ui.screen is None or ui.screen.kind != "idle":
                assert time.monotonic() < deadline, "the panel did not return to idle"
                await asyncio.sleep(0.05)
            await client.close()
            candidates = [
                marked(catalog.idle()),
                marked(catalog.amount_due(1250, "usd", ("tap", "insert", "swipe"))),
                marked(catalog.processing()),
                marked(catalog.approved(1250, "usd")),
            ]
            screens = tuple(kinds_shown(bus.frames()[frames_before:], candidates))
            frames = len(bus.frames()) - frames_before
            cost = _cost(bus.transactions[transactions_before:])
        finally:
            await daemon.stop()
    return PaymentFrames(screens, frames, cost)


def _result(repetitions: int, per_size: dict[tuple[int, int], SizeFigures], payment: PaymentFrames) -> Result:
    rows = []
    for (width, height), entry in sorted(per_size.items(), reverse=True):
        assert entry.cost is not None
        cost = entry.cost
        rows.append(
            [
                f"{width}x{height} ({entry.screens} screens)",
                spread(entry.render_ms, " ms", 2),
                spread(entry.both_ms, " ms", 2),
                f"{cost.transactions} ({cost.payload_bytes} B)",
                f"{cost.bits:,} bits = {cost.seconds * 1000:.1f} ms",
            ]
        )
    header = [
        "panel",
        "render()",
        "render() + luma display()",
        "I²C transactions per frame (bytes)",
        "bus time per frame at 400 kHz",
    ]
    notes = (
        f"Times are per frame: for each example screen the median of {repetitions} repetitions, shown as the median "
        "(min to max) over the screens; display() is luma.oled's real ssd1306 driver over a recording bus, so it "
        "includes packing the image into pages and the smbus calls but no real bus.",
        "Bus time: per transaction a start and a stop (2 bit times), the address byte, the control byte and the "
        "data bytes, each byte 9 bits with its ACK; luma sends the column/page window as one command transaction "
        "and the frame in 32-byte data blocks, always the whole frame.",
        f"One payment (start, tap, authorised, captured, back to idle) drew {payment.frames} frames: "
        f"{' → '.join(payment.screens)}; {payment.cost.transactions} transactions, {payment.cost.payload_bytes:,} "
        f"bytes, {payment.cost.seconds * 1000:.0f} ms of bus time at 400 kHz.",
        "No target: the figures say what a screen change costs; the slowest part is the bus, not rendering, "
        "when a real panel is attached."
        if all(statistics.median(e.both_ms) < (e.cost.seconds * 1000 if e.cost else 0.0) for e in per_size.values())
        else "No target: the figures say what a screen change costs; on this machine rendering and packing cost "
        "more than the bus time of a frame.",
    )
    return Result(KEY, "OLED frames", table(header, rows), notes, None)
