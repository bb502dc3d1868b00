"""What the BLE bonding tests share: a POS that waits until the daemon refused its reader, and
`readerhostctl` run as a process against an in-process daemon."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from support.daemon import LineClient, of_type

CTL = [sys.executable, "-m", "readerhost.daemon.ctl"]


async def refused_reader(socket_path: Path) -> tuple[LineClient, dict[str, Any]]:
    """A POS subscribed to payment and reader events once the daemon has refused its reader
    (`reader.refused`, or already refused when it subscribed), and the reader's status then."""
    pos = await LineClient.connect(socket_path)
    await pos.receive()  # the banner
    snapshot = (await pos.call("events.subscribe", {"topics": ["payment", "reader"]}))["result"]["snapshot"]
    if snapshot["reader"]["link"]["refused"] is None:
        await pos.event(of_type("reader.refused"))
    reader: dict[str, Any] = (await pos.call("status.get"))["result"]["reader"]
    return pos, reader


async def ctl(socket_path: Path, *args: str) -> tuple[int, str, str]:
    """readerhostctl as a process: its exit code, stdout and stderr (never a traceback)."""
    process = await asyncio.create_subprocess_exec(
        *CTL, "--socket", str(socket_path), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert "Traceback" not in err.decode(), err.decode()
    return process.returncode or 0, out.decode(), err.decode()
