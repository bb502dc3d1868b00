"""A reference device for the reader link protocol (docs/reader-link-protocol.md): the card reader
(or bridge board) side, scriptable, for tests, demos and reader makers.

`ReaderDevice` (device.py) speaks the protocol over any byte transport; pty.py serves it on a
pseudo-terminal that can be unplugged and plugged again; `readerhost-reader-emulator` (cli.py)
runs it as a process with a JSON control channel on stdin. Nothing heavy is imported until used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .device import ReaderDevice
    from .script import DeviceIdentity, DeviceScript, LinkTimings

__all__ = ["DeviceIdentity", "DeviceScript", "LinkTimings", "ReaderDevice"]


def __getattr__(name: str) -> Any:
    if name == "ReaderDevice":
        from .device import ReaderDevice

        return ReaderDevice
    if name in ("DeviceIdentity", "DeviceScript", "LinkTimings"):
        from . import script

        return getattr(script, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
