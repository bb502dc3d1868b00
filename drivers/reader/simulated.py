"""The simulated reader (the default driver): a card reader that needs no hardware.

It behaves like a reader without a display: it announces the input options, optionally asks
for the card to be presented again once ("retry_card"), and hands over one of the Stripe
emulator's test payment methods — the configured card after a delay, or the card a technician
names with `readerhostctl present CARD`. It never sees or makes up a card number.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from readerhost.drivers.settings import Flag, Number, Section, Settings, Text, setting

from .base import (
    Capability,
    CollectedPaymentMethod,
    NotCollecting,
    ReaderBase,
    ReaderContext,
    ReaderListener,
    ReaderState,
    UnknownTestCard,
)

INPUT_OPTIONS = ["tap", "insert", "swipe"]


def _known_card(name: str) -> str | None:
    from readerhost.sim.stripe_emulator.testcards import PREFIX, TEST_CARDS

    if name in TEST_CARDS:
        return None
    prefix = f"the name after {PREFIX} only, " if name.startswith(PREFIX) else ""
    return f"{prefix}one of the emulator's test cards ({', '.join(TEST_CARDS)})"


@dataclass(frozen=True)
class SimulatedSettings(Settings):
    card: str = setting("visa", Text(_known_card))  # an emulator test card, the part after pm_card_present_
    present_after_s: float = setting(2.0, Number())  # negative: only when told to by `readerhostctl present`
    retry_card_once: bool = setting(False, Flag())


SETTINGS = Section("reader.simulated", SimulatedSettings)
# The host confirms with Stripe's test payment methods, so it may also keep one and authorise later.
CAPABILITIES = frozenset({Capability.PRESENTS_TEST_CARDS, Capability.STORES_OFFLINE})


def open_reader(settings: SimulatedSettings, context: ReaderContext) -> SimulatedReader:
    return SimulatedReader(settings.card, settings.present_after_s, settings.retry_card_once)


def card_named(name: str) -> CollectedPaymentMethod:
    """The emulator's test card `name` as a reader would hand it over; UnknownTestCard for other names."""
    from readerhost.sim.stripe_emulator.testcards import TEST_CARDS

    card = TEST_CARDS.get(name)
    if card is None:
        raise UnknownTestCard(name, TEST_CARDS)
    return CollectedPaymentMethod(card.reference, card.brand, card.last4, card.default_read_method)


class SimulatedReader(ReaderBase):
    driver = "simulated"
    capabilities = CAPABILITIES
    id = "sim-1"
    model = "simulated"
    serial = "SIM-0001"

    def __init__(self, card: str = "visa", present_after_s: float = 2.0, retry_card_once: bool = False) -> None:
        card_named(card)  # refuse an unknown card at start, not at the first payment
        self._card = card
        self._present_after_s = present_after_s
        self._retry_card_once = retry_card_once
        self._presented: asyncio.Queue[CollectedPaymentMethod] = asyncio.Queue()
        self.state = ReaderState.READY

    async def start(self) -> None:
        pass  # nothing to connect to

    async def stop(self) -> None:
        pass

    def unavailable(self) -> str | None:
        return None  # always there

    def present(self, card: str) -> None:
        """Present a test card to the collection in progress."""
        method = card_named(card)
        if self.state is not ReaderState.COLLECTING:
            raise NotCollecting
        self._presented.put_nowait(method)

    def status(self) -> dict[str, Any]:
        return {"state": self.state, "id": self.id, "model": self.model, "serial": self.serial, "battery": None}

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
        self.state = ReaderState.COLLECTING
        try:
            listener.input_options(list(INPUT_OPTIONS))
            if self._retry_card_once:  # the first read fails, as a chip read sometimes does
                await self._next_card(self._present_after_s)
                listener.card_event("card_inserted")
                listener.display_message("retry_card")
                listener.card_event("card_removed")
            method = await self._next_card(self._present_after_s)
            if method.read_method == "contact_emv":
                listener.card_event("card_inserted")
                listener.display_message("remove_card")
                listener.card_event("card_removed")
            return method
        finally:
            self.state = ReaderState.READY
            while not self._presented.empty():  # a card nobody took is not the next customer's
                self._presented.get_nowait()

    async def _next_card(self, after_s: float) -> CollectedPaymentMethod:
        """The card a technician presents, or the configured one once `after_s` has passed."""
        if after_s < 0:
            return await self._presented.get()
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(self._presented.get(), timeout=after_s)
        return card_named(self._card)
