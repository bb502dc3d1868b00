"""bleak, through its public API, on the bumble-backed virtual radio (readerhost.sim.ble_radio).

The peripheral is the reader emulator's (sim/reader_device/ble.py) serving an echo stand-in, so
these tests hold the backend to what bleak's BlueZ backend does, not to the device's protocol.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.exc import BleakDeviceNotFoundError, BleakError

from readerhost.sim.ble_radio import BumbleBleakClient, BumbleBleakScanner, VirtualRadio
from readerhost.sim.reader_device.ble import LINK_SERVICE_UUID, RX_UUID, TX_UUID, peripheral_on

WAIT_S = 5.0


def run(coroutine: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coroutine, 30))


class Echo:
    """A stand-in for ReaderDevice: sends back what it receives, and counts its sessions."""

    def __init__(self) -> None:
        self.sessions = 0

    async def serve(self, receive: Callable[[], Awaitable[bytes]], send: Callable[[bytes], Awaitable[None]]) -> None:
        self.sessions += 1
        while data := await receive():
            await send(data)


class Notifications:
    """Collects TX notifications; `take(n)` waits for n bytes."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._buffer = b""

    def __call__(self, _sender: BleakGATTCharacteristic, data: bytearray) -> None:
        self._queue.put_nowait(bytes(data))

    async def take(self, size: int) -> bytes:
        while len(self._buffer) < size:
            self._buffer += await asyncio.wait_for(self._queue.get(), WAIT_S)
        taken, self._buffer = self._buffer[:size], self._buffer[size:]
        return taken


def advertises_link(_device: Any, advertisement: Any) -> bool:
    return LINK_SERVICE_UUID in advertisement.service_uuids


def test_scan_by_service_uuid_finds_the_peripheral_and_its_advertisement() -> None:
    async def scenario() -> None:
        async with VirtualRadio() as radio, peripheral_on(radio, Echo(), name="rh-emu") as peripheral:
            _client, scanner = radio.bleak_backends()
            found = await BleakScanner.find_device_by_filter(advertises_link, timeout=WAIT_S, backend=scanner)
            assert found is not None
            assert found.address == peripheral.address
            assert found.name == "rh-emu"

            seen = await BleakScanner.discover(0.2, return_adv=True, service_uuids=[LINK_SERVICE_UUID], backend=scanner)
            _device, advertisement = seen[peripheral.address]
            assert advertisement.local_name == "rh-emu"
            assert advertisement.service_uuids == [LINK_SERVICE_UUID]
            elsewhere = ["0000180d-0000-1000-8000-00805f9b34fb"]  # heart rate: not advertised
            assert await BleakScanner.discover(0.2, service_uuids=elsewhere, backend=scanner) == []

    run(scenario())


def test_a_long_name_is_shortened_in_the_advertisement() -> None:
    # Flags, the 128-bit UUID and "readerhost-emu" take 37 bytes of legacy advertising's 31: the whole
    # name goes in the scan response, which bumble's virtual controller never sends.
    async def scenario() -> None:
        async with VirtualRadio() as radio, peripheral_on(radio, Echo()):
            _client, scanner = radio.bleak_backends()
            found = await BleakScanner.find_device_by_filter(advertises_link, timeout=WAIT_S, backend=scanner)
            assert found is not None
            assert found.name == "readerho"

    run(scenario())


def test_connect_discover_mtu_notify_and_write_both_ways() -> None:
    async def scenario() -> None:
        async with VirtualRadio() as radio, peripheral_on(radio, Echo()):
            client_backend, scanner = radio.bleak_backends()
            found = await BleakScanner.find_device_by_filter(advertises_link, timeout=WAIT_S, backend=scanner)
            assert found is not None
            async with BleakClient(found, backend=client_backend, timeout=WAIT_S) as client:
                assert client.is_connected
                assert client.mtu_size == 247
                service = client.services.get_service(LINK_SERVICE_UUID)
                assert service is not None
                rx, tx = service.get_characteristic(RX_UUID), service.get_characteristic(TX_UUID)
                assert rx is not None
                assert tx is not None
                assert sorted(rx.properties) == ["write", "write-without-response"]
                assert tx.properties == ["notify"]
                assert [d.uuid for d in tx.descriptors] == ["00002902-0000-1000-8000-00805f9b34fb"]
                assert rx.max_write_without_response_size == 244

                received = Notifications()
                await client.start_notify(TX_UUID, received)
                await client.write_gatt_char(RX_UUID, b"without response", response=False)
                assert await received.take(16) == b"without response"
                await client.write_gatt_char(rx, b"with response", response=True)
                assert await received.take(13) == b"with response"
                piece = bytes(range(244))
                await client.write_gatt_char(RX_UUID, piece, response=False)
                assert await received.take(244) == piece
            assert not client.is_connected

    run(scenario())


