"""A reader link transport in memory: the host's LinkReader on one end, the device emulator's
ReaderDevice on the other, joined by two queues. Fast tests of the protocol's rules; the serial
and BLE tests cross real ptys and a real (virtual) radio."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from readerhost.drivers.reader.link.transport import LinkLost, LinkUnavailable
from readerhost.sim.reader_device.device import ReaderDevice


class PipeTransport:
    def __init__(self, device: ReaderDevice) -> None:
        self.device = device
        self.plugged_in = True
        self.attempts = 0
        self.connection: PipeConnection | None = None
        self.connected = asyncio.Event()  # set at each new connection
        self.attempted = asyncio.Event()  # set at each attempt, failed or not

    def describe(self) -> dict[str, Any]:
        return {"transport": "pipe", "device": "memory"}

    async def connect(self) -> PipeConnection:
        self.attempts += 1
        self.attempted.set()
        if not self.plugged_in:
            raise LinkUnavailable("unplugged")
        self.connection = PipeConnection(self.device)
        self.connected.set()
        return self.connection

    def unplug(self) -> None:
        """The device goes away: the link drops and new connections fail until plug_in()."""
        self.plugged_in = False
        if self.connection is not None:
            self.connection.cut()

    def plug_in(self) -> None:
        self.plugged_in = True


class PipeConnection:
    def __init__(self, device: ReaderDevice) -> None:
        self._to_host: asyncio.Queue[bytes] = asyncio.Queue()
        self._to_device: asyncio.Queue[bytes] = asyncio.Queue()
        self._serving = asyncio.create_task(device.serve(self._to_device.get, self._to_host_put))
        self._serving.add_done_callback(lambda _task: self._to_host.put_nowait(b""))

    async def _to_host_put(self, data: bytes) -> None:
        self._to_host.put_nowait(data)

    def cut(self) -> None:
        self._to_device.put_nowait(b"")

    async def read(self) -> bytes:
        data = await self._to_host.get()
        if not data:
            self._to_host.put_nowait(b"")
            raise LinkLost("the pipe closed")
        return data

    async def write(self, data: bytes) -> None:
        if self._serving.done():
            raise LinkLost("the pipe closed")
        self._to_device.put_nowait(data)

    async def close(self) -> None:
        self.cut()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(self._serving, 2.0)
