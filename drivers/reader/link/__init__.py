"""The reader link protocol: codec, host session and transports (docs/reader-link-protocol.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from readerhost.drivers.reader.base import Capability
from readerhost.drivers.settings import Int, Settings, Text, setting

# Protocol 1 (development devices): the reader hands over a payment method the host confirms, so
# the host may keep it and authorise later, when Stripe is unreachable. Test cards only.
CAPABILITIES = frozenset({Capability.STORES_OFFLINE})
# Protocol 2 (a Stripe Terminal SDK bridge): the device's SDK confirms; the host reads the outcome.
# It stores payments itself while Stripe is unreachable (the SDK's offline mode) and forwards them.
SDK_CAPABILITIES = frozenset({Capability.CONFIRMS_ITSELF, Capability.FORWARDS_OFFLINE})

# Why a daemon holding a live-mode key serves protocol 2 only.
V1_CANNOT_TAKE_REAL_CARDS = "protocol 1 devices cannot take real cards"

_LOCATION = re.compile(r"tml_[A-Za-z0-9]{1,64}")


def _location(value: str) -> str | None:
    if not value or _LOCATION.fullmatch(value):
        return None
    return 'a Stripe Terminal location id starting with "tml_", or "" for none'


@dataclass(frozen=True)
class LinkProtocolSettings(Settings):
    """What the serial and BLE drivers share: the protocol version spoken, and for version 2 the
    Terminal location its connection tokens are created for."""

    protocol: int = setting(1, Int(1, 2))  # 1: a development device (test cards); 2: a Terminal SDK bridge
    location: str = setting("", Text(_location))  # tml_...: the location of version 2's connection tokens


def live_key_refusal(settings: object) -> str | None:
    """Why a daemon holding a live-mode key may not use a reader with these settings, or None: a link
    reader (serial, BLE) configured for protocol 1 could only ever hand over test payment methods."""
    if isinstance(settings, LinkProtocolSettings) and settings.protocol == 1:
        return f"{V1_CANNOT_TAKE_REAL_CARDS}; a live Stripe key needs protocol = 2 (a Stripe Terminal SDK bridge)"
    return None
