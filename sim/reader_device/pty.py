"""The device on a pseudo-terminal, as a USB serial reader appears to the host: `PtyPort` is one
pty pair served with asyncio (non-blocking reads and writes on the master, no threads, no
polling); `PluggablePty` serves a ReaderDevice on it and can unplug it (the master closes: the
host's reads fail with EIO, pyserial's with SerialException) and plug in a fresh pair, keeping an
optional stable symlink (like /dev/serial/by-id/...) pointed at the current one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tty
from pathlib import Path
from typing import Any

from .device import ReaderDevice

logger = logging.getLogger("readerhost.reader_device")

READ_SIZE = 4096
WRITE_STALL_S = 1.0  # a serial line never blocks: bytes nobody reads are lost


class PtyPort:
    """One pty pair. The device end keeps the slave open too, so that the master never reports
    EIO while no host has the port open (between a host's close and its next open)."""

    def __init__(self) -> None:
        self._master, self._slave = os.openpty()
        try:
            tty.setraw(self._master)
            os.set_blocking(self._master, False)
            self.path = os.ttyname(self._slave)
        except BaseException:
            os.close(self._master)
            os.close(self._slave)
            raise
        self._closed = False
        self._waiter: asyncio.Future[None] | None = None
        self._truncated = False

    @property
    def closed(self) -> bool:
        return self._closed

    async def receive(self) -> bytes:
        """The next bytes from the host; b"" once the port is closed."""
        while not self._closed:
            try:
                return os.read(self._master, READ_SIZE)
            except BlockingIOError:
                await self._ready(writing=False)
            except OSError:
                return b""
        return b""

    async def send(self, data: bytes) -> None:
        """Write a whole frame; what the host does not take within WRITE_STALL_S is dropped, as on a wire."""
        if self._truncated:
            data = b"\x00" + data  # ends the half frame we left, so the host resynchronises here
            self._truncated = False
        view = memoryview(data)
        while view and not self._closed:
            try:
                view = view[os.write(self._master, view) :]
            except BlockingIOError:
                try:
                    async with asyncio.timeout(WRITE_STALL_S):
                        await self._ready(writing=True)
                except TimeoutError:
                    logger.info("the host is not reading: %d bytes dropped", len(view))
                    self._truncated = len(view) < len(data)
                    return
            except OSError:
                return

    async def _ready(self, *, writing: bool) -> None:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not waiter.done():
                waiter.set_result(None)

        add, remove = (loop.add_writer, loop.remove_writer) if writing else (loop.add_reader, loop.remove_reader)
        add(self._master, wake)
        self._waiter = waiter
        try:
            await waiter
        finally:
            if not self._closed:
                remove(self._master)
            self._waiter = None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        loop.remove_reader(self._master)
        loop.remove_writer(self._master)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        os.close(self._master)
        os.close(self._slave)


class PluggablePty:
    """A ReaderDevice on a pty that can be unplugged and plugged in again."""

    def __init__(self, device: ReaderDevice, link: Path | None = None) -> None:
        if link is not None and link.exists() and not link.is_symlink():  # a stale symlink is replaced
            raise FileExistsError(f"{link} exists and is not a symlink")
        self._device = device
        self._link = link
        self._port: PtyPort | None = None
        self._serving: asyncio.Task[None] | None = None

    @property
    def path(self) -> str | None:
        """The host end of the current pty, or None while unplugged."""
        return None if self._port is None else self._port.path

    @property
    def link(self) -> Path | None:
        return self._link

    def plug(self) -> str:
        """Open a fresh pty pair, point the link at it, serve the device on it; the host end's path."""
        if self._port is not None:
            raise RuntimeError("already plugged in")
        port = PtyPort()
        try:
            if self._link is not None:
                staging = self._link.with_name(f".{self._link.name}.{os.getpid()}")
                staging.unlink(missing_ok=True)
                staging.symlink_to(port.path)
                staging.replace(self._link)  # atomic: the name never points nowhere while plugged
        except BaseException:
            port.close()
            raise
        self._port = port
        self._serving = asyncio.get_running_loop().create_task(self._serve(port))
        return port.path

    async def unplug(self) -> None:
        """Close the master (the host sees the device vanish), remove the link, wait for the device to stop."""
        if self._port is None:
            raise RuntimeError("not plugged in")
        self._remove(self._port)
        if self._serving is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._serving
            self._serving = None

    async def replug(self) -> dict[str, Any]:
        """The control channel's replug: a fresh pty (after an unplug when plugged in)."""
        if self._port is not None:
            await self.unplug()
        return {"pty": self.plug()}

    def describe(self) -> dict[str, Any]:
        return {"pty": self.path}

    async def _serve(self, port: PtyPort) -> None:
        try:
            await self._device.serve(port.receive, port.send)
        except Exception:
            logger.exception("the device failed")
        finally:
            self._remove(port)  # the device dropped the link itself: that is an unplug too

    def _remove(self, port: PtyPort) -> None:
        if self._port is not port:
            return
        self._port = None
        port.close()
        if self._link is not None and self._link.is_symlink() and os.readlink(self._link) == port.path:
            self._link.unlink(missing_ok=True)