def test_remote_disconnect_calls_the_callback_and_later_io_raises() -> None:
    async def scenario() -> None:
        async with VirtualRadio() as radio, peripheral_on(radio, Echo()) as peripheral:
            client_backend, _scanner = radio.bleak_backends()
            disconnected = asyncio.Event()
            calls: list[BleakClient] = []

            def on_disconnect(client: BleakClient) -> None:
                calls.append(client)
                disconnected.set()

            client = BleakClient(peripheral.address, disconnected_callback=on_disconnect, backend=client_backend)
            await client.connect()
            await client.start_notify(TX_UUID, Notifications())
            await peripheral.disconnect()
            await asyncio.wait_for(disconnected.wait(), WAIT_S)
            assert calls == [client]
            assert not client.is_connected
            with pytest.raises(BleakError):
                await client.write_gatt_char(RX_UUID, b"late", response=False)
            with pytest.raises(BleakError):
                await client.start_notify(TX_UUID, Notifications())
            await client.disconnect()  # after a remote disconnect: nothing to do, no second callback
            assert calls == [client]

    run(scenario())


def test_local_disconnect_calls_the_callback_too_as_on_bluez() -> None:
    async def scenario() -> None:
        async with VirtualRadio() as radio, peripheral_on(radio, Echo()) as peripheral:
            client_backend, _scanner = radio.bleak_backends()
            calls: list[BleakClient] = []
            client = BleakClient(peripheral.address, disconnected_callback=calls.append, backend=client_backend)
            await client.connect()
            await client.disconnect()
            assert calls == [client]
            assert not client.is_connected
            await client.disconnect()
            assert calls == [client]
            await peripheral.wait_idle()

    run(scenario())


def test_connecting_to_an_absent_address_raises_device_not_found() -> None:
    async def scenario() -> None:
        async with VirtualRadio() as radio:
            client_backend, _scanner = radio.bleak_backends()
            client = BleakClient("C0:DE:00:00:0F:FF", backend=client_backend, timeout=0.3)
            with pytest.raises(BleakDeviceNotFoundError):
                await client.connect()
            assert not client.is_connected

    run(scenario())


def test_a_connect_that_times_out_leaves_the_adapter_able_to_connect_again() -> None:
    # A device seen once, then gone: bumble's controller would wait for it forever.
    async def scenario() -> None:
        async with VirtualRadio() as radio:
            client_backend, scanner = radio.bleak_backends()
            async with peripheral_on(radio, Echo()):
                gone = await BleakScanner.find_device_by_filter(advertises_link, timeout=WAIT_S, backend=scanner)
            assert gone is not None
            with pytest.raises(TimeoutError):
                await BleakClient(gone, backend=client_backend, timeout=0.3).connect()

            async with (
                peripheral_on(radio, Echo()) as peripheral,
                BleakClient(peripheral.address, backend=client_backend, timeout=WAIT_S) as client,
            ):
                assert client.is_connected

    run(scenario())


def test_three_connect_disconnect_cycles_in_a_row() -> None:
    async def scenario() -> None:
        echo = Echo()
        async with VirtualRadio() as radio, peripheral_on(radio, echo) as peripheral:
            client_backend, _scanner = radio.bleak_backends()
            calls: list[BleakClient] = []
            client = BleakClient(peripheral.address, disconnected_callback=calls.append, backend=client_backend)
            for cycle in range(3):
                await client.connect()
                received = Notifications()
                await client.start_notify(TX_UUID, received)
                await client.write_gatt_char(RX_UUID, b"cycle %d" % cycle, response=False)
                assert await received.take(7) == b"cycle %d" % cycle
                await client.disconnect()
                await peripheral.wait_idle()
            assert len(calls) == 3
            assert echo.sessions == 3

    run(scenario())


def test_backends_take_the_radio_as_a_keyword_argument_too() -> None:
    async def scenario() -> None:
        async with VirtualRadio() as radio, peripheral_on(radio, Echo()) as peripheral:
            found = await BleakScanner.find_device_by_filter(
                advertises_link,
                timeout=WAIT_S,
                backend=BumbleBleakScanner,
                radio=radio,  # type: ignore[call-arg]  # not in bleak's ExtraArgs, yet forwarded to the backend
            )
            assert found is not None
            async with BleakClient(found, backend=BumbleBleakClient, radio=radio) as client:
                assert client.address == peripheral.address

    run(scenario())


def test_a_backend_without_a_radio_says_so() -> None:
    with pytest.raises(TypeError, match="needs a radio"):
        BleakClient("C0:DE:00:00:00:01", backend=BumbleBleakClient)
