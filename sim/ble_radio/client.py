"""bleak's client backend on a `VirtualRadio`: a bumble GATT client behind BaseBleakClient.

Where backends differ, this one does what bleak's BlueZ backend does: connecting by address scans
for the device first, the disconnected callback fires once per connection on local and remote
disconnects alike, and I/O without a connection raises `BleakError("Not connected")`. Pairing is
bumble's SMP (LE Secure Connections, bonding, Just Works: BlueZ's `Device1.Pair` without an agent);
the keys go to the adapter's keystore, and a connection to a bonded device is encrypted with its
key before anything else, as BlueZ does (its ATT channel opens at security level medium for a paired
device): a device without the key fails, and is disconnected.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from bleak import BleakScanner
from bleak.args import SizedBuffer
from bleak.assigned_numbers import gatt_char_props_to_strs
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakDeviceNotFoundError, BleakError, BleakGATTProtocolError
from bumble import att, hci
from bumble.core import UUID, ProtocolError
from bumble.device import Connection, Device, Peer
from bumble.gatt_client import CharacteristicProxy

from .scanner import bleak_uuid

if TYPE_CHECKING:
    from .radio import VirtualRadio

log = logging.getLogger(__name__)
_T = TypeVar("_T")

DEFAULT_MTU = 23  # ATT's minimum, what a connection has until an MTU exchange
REQUESTED_MTU = 247  # what BlueZ and most phones ask for: 244-byte pieces, one LE data packet each


class BumbleBleakClient(BaseBleakClient):
    """A bleak client backend whose radio comes from `radio=` (bleak forwards extra keyword
    arguments) or from a subclass made by `VirtualRadio.bleak_backends()`."""

    default_radio: ClassVar[VirtualRadio | None] = None

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None,
        timeout: float,
        services: set[str] | None = None,
        radio: VirtualRadio | None = None,
        **kwargs: Any,  # bleak's per-platform arguments (bluez=, winrt=): nothing to do with them here
    ) -> None:
        super().__init__(address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout)
        chosen = radio or self.default_radio
        if chosen is None:
            raise TypeError("BumbleBleakClient needs a radio: pass radio= or use VirtualRadio.bleak_backends()")
        self._radio = chosen
        self._wanted_services = services
        self._peer_address: hci.Address | None = None
        self._name: str | None = None
        if isinstance(address_or_ble_device, BLEDevice):
            self._peer_address = address_or_ble_device.details
            self._name = address_or_ble_device.name
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._mtu = DEFAULT_MTU
        self._subscribers: dict[int, Callable[[bytes], None]] = {}

    @classmethod
    async def bonded(cls, address: str) -> bool:
        """What readerhost's BLE driver asks BlueZ (Device1's Bonded): a bond in the adapter's keystore."""
        if cls.default_radio is None:
            raise TypeError("BumbleBleakClient.bonded needs a radio: use VirtualRadio.bleak_backends()")
        return await cls.default_radio.bonded(address)

    # -- connection ---------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name or self.address.replace(":", "-")

    @property
    def mtu_size(self) -> int:
        return self._connection.att_mtu if self._connection is not None else self._mtu

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        if self.is_connected:
            raise BleakError("Client is already connected")
        if pair:
            log.warning("the bumble backend does not pair; connecting without pairing")
        timeout = float(kwargs.get("timeout", self._timeout))
        if self._peer_address is None:
            self._peer_address = await self._find(timeout)
        adapter = await self._radio.adapter()
        async with asyncio.timeout(timeout):
            connection = await self._open(adapter, self._peer_address)
            try:
                if await self._radio.bonded(str(self._peer_address)):
                    await _encrypt(adapter, connection)
                self.services = await self._att(self._discover(connection))
            except BaseException:
                await _disconnect(connection)
                raise

    async def _find(self, timeout: float) -> hci.Address:
        # As BlueZ does: a device must have been seen advertising before it can be connected to.
        scanner_backend = self._radio.bleak_backends()[1]
        device = await BleakScanner.find_device_by_address(self.address, timeout=timeout, backend=scanner_backend)
        if device is None:
            raise BleakDeviceNotFoundError(self.address, f"Device with address {self.address} was not found.")
        self._name = device.name
        address: hci.Address = device.details
        return address

    async def _open(self, adapter: Device, peer_address: hci.Address) -> Connection:
        async with self._radio.connect_lock:
            try:
                # No timeout inside bumble: its own would wait forever for the canceled attempt.
                connection: Connection = await adapter.connect(peer_address, timeout=None)
            except asyncio.CancelledError:
                self._radio.forget_connection_attempt(adapter)
                raise
        self._connection = connection
        self._mtu = DEFAULT_MTU
        connection.once(Connection.EVENT_DISCONNECTION, lambda _reason: self._on_disconnected(connection))
        return connection

    async def _discover(self, connection: Connection) -> BleakGATTServiceCollection:
        peer = Peer(connection)
        self._peer = peer
        await peer.request_mtu(REQUESTED_MTU)
        wanted = [UUID(uuid) for uuid in self._wanted_services] if self._wanted_services else []
        collection = BleakGATTServiceCollection()
        for service in await peer.discover_services(wanted):
            bleak_service = BleakGATTService(service, service.handle, bleak_uuid(service.uuid))
            collection.add_service(bleak_service)
            for characteristic in await peer.discover_characteristics(service=service):
                bleak_char = BleakGATTCharacteristic(
                    characteristic,
                    characteristic.handle,
                    bleak_uuid(characteristic.uuid),
                    list(gatt_char_props_to_strs(int(characteristic.properties))),
                    lambda: self.mtu_size - 3,
                    bleak_service,
                )
                collection.add_characteristic(bleak_char)
                for descriptor in await peer.discover_descriptors(characteristic=characteristic):
                    collection.add_descriptor(
                        BleakGATTDescriptor(descriptor, descriptor.handle, bleak_uuid(descriptor.type), bleak_char)
                    )
        return collection

    def _on_disconnected(self, connection: Connection) -> None:
        if connection is not self._connection:
            return
        self._mtu = connection.att_mtu
        self._connection = None
        self._peer = None
        self.services = None
        self._subscribers.clear()
        if self._disconnected_callback is not None:
            self._disconnected_callback()

    async def disconnect(self) -> None:
        connection = self._connection
        if connection is not None:
            await _disconnect(connection)

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        """Pair and bond with the connected device (nothing to do when bonded, as BlueZ's backend)."""
        connection = self._connection
        if connection is None:
            raise BleakError("Not connected")
        if await self._radio.bonded(self.address):
            return
        adapter = await self._radio.adapter()
        try:
            await adapter.pair(connection)
            # Our keys went last; the peer stores the bond in a task that a disconnect cancels. One
            # request answered after them means the peer has taken them (BlueZ keeps the link too).
            await self._att(self._connected_peer().discover_services())
        except ProtocolError as error:
            raise BleakError(f"Pairing failed: {error.error_name or error}") from None
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if self._connection is None and task is not None and task.cancelling() == 0:
                raise BleakError("Not connected: the link dropped during pairing") from None
            raise

    async def unpair(self) -> None:
        """Forget the bond, and disconnect (as BlueZ's RemoveDevice does)."""
        await self.disconnect()
        await self._radio.forget(self.address)

    # -- I/O -----------------------------------------------------------------------------------

    async def _att(self, operation: Awaitable[_T]) -> _T:
        """Run one GATT operation, with bleak's exceptions for ATT errors and lost links."""
        try:
            return await operation
        except att.ATT_Error as error:
            raise BleakGATTProtocolError(error.error_code) from error
        except asyncio.CancelledError:
            # bumble cancels a request's pending response when the link drops: that is no
            # cancellation of ours, unless our task is being canceled too.
            task = asyncio.current_task()
            if self._connection is None and task is not None and task.cancelling() == 0:
                raise BleakError("Not connected: the link dropped during the operation") from None
            raise

    def _connected_peer(self) -> Peer:
        if self._peer is None:
            raise BleakError("Not connected")
        return self._peer

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        peer = self._connected_peer()
        return bytearray(await self._att(peer.read_value(characteristic.handle)))

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        peer = self._connected_peer()
        return bytearray(await self._att(peer.read_value(descriptor.handle)))

    async def write_gatt_char(self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool) -> None:
        peer = self._connected_peer()
        await self._att(peer.write_value(characteristic.handle, bytes(data), with_response=response))

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: SizedBuffer) -> None:
        peer = self._connected_peer()
        await self._att(peer.write_value(descriptor.handle, bytes(data), with_response=True))

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        peer = self._connected_peer()
        proxy: CharacteristicProxy[bytes] = characteristic.obj

        def deliver(value: bytes) -> None:
            callback(bytearray(value))

        self._subscribers[characteristic.handle] = deliver
        await self._att(peer.subscribe(proxy, deliver))

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        peer = self._connected_peer()
        proxy: CharacteristicProxy[bytes] = characteristic.obj
        await self._att(peer.unsubscribe(proxy, self._subscribers.pop(characteristic.handle, None)))


async def _encrypt(adapter: Device, connection: Connection) -> None:
    """Encrypt with the bond's key; BleakError (after disconnecting) when the device lacks it."""
    try:
        await adapter.encrypt(connection)
    except hci.HCI_Error as error:
        await _disconnect(connection)
        raise BleakError(f"Connection failed: encryption with the bonded key failed ({error.error_name})") from None


async def _disconnect(connection: Connection) -> None:
    """Disconnect, waiting for the controller to confirm; a link already gone is not an error."""
    if connection.device.connections.get(connection.handle) is not connection:
        return  # gone already (the controller dropped it): its disconnection would never be confirmed
    try:
        await connection.disconnect()
    except Exception as error:  # the peer may have disconnected first: the handle is gone
        log.debug("disconnect: %r", error)
