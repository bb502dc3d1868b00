"""The reader link over a serial line, with pyserial: a USB CDC-ACM reader, a USB-serial bridge
or a UART. pyserial opens, locks (exclusive) and configures the port; the event loop watches
its file descriptor, so no thread and no polling. Unplugging shows as a failed read."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from readerhost.drivers.settings import FilePath, Int, Missing, Section, setting

from .base import ReaderContext
from .link import CAPABILITIES as LINK_CAPABILITIES
from .link import LinkProtocolSettings
from .link.transport import LinkLost, LinkUnavailable

if TYPE_CHECKING:
    from .link.reader import LinkReader

READ_SIZE = 4096


@dataclass(frozen=True)
class SerialSettings(LinkProtocolSettings):
    device: str = setting("", FilePath())  # required, e.g. /dev/serial/by-id/usb-...
    baudrate: int = setting(115_200, Int(50, 4_000_000))


def _needs_a_device(settings: SerialSettings) -> Missing | None:
    if settings.device:
        return None
    return Missing(
        "device",
        'the serial reader needs its device, e.g. device = "/dev/serial/by-id/usb-..." '
        "(ls /dev/serial/by-id/ lists them)",
    )


SETTINGS = Section("reader.serial", SerialSettings, required=_needs_a_device)
CAPABILITIES = LINK_CAPABILITIES


def open_reader(settings: SerialSettings, context: ReaderContext) -> LinkReader:
    from .link.reader import open_link_reader

    return open_link_reader(SerialTransport(settings.device, settings.baudrate), context, settings)


# Why an open failed, in a technician's words (pyserial keeps the OS's errno).
_OPEN_ERRORS = {
    errno.ENOENT: "no such device (unplugged?)",
    errno.ENXIO: "no such device (unplugged?)",
    errno.ENODEV: "no such device (unplugged?)",
    errno.EAGAIN: "in use by another process",
    errno.EBUSY: "in use by another process",
    errno.EACCES: "permission denied (is the user in group dialout?)",
    errno.EPERM: "permission denied (is the user in group dialout?)",
}


class SerialTransport:
    def __init__(self, device: str, baudrate: int = 115200) -> None:
        self.device = device
        self.baudrate = baudrate

    def describe(self) -> dict[str, Any]:
        return {"transport": "serial", "device": self.device}

    async def connect(self) -> SerialConnection:
        import serial  # only a daemon configured for a serial reader loads pyserial

        try:
            port = serial.Serial(self.device, self.baudrate, timeout=0, exclusive=True)
        except serial.SerialException as error:
            reason = _OPEN_ERRORS.get(error.errno or 0) or _open_failure(error)
            raise LinkUnavailable(f"cannot open {self.device}: {reason}") from None
        except (OSError, ValueError) as error:
            raise LinkUnavailable(f"cannot open {self.device}: {error}") from None
        return SerialConnection(port, asyncio.get_running_loop())


def _open_failure(error: Exception) -> str:
    text = str(error)
    if "exclusively lock" in text:
        return "in use by another process"
    return text


class SerialConnection:
    def __init__(self, port: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._port = port
        self._fd: int = port.fileno()
        self._loop = loop
        self._incoming: asyncio.Queue[bytes | LinkLost] = asyncio.Queue()
        self._closed = False
        loop.add_reader(self._fd, self._readable)

    def _readable(self) -> None:
        import serial

        try:
            data = self._port.read(READ_SIZE)
        except (serial.SerialException, OSError) as error:
            self._loop.remove_reader(self._fd)
            self._incoming.put_nowait(LinkLost(f"the serial port failed: {_short(error)}"))
            return
        if data:
            self._incoming.put_nowait(data)

    async def read(self) -> bytes:
        item = await self._incoming.get()
        if isinstance(item, LinkLost):
            self._incoming.put_nowait(item)  # every later read fails the same way
            raise item
        return item

    async def write(self, data: bytes) -> None:
        # Written on pyserial's (non-blocking) descriptor directly: pyserial's own write spins on
        # EAGAIN when its write timeout is 0, and blocks the event loop otherwise.
        view = memoryview(data)
        while view:
            if self._closed:
                raise LinkLost("the serial port is closed")
            try:
                written = os.write(self._fd, view)
            except BlockingIOError:
                await self._writable()
                continue
            except OSError as error:
                raise LinkLost(f"the serial port failed: {_short(error)}") from None
            view = view[written:]

    async def _writable(self) -> None:
        ready: asyncio.Future[None] = self._loop.create_future()

        def writable() -> None:
            if not ready.done():
                ready.set_result(None)

        self._loop.add_writer(self._fd, writable)
        try:
            await ready
        finally:
            self._loop.remove_writer(self._fd)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self._fd)
        with contextlib.suppress(Exception):
            self._port.close()


def _short(error: Exception) -> str:
    """An unplugged device shows as EIO, or as readable with no data (pyserial's words): say so plainly."""
    text = str(error)
    if "returned no data" in text or getattr(error, "errno", None) == errno.EIO or "[Errno 5]" in text:
        return "the device disconnected (unplugged?)"
    return text
