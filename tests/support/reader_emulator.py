"""The reader emulator (readerhost-reader-emulator) as a real process on a pty, driven through its
JSON control channel on stdin, its answers and events read from stdout."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

WAIT_S = 10.0


class EmulatorProcess:
    def __init__(self, process: asyncio.subprocess.Process, link: Path) -> None:
        self.process = process
        self.link = link
        self._kept: list[dict[str, Any]] = []  # events read while waiting for something else

    async def _line(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), WAIT_S)
        if not line:
            raise AssertionError("the reader emulator ended")
        message: dict[str, Any] = json.loads(line)
        return message

    async def command(self, **command: Any) -> dict[str, Any]:
        """Send one control command; its answer (events that come first are kept)."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command).encode() + b"\n")
        await self.process.stdin.drain()
        while True:
            message = await self._line()
            if "event" in message:
                self._kept.append(message)
            else:
                return message

    async def event(self, name: str, match: Callable[[dict[str, Any]], bool] = lambda _e: True) -> dict[str, Any]:
        for index, kept in enumerate(self._kept):
            if kept["event"] == name and match(kept):
                return self._kept.pop(index)
        while True:
            message = await self._line()
            if message.get("event") == name and match(message):
                return message
            if "event" in message:
                self._kept.append(message)


@contextlib.asynccontextmanager
async def reader_emulator(tmp_path: Path, *flags: str) -> AsyncIterator[EmulatorProcess]:
    """The emulator on a pty, with a stable link name (like /dev/serial/by-id/...) under tmp_path."""
    link = tmp_path / "reader-tty"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "readerhost.sim.reader_device.cli", "--link", str(link), *flags,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    emulator = EmulatorProcess(process, link)
    try:
        assert process.stdout is not None
        first = (await asyncio.wait_for(process.stdout.readline(), WAIT_S)).decode()
        assert first.startswith("pty: "), first
        second = (await asyncio.wait_for(process.stdout.readline(), WAIT_S)).decode()
        assert second.strip() == f"link: {link}", second
        yield emulator
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), WAIT_S)
            except TimeoutError:
                process.kill()
                await process.wait()
