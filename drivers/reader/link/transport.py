"""What the link reader needs from a transport (serial, BLE): a way to connect, and a connection
that moves bytes. Frames, acknowledgements and timeouts live above this, in session.py."""

from __future__ import annotations

from typing import Any, Protocol


class LinkUnavailable(Exception):
    """The device cannot be reached now (absent, busy, refused); `reason` says why in a few words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LinkRefused(LinkUnavailable):
    """The device was reached, or could be, and may not be used (not bonded, not the configured one):
    the host says so as a refusal (reader.refused), not as a device that is merely away. `short`:
    the few words the technician screen has room for."""

    def __init__(self, reason: str, short: str) -> None:
        super().__init__(reason)
        self.short = short


class LinkLost(Exception):
    """A connected link stopped working (unplugged, disconnected, no answer)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Connection(Protocol):
    async def read(self) -> bytes:
        """The next bytes from the device (never empty); LinkLost when the link is gone."""
        ...

    async def write(self, data: bytes) -> None:
        """Send `data` whole, cut into whatever pieces the transport needs; LinkLost on failure."""
        ...

    async def close(self) -> None: ...


class Transport(Protocol):
    def describe(self) -> dict[str, Any]:
        """What status.get shows of the link, e.g. {"transport": "serial", "device": "/dev/ttyACM0"}."""
        ...

    async def connect(self) -> Connection:
        """A new connection to the device; LinkUnavailable when there is none to be had now."""
        ...
