"""A minimal host of the reader link over bleak, for tests of the BLE peripheral: frames out as
writes without response (cut to the write size), frames in from TX notifications through the codec;
every device message is acknowledged as it is taken."""

from __future__ import annotations

import asyncio
from typing import Any

from bleak import BleakClient
from bleak.backends.characteristic import BleakGATTCharacteristic

from readerhost.drivers.reader.link.codec import FrameDecoder, LinkCodecError, Message, MessageType, encode
from readerhost.sim.reader_device.ble import RX_UUID, TX_UUID

WAIT_S = 5.0


class BleHost:
    def __init__(self, client: BleakClient) -> None:
        self.client = client
        self.decoder = FrameDecoder()
        self.messages: asyncio.Queue[Message] = asyncio.Queue()
        self.seq = 0

    async def start(self) -> None:
        await self.client.start_notify(TX_UUID, self._on_notification)

    def _on_notification(self, _sender: BleakGATTCharacteristic, data: bytearray) -> None:
        for item in self.decoder.feed(bytes(data)):
            assert not isinstance(item, LinkCodecError), item
            self.messages.put_nowait(item)

    async def send(self, kind: MessageType, body: dict[str, Any]) -> None:
        self.seq = 0 if kind is MessageType.HELLO else self.seq + 1
        await self._write(encode(Message(kind, self.seq, body)))

    async def _write(self, frame: bytes) -> None:
        rx = self.client.services.get_characteristic(RX_UUID)
        assert rx is not None
        size = rx.max_write_without_response_size
        for offset in range(0, len(frame), size):
            await self.client.write_gatt_char(rx, frame[offset : offset + size], response=False)

    async def until(self, kind: MessageType) -> Message:
        """Device messages up to the first of `kind`, each acknowledged; that one."""
        while True:
            message = await asyncio.wait_for(self.messages.get(), WAIT_S)
            if message.type is MessageType.ACK:
                continue
            await self._write(encode(Message(MessageType.ACK, 0, {"ack": message.seq})))
            if message.type is kind:
                return message

    async def hello(self) -> Message:
        await self.send(MessageType.HELLO, {"versions": [1]})
        return await self.until(MessageType.WELCOME)
