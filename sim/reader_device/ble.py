"""The reader device emulator as a Bluetooth LE GATT peripheral (docs/reader-link-protocol.md § 5).

`ReaderPeripheral` runs on any powered-on bumble `Device` — one on a `VirtualRadio` in tests
(`peripheral_on`), or one on a real bumble transport from the emulator's command line. It
advertises the link service and a local name, exposes RX (write, write without response) and TX
(notify), and serves one connection at a time: each connection gets one `server.serve(receive,
send)`, where `receive` yields the bytes written to RX (b"" once the central is gone) and `send`
notifies TX in pieces of at most ATT_MTU - 3 bytes. When `serve` returns while the central is still
connected (the device dropped the link), the peripheral disconnects it: the host sees a remote
disconnect. `unplug` makes the reader vanish (disconnected, not advertising, refusing centrals)
until `plug`. With `require_encryption`, RX takes writes only over an encrypted link (a bonded
host, or one that paired on this connection: the device accepts LE Secure Connections pairing with
bonding, Just Works, and keeps the keys in its device's keystore), as a reader carrying connection
tokens and client secrets must. Importing this module loads bumble (about 300 ms): the daemon never does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

from bumble import data_types
from bumble.core import UUID, AdvertisingData
from bumble.device import Connection, Device
from bumble.gatt import Characteristic, CharacteristicValue, Service

if TYPE_CHECKING:
    from readerhost.sim.ble_radio.radio import VirtualRadio

log = logging.getLogger(__name__)

LINK_SERVICE_UUID = "5f6d0001-2b7c-4e8a-9d41-3a0c8e5b7f21"
RX_UUID = "5f6d0002-2b7c-4e8a-9d41-3a0c8e5b7f21"  # host -> device
TX_UUID = "5f6d0003-2b7c-4e8a-9d41-3a0c8e5b7f21"  # device -> host
DEFAULT_NAME = "readerhost-emu"
ADVERTISING_INTERVAL_MS = 20  # bumble's default (about 1 s) makes every scan in a test take seconds
LEGACY_ADVERTISING_BYTES = 31
SERVE_END_TIMEOUT_S = 5.0  # how long close() waits for serve() to notice the link is gone


class LinkServer(Protocol):
    """What the peripheral serves each connection with: ReaderDevice's `serve`."""

    async def serve(
        self, receive: Callable[[], Awaitable[bytes]], send: Callable[[bytes], Awaitable[None]]
    ) -> None: ...


def advertising_payloads(name: str) -> tuple[bytes, bytes]:
    """Advertising data and scan response for `name`, within legacy advertising's 31 bytes each.

    The service UUID always goes in the advertising data (hosts scan for it); the name goes there
    too when it fits, else the advertising data carries as much of it as fits (a shortened name)
    and the scan response the whole name (shortened too past 29 bytes), as real peripherals do.
    """
    head = [
        data_types.Flags(
            AdvertisingData.Flags.LE_GENERAL_DISCOVERABLE_MODE | AdvertisingData.Flags.BR_EDR_NOT_SUPPORTED
        ),
        data_types.CompleteListOf128BitServiceUUIDs([UUID(LINK_SERVICE_UUID)]),
    ]
    room = LEGACY_ADVERTISING_BYTES - len(bytes(AdvertisingData(head)))
    advertising = bytes(AdvertisingData([*head, _name_field(name, room)]))
    if len(name.encode()) + 2 <= room:
        return advertising, b""
    return advertising, bytes(AdvertisingData([_name_field(name, LEGACY_ADVERTISING_BYTES)]))


def _name_field(name: str, room: int) -> data_types.CompleteLocalName | data_types.ShortenedLocalName:
    """The name in `room` bytes (2 of them the field's length and type): complete, or shortened."""
    encoded = name.encode()
    if len(encoded) + 2 <= room:
        return data_types.CompleteLocalName(name)
    return data_types.ShortenedLocalName(encoded[: room - 2].decode(errors="ignore"))


