"""The reader emulator process (support.link_host.EmulatorProcess) for tests that run readerhostd in
their own event loop: started with a stable link name, waited on in a thread so the loop runs on."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from support.link_host import EmulatorProcess

WAIT_S = 10.0


class AsyncEmulator:
    def __init__(self, process: EmulatorProcess, link: Path) -> None:
        self.process = process
        self.link = link

    async def command(self, **command: Any) -> dict[str, Any]:
        """One control command and its answer."""
        return await asyncio.to_thread(self.process.control, command, WAIT_S)

    async def event(self, name: str) -> dict[str, Any]:
        """The next event `name` (events of other names before it are dropped)."""
        return await asyncio.to_thread(self.process.event, name, WAIT_S)


@contextlib.asynccontextmanager
async def reader_emulator(tmp_path: Path, *flags: str) -> AsyncIterator[AsyncEmulator]:
    """The emulator on a pty, with a stable link name (like /dev/serial/by-id/...) under tmp_path."""
    link = tmp_path / "reader-tty"
    process = await asyncio.to_thread(EmulatorProcess, "--link", str(link), *flags)
    try:
        assert process.line(WAIT_S) == f"link: {link}"
        yield AsyncEmulator(process, link)
    finally:
        await asyncio.to_thread(process.stop)
