"""A Bluetooth LE radio in one process, for tests and the emulator: bumble's virtual controllers on
one `LocalLink`, and bleak backends that speak through them.

What it is for: running readerhost's BLE driver — real bleak, through its public API — against the
reader emulator's GATT peripheral (`readerhost.sim.reader_device.ble`) on a machine with no
Bluetooth at all (CI, containers, a laptop without an adapter).

    async with VirtualRadio() as radio:
        client_backend, scanner_backend = radio.bleak_backends()
        device = await BleakScanner.find_device_by_filter(..., backend=scanner_backend)
        client = BleakClient(device, backend=client_backend)

Each device on the radio gets its own bumble controller; the bleak side shares one "adapter" device
per radio, as bleak shares hci0 on Linux. `expose_controller` adds a controller whose host is
another process, reached over bumble's TCP transport (the emulator's `--ble tcp-client:...`).
The backends follow bleak's BlueZ backend where they must choose: connecting by address scans for
it first (`BleakDeviceNotFoundError` when absent), the disconnected callback fires on local and
remote disconnects alike, I/O after a disconnect raises `BleakError("Not connected")`.

Limits (of bumble's virtual controller, not of real radios): no radio timing, loss or RSSI (always
-50 dBm); scan responses repeat the advertising data, so a name that only fits in a scan response is
not seen; a canceled connection attempt never completes, so the client times connect out itself.
Pairing is bumble's SMP: LE Secure Connections with bonding, Just Works (`BleakClient.pair()`); the
adapter keeps its bonds in `VirtualRadio(keystore=PATH)` (a JSON file) or in memory, `bonded(address)`
answers what the daemon asks BlueZ, and a connection to a bonded device is encrypted with its key.
Bumble costs about 300 ms to import and 40 MB: the daemon must never import this package at run
time, only tests and the emulator do. This module imports nothing heavy; `VirtualRadio` and the
backends load bumble and bleak on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import BumbleBleakClient
    from .radio import VirtualRadio
    from .scanner import BumbleBleakScanner

__all__ = ["BumbleBleakClient", "BumbleBleakScanner", "VirtualRadio"]


def __getattr__(name: str) -> Any:
    if name == "VirtualRadio":
        from .radio import VirtualRadio

        return VirtualRadio
    if name == "BumbleBleakClient":
        from .client import BumbleBleakClient

        return BumbleBleakClient
    if name == "BumbleBleakScanner":
        from .scanner import BumbleBleakScanner

        return BumbleBleakScanner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
