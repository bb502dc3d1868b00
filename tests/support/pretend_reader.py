"""A throwaway reader driver, to show what adding one takes: this file, and one line in a registry
(tests/reader/test_registry.py adds it to a copy of DRIVERS)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from readerhost.drivers.reader.base import (
    Capability,
    Cart,
    CollectedPaymentMethod,
    ReaderBase,
    ReaderContext,
    ReaderListener,
)
from readerhost.drivers.settings import Int, Missing, Section, Settings, Text, setting


@dataclass(frozen=True)
class PretendSettings(Settings):
    greeting: str = setting("", Text())
    volume: int = setting(3, Int(0, 11))


def _needs_a_greeting(settings: PretendSettings) -> Missing | None:
    return None if settings.greeting else Missing("greeting", "the pretend reader needs something to say")


SETTINGS = Section("reader.pretend", PretendSettings, required=_needs_a_greeting)
CAPABILITIES = frozenset({Capability.SHOWS_CART})


def open_reader(settings: PretendSettings, context: ReaderContext) -> PretendReader:
    return PretendReader(settings)


class PretendReader(ReaderBase):
    driver = "pretend"
    capabilities = CAPABILITIES

    def __init__(self, settings: PretendSettings) -> None:
        self.settings = settings
        self.carts: list[Cart] = []

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def status(self) -> dict[str, Any]:
        return {"state": "ready", "id": "pretend-1", "model": "pretend", "serial": None, "battery": None}

    def unavailable(self) -> str | None:
        return None

    async def show_cart(self, cart: Cart) -> None:
        self.carts.append(cart)

    async def collect(
        self,
        amount: int,
        currency: str,
        listener: ReaderListener,
        *,
        payment_intent: str | None = None,
        tipping: int | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> CollectedPaymentMethod:
        raise NotImplementedError("a pretend reader takes no card")
