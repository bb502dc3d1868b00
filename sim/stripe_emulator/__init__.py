"""A stateful, in-memory emulator of the Stripe API for card-present payments.

Start it in-process with `running_emulator()`, or as the command `readerhost-stripe-emulator`.
See docs/stripe-emulator.md.
"""

from .emulator import StripeEmulator
from .server import EmulatorHTTPServer, running_emulator

__all__ = ["EmulatorHTTPServer", "StripeEmulator", "running_emulator"]
