"""`readerhost-reader-emulator --ble TRANSPORT`: the device as a GATT peripheral (ble.py) on any bumble
HCI transport — `usb:0` (a USB Bluetooth dongle), `serial:/dev/ttyUSB0`, `tcp-client:HOST:PORT`, ...

Prints `ble: ADDRESS NAME` once advertising, then the console of the pty mode (console.py,
control.py) with three commands of its own: `unplug` makes the reader vanish (the central is
disconnected — the host sees a remote disconnect — and the reader stops advertising and refuses
centrals), `replug` makes it advertise again (after an unplug first when plugged in), and `status`
answers `ble`, `plugged` and `connected` instead of `pty`. Loads bumble: cli.py imports this module
only in --ble mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys

from bumble.device import Device
from bumble.hci import Address
from bumble.transport import open_transport
from bumble.transport.common import Transport

from . import console, control
from .ble import DEFAULT_NAME, ReaderPeripheral
from .device import ReaderDevice

log = logging.getLogger(__name__)

START_S = 10.0  # something that is no controller never answers HCI_Reset
STOP_S = 5.0


class PeripheralPort:
    """The control channel's unplug, replug and status for the peripheral (control.Port): unplug
    disconnects the central and stops advertising, replug advertises again."""

    def __init__(self, device: ReaderDevice, peripheral: ReaderPeripheral) -> None:
        self._device = device
        self._peripheral = peripheral

    async def unplug(self) -> None:
        await self._peripheral.unplug()

    async def replug(self) -> control.Answer:
        if self._peripheral.plugged:
            await self._peripheral.unplug()
        await self._peripheral.plug()
        return {"ble": self._peripheral.address}

    def describe(self) -> control.Answer:
        peripheral = self._peripheral
        return {"ble": peripheral.address, "plugged": peripheral.plugged, "connected": peripheral.connected}


async def serve(
    device: ReaderDevice, spec: str, *, name: str | None, address: str | None, require_encryption: bool = False
) -> int:
    """Serve `device` on the transport `spec` until SIGTERM or SIGINT (0) or the transport is lost (1).
    `address`: a random static address (None: a fresh one); `require_encryption`: the host must bond."""
    stop = console.stop_on_signals()
    try:
        transport = await asyncio.wait_for(open_transport(spec), START_S)
    except Exception as error:  # bumble raises anything from ValueError to USB errors
        return _fail(f"cannot open the Bluetooth transport {spec!r}: {_one_line(error)}")
    try:
        return await _serve_on(transport, device, spec, name or DEFAULT_NAME, address, stop, require_encryption)
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(transport.close(), STOP_S)


async def _serve_on(
    transport: Transport,
    device: ReaderDevice,
    spec: str,
    name: str,
    address: str | None,
    stop: asyncio.Event,
    require_encryption: bool,
) -> int:
    hci = Device.with_hci(name, Address(address) if address else Address.ANY_RANDOM, transport.source, transport.sink)
    peripheral = ReaderPeripheral(hci, device, name=name, require_encryption=require_encryption)
    try:
        await asyncio.wait_for(hci.power_on(), START_S)  # ANY_RANDOM: a fresh static address
        await asyncio.wait_for(peripheral.start(), START_S)
    except Exception as error:
        return _fail(f"no Bluetooth controller to advertise on at {spec!r}: {_one_line(error)}")
    print(f"ble: {peripheral.address} {name}", flush=True)
    lost = transport.source.terminated  # the dongle pulled out, the TCP peer gone
    lost.add_done_callback(lambda _: stop.set())
    port = PeripheralPort(device, peripheral)

    async def handle(line: str) -> control.Answer:
        return await control.handle(line, device, port)

    await console.serve_until(stop, handle)
    if lost.done():
        cause = None if lost.cancelled() else lost.exception()
        return _fail(f"the Bluetooth transport {spec!r} closed" + (f": {_one_line(cause)}" if cause else ""))
    try:
        # Let the controller stop advertising and drop the central before the transport closes.
        await asyncio.wait_for(peripheral.close(), STOP_S)
        await asyncio.wait_for(hci.power_off(), STOP_S)
    except Exception as error:
        log.warning("did not stop cleanly: %r", error)
    return 0


def _fail(message: str) -> int:
    print(f"{console.PROG}: {message}", file=sys.stderr)
    return 1


def _one_line(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return f"no answer within {START_S:g} s"
    return " ".join(str(error).split()) or type(error).__name__
