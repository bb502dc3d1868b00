"""The emulator command's console, the same in every mode: JSON lines out on stdout (control answers
and device events), control commands in on stdin, and SIGTERM or SIGINT to stop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import selectors
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TextIO

PROG = "readerhost-reader-emulator"
Answer = dict[str, Any]
Handler = Callable[[str], Awaitable[Answer]]


def say(fields: Mapping[str, Any]) -> None:
    with contextlib.suppress(BrokenPipeError):  # nobody listens any more; run on until told to stop
        print(json.dumps(dict(fields)), flush=True)


def on_event(name: str, fields: Mapping[str, Any]) -> None:
    """ReaderDevice's `on_event`: one line {"event": name, ...fields}."""
    say({"event": name, **fields})


def pollable(stream: TextIO) -> bool:
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(stream.fileno(), selectors.EVENT_READ)
    except (OSError, ValueError):
        return False
    return True


async def serve_control(handle: Handler) -> None:
    """Answer each line on stdin with `handle` until EOF; without a readable stdin there is none."""
    if not pollable(sys.stdin):
        return  # e.g. /dev/null or a file: epoll refuses them
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        if line.strip():
            say(await handle(line.decode(errors="replace")))


async def serve_until(stop: asyncio.Event, handle: Handler) -> None:
    """Take control commands (serve_control) until `stop` is set."""
    controlling = asyncio.get_running_loop().create_task(serve_control(handle))
    try:
        await stop.wait()
    finally:
        controlling.cancel()


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT, on the running loop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop
