"""The reader link protocol: codec, host session and transports (docs/reader-link-protocol.md)."""

from readerhost.drivers.reader.base import Capability

# A link reader (serial or BLE) hands over a payment method the host confirms: the host may keep it
# and authorise later, when Stripe is unreachable.
CAPABILITIES = frozenset({Capability.STORES_OFFLINE})
