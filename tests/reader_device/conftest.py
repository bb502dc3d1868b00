"""The emulator as a child process on a pty or over BLE, and a host on its far end; all stopped in teardown."""

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


class BleEmulatorProcess(EmulatorProcess):
    """The emulator with --ble: its first line is `ble: ADDRESS NAME` instead of `pty: PATH`.

    Its controller lives in the test's event loop, so a test calls the blocking methods (and the
    constructor, which waits for that line) in a thread: asyncio.to_thread(...)."""

    def __init__(self, *args: str, command: list[str] | None = None) -> None:
        super().__init__(*args, command=command, announces="ble: ", timeout=10)
        self.address, self.name = self.announced.split(" ", 1)


@pytest.fixture
def start_ble_emulator() -> Iterator[Callable[..., BleEmulatorProcess]]:
    """Start `readerhost-reader-emulator` with these arguments (--ble TRANSPORT among them); call in a thread."""
    started: list[BleEmulatorProcess] = []

    def start(*args: str) -> BleEmulatorProcess:
        emulator = BleEmulatorProcess(*args)
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