class _Session:
    """One connection: the bytes written to RX, in order, and whether the central is still there."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.connected = True
        self.received: asyncio.Queue[bytes] = asyncio.Queue()

    def lost(self) -> None:
        self.connected = False
        self.received.put_nowait(b"")

    async def receive(self) -> bytes:
        if not self.connected and self.received.empty():
            return b""
        return await self.received.get()


class ReaderPeripheral:
    """The link service on `device`, serving one connection at a time with `server`."""

    def __init__(
        self, device: Device, server: LinkServer, *, name: str = DEFAULT_NAME, require_encryption: bool = False
    ) -> None:
        self.device = device
        self.server = server
        self.name = name
        self.require_encryption = require_encryption
        permissions = Characteristic.Permissions.WRITEABLE
        if require_encryption:
            permissions |= Characteristic.Permissions.WRITE_REQUIRES_ENCRYPTION
        self._rx: Characteristic[bytes] = Characteristic(
            RX_UUID,
            Characteristic.Properties.WRITE | Characteristic.Properties.WRITE_WITHOUT_RESPONSE,
            permissions,
            CharacteristicValue(write=self._on_rx_write),
        )
        self._tx: Characteristic[bytes] = Characteristic(
            TX_UUID, Characteristic.Properties.NOTIFY, Characteristic.Permissions.READABLE, b""
        )
        self._session: _Session | None = None
        self._task: asyncio.Task[None] | None = None
        self._refusals: set[asyncio.Task[None]] = set()
        self._closing = False
        self._unplugged = False  # gone dark by `unplug`: not advertising, refusing centrals
        self._idle = asyncio.Event()
        self._connected = asyncio.Event()
        self.connections = 0  # connections served so far
        self.refused_writes = 0  # writes to RX over an unencrypted link, with require_encryption

    @property
    def address(self) -> str:
        """The address a host connects to, as bleak spells it."""
        return str(self.device.random_address.to_string(False))

    @property
    def connected(self) -> bool:
        return self._session is not None and self._session.connected

    @property
    def plugged(self) -> bool:
        """False between `unplug` and `plug`."""
        return not self._unplugged

    async def start(self) -> None:
        self.device.add_service(Service(LINK_SERVICE_UUID, [self._rx, self._tx]))
        self.device.on(Device.EVENT_CONNECTION, self._on_connection)
        await self._advertise()

    async def _advertise(self) -> None:
        advertising, scan_response = advertising_payloads(self.name)
        await self.device.start_advertising(
            advertising_data=advertising,
            scan_response_data=scan_response,
            advertising_interval_min=ADVERTISING_INTERVAL_MS,
            advertising_interval_max=ADVERTISING_INTERVAL_MS,
        )
        self._idle.set()

    async def wait_connected(self, timeout: float = 5.0) -> None:
        """Until a central is connected and being served."""
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def wait_idle(self, timeout: float = 5.0) -> None:
        """Until no connection is being served and the peripheral advertises again."""
        await asyncio.wait_for(self._idle.wait(), timeout)

    async def disconnect(self) -> None:
        """Disconnect the central now (the host sees a remote disconnect); no-op when idle."""
        session = self._session
        if session is not None and session.connected:
            await _disconnect(session.connection)

    async def unplug(self) -> None:
        """Vanish, as a reader switched off: stop advertising, disconnect the central (a remote
        disconnect), refuse connections until `plug`. RuntimeError when already unplugged."""
        if self._unplugged:
            raise RuntimeError("not plugged in")
        self._unplugged = True
        await self._go_quiet()
        if self.device.is_advertising:  # a serve that ended just before may have advertised again
            await self.device.stop_advertising()

    async def plug(self) -> None:
        """Advertise and accept a central again after `unplug`; RuntimeError when plugged in."""
        if not self._unplugged:
            raise RuntimeError("already plugged in")
        self._unplugged = False
        await self._advertise()

    async def close(self) -> None:
        """Stop advertising, end the connection and its `serve`."""
        self._closing = True
        self.device.remove_listener(Device.EVENT_CONNECTION, self._on_connection)
        await self._go_quiet()

    async def _go_quiet(self) -> None:
        """Stop advertising, disconnect the central and wait for its `serve` to end."""
        if self.device.is_advertising:
            await self.device.stop_advertising()
        await self.disconnect()
        task = self._task
        if task is not None and not task.done():
            try:
                await asyncio.wait_for(asyncio.shield(task), SERVE_END_TIMEOUT_S)
            except TimeoutError:
                log.warning("serve() did not return after the link closed; canceling it")
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    # -- connections ---------------------------------------------------------------------------

    def _on_connection(self, connection: Connection) -> None:
        if self._session is not None or self._closing or self._unplugged:
            log.info("refusing central %s: one connection at a time, none while unplugged", connection.peer_address)
            refusal = asyncio.get_running_loop().create_task(_disconnect(connection))
            self._refusals.add(refusal)  # the loop keeps only a weak reference to tasks
            refusal.add_done_callback(self._refusals.discard)
            return
        session = _Session(connection)
        self._session = session
        self._idle.clear()
        self._connected.set()
        self.connections += 1
        connection.once(Connection.EVENT_DISCONNECTION, lambda _reason: session.lost())
        self._task = asyncio.get_running_loop().create_task(self._serve(session))

    def _on_rx_write(self, connection: Connection, value: bytes) -> None:
        session = self._session
        if self.require_encryption and not connection.is_encrypted:
            self.refused_writes += 1  # bumble checks the permission too; a write command gets no error back
            return
        if session is not None and session.connection is connection and session.connected:
            session.received.put_nowait(bytes(value))

    async def _serve(self, session: _Session) -> None:
        async def send(data: bytes) -> None:
            await self._notify(session, data)

        try:
            await self.server.serve(session.receive, send)
        except Exception:
            log.exception("the reader device failed while serving a connection")
        finally:
            if session.connected:
                await _disconnect(session.connection)  # the device dropped the link
            self._session = None
            self._connected.clear()
            if not (self._closing or self._unplugged):
                await self._advertise()

    async def _notify(self, session: _Session, data: bytes) -> None:
        """Notify `data` on TX in pieces of at most ATT_MTU - 3 bytes, in order. Bytes sent after
        the central has gone are dropped, as a radio would; `receive` tells the device."""
        offset = 0
        while offset < len(data) and session.connected:
            size = session.connection.att_mtu - 3  # read per piece: an MTU exchange may land mid-frame
            await self.device.notify_subscriber(session.connection, self._tx, data[offset : offset + size])
            offset += size


async def _disconnect(connection: Connection) -> None:
    try:
        await connection.disconnect()
    except Exception as error:  # the central may have gone first: the handle is no longer valid
        log.debug("disconnect: %r", error)


@contextlib.asynccontextmanager
async def peripheral_on(
    radio: VirtualRadio,
    server: LinkServer,
    *,
    name: str = DEFAULT_NAME,
    address: str | None = None,
    require_encryption: bool = False,
) -> AsyncIterator[ReaderPeripheral]:
    """A started `ReaderPeripheral` serving `server` on its own controller of `radio`."""
    device = await radio.add_device(name, address)
    peripheral = ReaderPeripheral(device, server, name=name, require_encryption=require_encryption)
    await peripheral.start()
    try:
        yield peripheral
    finally:
        await peripheral.close()
