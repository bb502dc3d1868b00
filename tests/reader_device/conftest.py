"""The emulator as a child process on a pty, and a host on its far end; both stopped in teardown."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from support.link_host import EmulatorProcess, LinkHost

StartEmulator = Callable[..., EmulatorProcess]
OpenHost = Callable[..., LinkHost]


@pytest.fixture
def start_emulator() -> Iterator[StartEmulator]:
    """Start `readerhost-reader-emulator` with these arguments (card presented after 0.1 s unless told)."""
    started: list[EmulatorProcess] = []

    def start(*args: str, command: list[str] | None = None) -> EmulatorProcess:
        defaults = [] if "--present-after" in args else ["--present-after", "0.1"]
        emulator = EmulatorProcess(*defaults, *args, command=command)
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


@pytest.fixture
def open_host() -> Iterator[OpenHost]:
    opened: list[LinkHost] = []

    def open_(path: str, **kwargs: bool) -> LinkHost:
        host = LinkHost(path, **kwargs)
        opened.append(host)
        return host

    yield open_
    for host in opened:
        host.close()
