"""The reader link over Bluetooth LE, with bleak: the device is a GATT server with the link
service (docs/reader-link-protocol.md § 5); the host writes to RX and is notified on TX, in pieces
of at most ATT_MTU - 3 bytes.

`backend` / `scanner_backend` are bleak's own injection points (None: the platform's, BlueZ on a
Pi); the tests pass backends built on bumble's virtual controllers. Without D-Bus, bleak raises a
bare FileNotFoundError rather than BleakError, so both are caught.

Bonding (docs/reader-link-protocol.md § 5.1): with `require_bond` (the default; a live key allows
nothing else) the host takes only a device it is bonded with, and asks before it connects (BlueZ:
Device1's Bonded property, `bluez.py`; a test backend answers from its keystore). BlueZ encrypts a
connection to a bonded device with the bond's key, so a device spoofing the address without the key
is dropped. `pair` bonds (LE Secure Connections) through bleak's `BleakClient.pair()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from readerhost.drivers.settings import Flag, Number, Section, Text, setting

from .base import Capability, ReaderContext
from .link import CAPABILITIES as LINK_CAPABILITIES
from .link import LinkProtocolSettings
from .link.transport import LinkLost, LinkRefused, LinkUnavailable

if TYPE_CHECKING:
    from .link.reader import LinkReader

SERVICE_UUID = "5f6d0001-2b7c-4e8a-9d41-3a0c8e5b7f21"
RX_UUID = "5f6d0002-2b7c-4e8a-9d41-3a0c8e5b7f21"  # host -> device: write without response
TX_UUID = "5f6d0003-2b7c-4e8a-9d41-3a0c8e5b7f21"  # device -> host: notify
DEFAULT_ATT_MTU = 23
ANY_DEVICE_REFUSED = (
    "with a live Stripe key the Bluetooth reader must be named by its address ([reader.ble] address): "
    "the first device advertising the reader service is not taken"
)
BOND_REQUIRED = (
    "with a live Stripe key the Bluetooth reader must be bonded: [reader.ble] require_bond = false is for test keys"
)
PAIR_HINT = "pair it once with `sudo readerhostctl reader pair`"


_ADDRESS = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}")


def _address(value: str) -> str | None:
    if not value or _ADDRESS.fullmatch(value):
        return None
    return 'a Bluetooth address like "C0:FF:EE:12:34:56", or "" to find the reader by scanning'


@dataclass(frozen=True)
class BleSettings(LinkProtocolSettings):
    address: str = setting("", Text(_address))  # empty: the first device advertising the link service
    scan_timeout_s: float = setting(10.0, Number(above=0))
    connect_timeout_s: float = setting(15.0, Number(above=0))
    require_bond: bool = setting(True, Flag())  # take only a bonded device (false: test keys only)


SETTINGS = Section("reader.ble", BleSettings)
CAPABILITIES = LINK_CAPABILITIES | {Capability.PAIRS}

Bonded = Callable[[str], Awaitable[bool]]  # whether the host holds a bond with the device at an address


def open_reader(settings: BleSettings, context: ReaderContext) -> LinkReader:
    from .ble_pairing import BleLinkReader, BleSdkLinkReader
    from .link.reader import open_link_reader

    client_backend, scanner_backend = context.ble_backends or (None, None)
    refused = None
    if context.live and not settings.address:
        # Scanning takes whichever device advertises the service: with real money, only the configured one.
        refused = ANY_DEVICE_REFUSED
    elif context.live and not settings.require_bond:
        refused = BOND_REQUIRED
    transport = BleTransport(settings, client_backend, scanner_backend)
    return open_link_reader(transport, context, settings, refused, classes=(BleLinkReader, BleSdkLinkReader))


def _bonded_check(backend: Any) -> Bonded:
    """BlueZ's word on bonds, or a test backend's (bumble's keystore: its `bonded` class method)."""
    if backend is None:
        from .bluez import bonded

        return bonded
    check: Bonded = backend.bonded
    return check


class BleTransport:
    def __init__(self, settings: BleSettings, backend: Any = None, scanner_backend: Any = None) -> None:
        self._settings = settings
        self._backend = backend
        self._scanner_backend = scanner_backend
        self._bonded = _bonded_check(backend)

    def describe(self) -> dict[str, Any]:
        return {"transport": "ble", "address": self._settings.address or f"any with service {SERVICE_UUID}"}

    async def _find(self) -> Any:
        """The configured address, or the first device advertising the link service (a BLEDevice)."""
        from bleak import BleakScanner

        settings = self._settings
        if settings.address:
            return settings.address
        found = await BleakScanner.find_device_by_filter(
            lambda _device, advertisement: SERVICE_UUID in advertisement.service_uuids,
            timeout=settings.scan_timeout_s,
            service_uuids=[SERVICE_UUID],
            backend=self._scanner_backend,
        )
        if found is None:
            raise LinkUnavailable(f"no device advertising the reader link service within {settings.scan_timeout_s:g} s")
        return found

    async def _refuse_unbonded(self, address: str) -> None:
        if self._settings.require_bond and not await self._bonded(address):
            raise LinkRefused(f"the Bluetooth device {address} is not bonded with this host: {PAIR_HINT}", "not bonded")

    async def address(self) -> str:
        """The configured reader's address, or the first found advertising the link service."""
        from bleak.exc import BleakError

        try:
            return _address_of(await self._find())
        except (BleakError, OSError) as error:
            raise LinkUnavailable(_explain(error)) from None

    async def bonded(self, address: str) -> bool:
        try:
            return await self._bonded(address)
        except OSError as error:
            raise LinkUnavailable(_explain(error)) from None

    async def pair(self, address: str) -> None:
        """Bond with the device at `address`: LE Secure Connections through the platform (BlueZ:
        Device1.Pair, bleak's `BleakClient.pair()`). LinkUnavailable says why it could not."""
        from bleak import BleakClient
        from bleak.exc import BleakError

        timeout_s = self._settings.connect_timeout_s
        try:
            client = BleakClient(address, timeout=timeout_s, backend=self._backend)
            async with asyncio.timeout(timeout_s):
                await client.connect()
            try:
                async with asyncio.timeout(timeout_s):
                    await client.pair()
            finally:
                with contextlib.suppress(BleakError, OSError, TimeoutError):
                    await client.disconnect()
        except TimeoutError:
            raise LinkUnavailable(f"pairing timed out after {timeout_s:g} s") from None
        except (BleakError, OSError) as error:
            raise LinkUnavailable(_explain(error)) from None
        if not await self.bonded(address):
            raise LinkUnavailable(f"pairing with {address} ended without a bond (does the reader accept bonding?)")

    async def connect(self) -> BleConnection:
        from bleak import BleakClient  # only a daemon configured for BLE loads bleak
        from bleak.exc import BleakError

        settings = self._settings
        try:
            target = await self._find()
            # Asked before connecting: a device the host is not bonded with is never talked to.
            await self._refuse_unbonded(_address_of(target))
            connection = BleConnection(asyncio.get_running_loop())
            client = BleakClient(
                target,
                disconnected_callback=connection.disconnected,
                timeout=settings.connect_timeout_s,
                backend=self._backend,
            )
            # asyncio.timeout, not wait_for: in 3.11 wait_for can swallow a cancel (the daemon stopping).
            async with asyncio.timeout(settings.connect_timeout_s):
                await client.connect()
            try:
                await connection.attach(client)
            except BaseException:
                with contextlib.suppress(BleakError, OSError, TimeoutError):
                    await client.disconnect()
                raise
        except LinkUnavailable:
            raise
        except TimeoutError:
            raise LinkUnavailable(f"connecting timed out after {settings.connect_timeout_s:g} s") from None
        except (BleakError, OSError) as error:
            raise LinkUnavailable(_explain(error)) from None
        return connection


def _address_of(target: Any) -> str:
    return target if isinstance(target, str) else str(target.address)


def _explain(error: Exception) -> str:
    if isinstance(error, FileNotFoundError):
        return "Bluetooth is not available (no D-Bus or no BlueZ: is bluetooth.service running?)"
    text = str(error) or type(error).__name__
    return f"Bluetooth: {text}"


class BleConnection:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._client: Any = None
        self._incoming: asyncio.Queue[bytes | LinkLost] = asyncio.Queue()
        self._piece = DEFAULT_ATT_MTU - 3

    async def attach(self, client: Any) -> None:
        """Find the link service and subscribe to TX; LinkUnavailable if the device lacks them."""
        from bleak.exc import BleakError

        service = client.services.get_service(SERVICE_UUID)
        if (
            service is None
            or service.get_characteristic(RX_UUID) is None
            or service.get_characteristic(TX_UUID) is None
        ):
            raise LinkUnavailable("the device has no reader link service")
        self._client = client
        self._piece = max(DEFAULT_ATT_MTU, int(client.mtu_size)) - 3
        try:
            await client.start_notify(TX_UUID, self._notified)
        except BleakError as error:
            raise LinkUnavailable(f"cannot subscribe to the link's notifications: {error}") from None

    def _notified(self, _characteristic: Any, data: bytearray) -> None:
        if data:
            self._incoming.put_nowait(bytes(data))

    def disconnected(self, _client: Any) -> None:
        """bleak's disconnected_callback: called from the event loop when the link drops."""
        self._incoming.put_nowait(LinkLost("the Bluetooth connection dropped"))

    async def read(self) -> bytes:
        item = await self._incoming.get()
        if isinstance(item, LinkLost):
            self._incoming.put_nowait(item)
            raise item
        return item

    async def write(self, data: bytes) -> None:
        from bleak.exc import BleakError

        if self._client is None:
            raise LinkLost("not connected")
        try:
            for start in range(0, len(data), self._piece):
                await self._client.write_gatt_char(RX_UUID, data[start : start + self._piece], response=False)
        except (BleakError, OSError) as error:
            raise LinkLost(f"a Bluetooth write failed: {error}") from None

    async def close(self) -> None:
        from bleak.exc import BleakError

        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(BleakError, OSError, TimeoutError):
                async with asyncio.timeout(5.0):
                    await client.disconnect()
