"""The reader emulator's GATT peripheral (readerhost.sim.reader_device.ble), seen from bleak on the
virtual radio: MTU-sized pieces, remote disconnects, one connection at a time, and ReaderDevice
speaking the link protocol through it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest
from bleak import BleakClient
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.exc import BleakDeviceNotFoundError
from support.ble_host import BleHost

from readerhost.drivers.reader.link.codec import MessageType
from readerhost.sim.ble_radio import VirtualRadio
from readerhost.sim.reader_device.ble import RX_UUID, TX_UUID, advertising_payloads, peripheral_on
from readerhost.sim.reader_device.device import ReaderDevice

WAIT_S = 5.0
Receive = Callable[[], Awaitable[bytes]]
Send = Callable[[bytes], Awaitable[None]]


def run(coroutine: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coroutine, 30))


class Pieces:
    """Each TX notification, as it arrived."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def __call__(self, _sender: BleakGATTCharacteristic, data: bytearray) -> None:
        self.queue.put_nowait(bytes(data))

    async def take_bytes(self, size: int) -> list[bytes]:
        pieces: list[bytes] = []
        while sum(map(len, pieces)) < size:
            pieces.append(await asyncio.wait_for(self.queue.get(), WAIT_S))
        return pieces


class SendsOnRequest:
    """A stand-in for ReaderDevice: answers each write with `reply` in one send()."""

    def __init__(self, reply: bytes) -> None:
        self.reply = reply
        self.ended = asyncio.Event()

    async def serve(self, receive: Receive, send: Send) -> None:
        while await receive():
            await send(self.reply)
        self.ended.set()


class Streams:
    """A stand-in for ReaderDevice: after the first write, sends 1 KB chunks until the link closes."""

    def __init__(self) -> None:
        self.sends_after_close = 0
        self.ended = asyncio.Event()

    async def serve(self, receive: Receive, send: Send) -> None:
        await receive()
        closed = asyncio.ensure_future(receive())
        while not closed.done():
            await send(bytes(1000))
            await asyncio.sleep(0)  # let the link deliver: a device's loop yields between frames
        assert closed.result() == b""
        await send(b"after close")  # dropped by the peripheral, never raises
        self.ended.set()


def test_advertising_fits_legacy_advertising() -> None:
    for name in ("rh", "rh-emu", "readerhost-emu", "a reader with a very long name indeed"):
        advertising, scan_response = advertising_payloads(name)
        assert len(advertising) <= 31
        assert len(scan_response) <= 31


def test_a_send_longer_than_the_mtu_arrives_whole_in_pieces_of_mtu_minus_3() -> None:
    reply = bytes(range(256)) * 4  # 1,024 bytes: five pieces at MTU 247

    async def scenario() -> None:
        async with VirtualRadio() as radio, peripheral_on(radio, SendsOnRequest(reply)) as peripheral:
            client_backend, _scanner = radio.bleak_backends()
            async with BleakClient(peripheral.address, backend=client_backend) as client:
                pieces = Pieces()
                await client.start_notify(TX_UUID, pieces)
                await client.write_gatt_char(RX_UUID, b"go", response=False)
                received = await pieces.take_bytes(len(reply))
                assert [len(piece) for piece in received] == [244, 244, 244, 244, 48]
                assert b"".join(received) == reply

    run(scenario())


def test_remote_disconnect_mid_stream_ends_serve_and_the_peripheral_advertises_again() -> None:
    async def scenario() -> None:
        streams = Streams()
        async with VirtualRadio() as radio, peripheral_on(radio, streams) as peripheral:
            client_backend, _scanner = radio.bleak_backends()
            disconnected = asyncio.Event()
            client = BleakClient(
                peripheral.address, disconnected_callback=lambda _c: disconnected.set(), backend=client_backend
            )
            await client.connect()
            pieces = Pieces()
            await client.start_notify(TX_UUID, pieces)
            await client.write_gatt_char(RX_UUID, b"go", response=False)
            await pieces.take_bytes(5000)  # well into the stream

            await peripheral.disconnect()
            await asyncio.wait_for(disconnected.wait(), WAIT_S)
            await asyncio.wait_for(streams.ended.wait(), WAIT_S)
            await peripheral.wait_idle()
            assert not peripheral.connected

            await client.connect()  # advertising again: found by address, served afresh
            assert peripheral.connections == 2

    run(scenario())


def test_a_second_central_cannot_connect_while_one_is_served() -> None:
    # The peripheral stops advertising while it serves a connection, so it cannot be found.
    async def scenario() -> None:
        async with VirtualRadio() as radio, peripheral_on(radio, SendsOnRequest(b"")) as peripheral:
            client_backend, _scanner = radio.bleak_backends()
            async with BleakClient(peripheral.address, backend=client_backend):
                await peripheral.wait_connected()
                with pytest.raises(BleakDeviceNotFoundError):
                    await BleakClient(peripheral.address, backend=client_backend, timeout=0.3).connect()
            await peripheral.wait_idle()
            assert peripheral.connections == 1

    run(scenario())


def test_hello_welcome_with_reader_device_through_bleak_and_the_codec() -> None:
    async def scenario() -> None:
        device = ReaderDevice()
        async with VirtualRadio() as radio, peripheral_on(radio, device) as peripheral:
            client_backend, _scanner = radio.bleak_backends()
            async with BleakClient(peripheral.address, backend=client_backend) as client:
                host = BleHost(client)
                await host.start()
                welcome = await host.hello()
                assert welcome.seq == 0
                assert welcome.body["version"] == 1
                assert device.serving

    run(scenario())


def test_drop_link_is_a_remote_disconnect_and_three_sessions_follow_in_a_row() -> None:
    async def scenario() -> None:
        device = ReaderDevice()
        async with VirtualRadio() as radio, peripheral_on(radio, device) as peripheral:
            client_backend, _scanner = radio.bleak_backends()
            disconnected = asyncio.Event()
            client = BleakClient(
                peripheral.address, disconnected_callback=lambda _c: disconnected.set(), backend=client_backend
            )
            for _session in range(3):
                disconnected.clear()
                await client.connect()
                host = BleHost(client)
                await host.start()
                assert (await host.hello()).type is MessageType.WELCOME
                device.drop_link()
                await asyncio.wait_for(disconnected.wait(), WAIT_S)
                assert not client.is_connected
                await peripheral.wait_idle()
            assert peripheral.connections == 3

    run(scenario())
