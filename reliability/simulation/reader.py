"""The card reader of the simulation: the customer's side, played by the simulated POS's orders.

It hands back whatever card is presented to it (an approving or a declining test card), or fails as
a reader does; it confirms nothing itself and stores nothing offline (the online reader kinds)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from readerhost.drivers.reader.base import (
    Capability,
    CollectedPaymentMethod,
    ReaderError,
    ReaderListener,
    RefundOrder,
    Unsupported,
)


class SimReader:
    driver = "simulated"
    capabilities: frozenset[Capability] = frozenset()

    def __init__(self) -> None:
        self._cards: asyncio.Queue[CollectedPaymentMethod | ReaderError] = asyncio.Queue()
        self.waiting = False  # a collection waits for a card

    def present(self, reference: str) -> None:
        self._cards.put_nowait(CollectedPaymentMethod(reference, "visa", "4242", "contactless_emv"))

    def fail(self, code: str, message: str) -> None:
        self._cards.put_nowait(ReaderError(code, message))

    def unavailable(self) -> str | None:
        return None

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
        while not self._cards.empty():  # a card left over from a collection that was stopped
            self._cards.get_nowait()
        self.waiting = True
        listener.input_options(["tap", "insert"])
        try:
            step = await self._cards.get()
        finally:
            self.waiting = False
        if isinstance(step, ReaderError):
            raise step
        return step

    async def process(self, payment_intent: str, listener: ReaderListener) -> None:
        raise Unsupported(self.driver, Capability.CONFIRMS_ITSELF)

    async def refund(self, order: RefundOrder, listener: ReaderListener) -> None:
        raise Unsupported(self.driver, Capability.REFUNDS_AT_READER)
