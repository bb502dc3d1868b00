"""The virtual radio: one bumble `LocalLink`, a controller and a bumble `Device` per node on it."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from bumble.controller import Controller
from bumble.device import Device
from bumble.hci import Address
from bumble.host import Host
from bumble.keys import JsonKeyStore
from bumble.link import LocalLink
from bumble.pairing import PairingConfig, PairingDelegate
from bumble.transport.common import AsyncPipeSink, Transport
from bumble.transport.tcp_server import open_tcp_server_transport_with_socket

if TYPE_CHECKING:
    from .client import BumbleBleakClient
    from .scanner import BumbleBleakScanner


@dataclass(frozen=True)
class _Node:
    controller: Controller
    device: Device


ADAPTER_ADDRESS = "C0:DE:00:00:FF:01"  # the same after `restart_adapter`, as a Pi's adapter keeps its address


def pairing_config(_connection: object = None) -> PairingConfig:
    """LE Secure Connections with bonding, Just Works (neither side has a display or keyboard): what
    BlueZ does for `Device1.Pair` with no agent, and what the reader emulator accepts."""
    return PairingConfig(
        sc=True, mitm=False, bonding=True, delegate=PairingDelegate(PairingDelegate.IoCapability.NO_OUTPUT_NO_INPUT)
    )


class VirtualRadio:
    """Bumble's virtual controllers joined by one link; use as `async with VirtualRadio() as radio`.

    Nodes are powered-on bumble `Device`s (`add_device`); the bleak backends share one of them, the
    `adapter`, as bleak shares the host's adapter. Leaving the context powers every node off.
    The adapter keeps its bonds in `keystore` (a JSON file, as BlueZ keeps them in
    /var/lib/bluetooth), or in memory when none is given.
    """

    def __init__(self, keystore: Path | None = None) -> None:
        self.keystore = keystore
        self._link: LocalLink | None = None
        self._nodes: list[_Node] = []
        self._exposed: list[tuple[Controller, Transport]] = []
        self._adapter: Device | None = None
        self._adapter_lock = asyncio.Lock()
        # The adapter makes one connection attempt at a time, as bumble allows.
        self.connect_lock = asyncio.Lock()
        self._scanners = 0
        self._addresses = 0

    async def __aenter__(self) -> VirtualRadio:
        self._link = LocalLink()  # type: ignore[no-untyped-call]  # bumble leaves its __init__ unannotated
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def new_address(self) -> str:
        """A fresh random static address (the two top bits set, as the core spec requires)."""
        self._addresses += 1
        return f"C0:DE:00:00:{self._addresses >> 8:02X}:{self._addresses & 0xFF:02X}"

    async def add_device(self, name: str, address: str | None = None) -> Device:
        """A powered-on bumble Device with its own controller on this radio."""
        if self._link is None:
            raise RuntimeError("the radio is not open: use `async with VirtualRadio() as radio`")
        controller = Controller(name, link=self._link)
        device = Device(
            name=name, address=Address(address or self.new_address()), host=Host(controller, AsyncPipeSink(controller))
        )
        self._nodes.append(_Node(controller, device))
        await device.power_on()
        return device

    async def expose_controller(self, name: str) -> str:
        """A controller on this radio whose host is elsewhere: another process connects to the
        returned bumble transport spec (`tcp-client:127.0.0.1:PORT`) and drives it over HCI, as a
        host drives a USB dongle. The port is the system's choice, so tests never collide."""
        if self._link is None:
            raise RuntimeError("the radio is not open: use `async with VirtualRadio() as radio`")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            transport = await open_tcp_server_transport_with_socket(sock)
        except BaseException:
            sock.close()
            raise
        controller = Controller(name, host_source=transport.source, host_sink=transport.sink, link=self._link)
        self._exposed.append((controller, transport))
        return f"tcp-client:127.0.0.1:{port}"

    async def withdraw_controller(self, spec: str) -> None:
        """Take the controller `expose_controller` returned `spec` for off the air (its process
        gone), so that another may use its address."""
        port = int(spec.rsplit(":", 1)[1])
        for controller, transport in list(self._exposed):
            server: asyncio.Server | None = getattr(transport, "server", None)
            sockets = server.sockets if server is not None else ()
            if any(sock.getsockname()[1] == port for sock in sockets):
                self._exposed.remove((controller, transport))
                _stop_advertising(controller)
                await _close_tcp_server(transport)
                if self._link is not None and controller in self._link.controllers:
                    self._link.remove_controller(controller)
                return
        raise ValueError(f"no controller exposed at {spec}")

    async def adapter(self) -> Device:
        """The central that the bleak backends share, created on first use."""
        async with self._adapter_lock:
            if self._adapter is None:
                adapter = await self.add_device("bleak-adapter", ADAPTER_ADDRESS)
                if self.keystore is not None:
                    adapter.keystore = JsonKeyStore(ADAPTER_ADDRESS, str(self.keystore))
                adapter.pairing_config_factory = pairing_config
                self._adapter = adapter
            return self._adapter

    async def restart_adapter(self) -> None:
        """Power the adapter off and make it anew, as a host rebooting: what it knew in memory is
        gone, its bonds are what its keystore file kept."""
        async with self._adapter_lock:
            adapter, self._adapter = self._adapter, None
            if adapter is None:
                return
            for connection in list(adapter.connections.values()):  # the peers see the link drop
                await connection.disconnect()
            for node in [node for node in self._nodes if node.device is adapter]:
                self._nodes.remove(node)
                await _power_off(adapter)
                if self._link is not None and node.controller in self._link.controllers:
                    self._link.remove_controller(node.controller)
            self._scanners = 0

    async def bonded(self, address: str) -> bool:
        """Whether the adapter holds a bond (a long-term key) with the device at `address`."""
        adapter = await self.adapter()
        keys = None if adapter.keystore is None else await adapter.keystore.get(str(Address(address)))
        return keys is not None and (keys.ltk is not None or keys.ltk_central is not None)

    async def forget(self, address: str) -> None:
        """Remove the adapter's bond with `address` (BlueZ: RemoveDevice); none is no error."""
        adapter = await self.adapter()
        if adapter.keystore is not None and await adapter.keystore.get(str(Address(address))) is not None:
            await adapter.keystore.delete(str(Address(address)))

    async def start_scanning(self) -> Device:
        """Scan on the adapter; scanners share the scan, counted, as BlueZ shares discovery."""
        adapter = await self.adapter()
        self._scanners += 1
        if self._scanners == 1:
            await adapter.start_scanning(filter_duplicates=False)
        return adapter

    async def stop_scanning(self) -> None:
        self._scanners -= 1
        if self._scanners == 0 and self._adapter is not None and self._adapter.is_scanning:
            await self._adapter.stop_scanning()

    def forget_connection_attempt(self, device: Device) -> None:
        """Clear a connection attempt that was given up on.

        Bumble's virtual controller answers LE_Create_Connection_Cancel but never ends the attempt,
        so it would connect to the peer whenever it next advertises, and refuse any new attempt.
        """
        for node in self._nodes:
            if node.device is device:
                node.controller.pending_le_connection = None

    async def close(self) -> None:
        """Power every node off and leave the link; idempotent."""
        nodes, self._nodes = self._nodes, []
        for node in nodes:
            await _power_off(node.device)
            if self._link is not None and node.controller in self._link.controllers:
                self._link.remove_controller(node.controller)
        exposed, self._exposed = self._exposed, []
        for controller, transport in exposed:
            _stop_advertising(controller)  # its host may be gone without saying so
            await _close_tcp_server(transport)
            if self._link is not None and controller in self._link.controllers:
                self._link.remove_controller(controller)
        self._adapter = None
        self._scanners = 0

    def bleak_backends(self) -> tuple[type[BumbleBleakClient], type[BumbleBleakScanner]]:
        """bleak backend classes bound to this radio, for `BleakClient(..., backend=...)` and
        `BleakScanner(..., backend=...)` (bleak takes a class, so the radio rides on a subclass)."""
        from .client import BumbleBleakClient
        from .scanner import BumbleBleakScanner

        radio = self

        class Client(BumbleBleakClient):
            default_radio = radio

        class Scanner(BumbleBleakScanner):
            default_radio = radio

        return Client, Scanner


async def _power_off(device: Device) -> None:
    # Stop the controller's advertising timer first: it would keep firing into a closed link.
    if device.is_advertising:
        await device.stop_advertising()
    if device.is_scanning:
        await device.stop_scanning()
    await device.power_off()


async def _close_tcp_server(transport: Transport) -> None:
    """Close bumble's TCP server transport: its close() leaves the listening socket and the
    connection open, so close its asyncio server and the connection (the sink's) ourselves."""
    await transport.close()
    connection: asyncio.BaseTransport | None = getattr(transport.sink, "transport", None)
    if connection is not None:
        connection.close()
    server: asyncio.Server | None = getattr(transport, "server", None)
    if server is not None:
        server.close()
        await server.wait_closed()


def _stop_advertising(controller: Controller) -> None:
    """Stop a controller's advertising timers, which would keep firing into a closed link."""
    controller.le_legacy_advertiser.stop()
    for advertising_set in controller.advertising_sets.values():
        advertising_set.stop()
