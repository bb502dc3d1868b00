"""A stateful, in-memory emulator of the Stripe API for card-present payments.

Start it in-process with `running_emulator()`, or as the command `readerhost-stripe-emulator`.
See docs/stripe-emulator.md.

The server and the emulator are imported on first use only: the daemon reads the test-card table
(`testcards`) for its simulated reader without paying for the emulator (about 11 MB).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .emulator import StripeEmulator
    from .server import EmulatorHTTPServer, running_emulator

__all__ = ["EmulatorHTTPServer", "StripeEmulator", "running_emulator"]


def __getattr__(name: str) -> Any:
    if name == "StripeEmulator":
        from .emulator import StripeEmulator

        return StripeEmulator
    if name in ("EmulatorHTTPServer", "running_emulator"):
        from . import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
