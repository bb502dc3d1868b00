"""One collection on the device: from COLLECT to its one result (COLLECTED or ERROR), run by a
DeviceScript. Cancellation (CANCEL, HELLO, host silence, link loss) is the task being cancelled;
the device sends CANCELED itself when the host asked for it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from readerhost.drivers.reader.link.codec import MessageType
from readerhost.sim.stripe_emulator.testcards import TEST_CARDS

from .script import DeviceScript

Emit = Callable[[MessageType, Mapping[str, Any]], None]
# Version 2: given the card read (its test payment method) and protocol 1's COLLECTED body, do what
# the Terminal SDK does (attach it to the PaymentIntent at Stripe, or store the payment offline) and
# say the message that ends the collection, or the ERROR code it ends with instead.
Attach = Callable[[str, dict[str, Any]], Awaitable[tuple[MessageType, dict[str, Any]] | str]]

ERROR_TEXT = {
    "card_read_timed_out": "No card was presented in time.",
    "card_read_failed": "The card could not be read.",
    "card_removed": "The card was removed too early.",
    "reader_busy": "A collection is already in progress.",
    "reader_battery_critically_low": "The reader's battery is critically low.",
    "not_collecting": "There is no collection to cancel.",
    "unsupported_version": "None of the host's protocol versions is supported.",
    "malformed_message": "The message was malformed.",
    "internal_error": "The reader failed.",
    "stripe_unreachable": "Stripe could not be reached.",
    "stripe_refused": "Stripe refused the request.",
}


@dataclass(frozen=True)
class CollectRequest:
    collection: int
    amount: int
    currency: str
    wait_s: int
    payment_intent: str | None = None  # version 2
    client_secret: str | None = None
    offline: bool = False  # version 2: the host could not reach Stripe: the payment is stored here
    metadata: Mapping[str, str] = field(default_factory=dict)  # with offline: for the PaymentIntent it makes


class Collection:
    def __init__(
        self,
        request: CollectRequest,
        script: DeviceScript,
        emit: Emit,
        on_waiting: Callable[[], None],
        attach: Attach | None = None,
    ) -> None:
        self.request = request
        self.ended = False  # set in the same step as the result is queued: a later CANCEL finds it over
        self._script = script
        self._emit = emit
        self._on_waiting = on_waiting
        self._attach = attach
        self._card: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def present(self, card: str) -> bool:
        """Hand a test card to this collection; False when it no longer takes one."""
        if card not in TEST_CARDS:
            raise ValueError(f"unknown test card {card!r}")
        if self.ended or self._card.done():
            return False
        self._card.set_result(card)
        return True

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.request.wait_s
        script, n = self._script, self.request.collection
        self._emit(MessageType.INPUT_OPTIONS, {"collection": n, "options": list(script.input_options)})
        for prompt in script.prompts:
            await asyncio.sleep(script.delay_s)
            self._emit(MessageType.DISPLAY_MESSAGE, {"collection": n, "message": prompt})
        self._on_waiting()
        if script.error is not None:
            await asyncio.sleep(min(script.present_after_s, max(0.0, deadline - loop.time())))
            self._finish_with_error(script.error if loop.time() < deadline else "card_read_timed_out")
            return
        timer = None
        if script.card is not None:
            timer = loop.call_later(script.present_after_s, self.present, script.card)
        try:
            # Not wait_for: in 3.11 it swallows a cancel that comes with the card.
            await asyncio.wait({self._card}, timeout=max(0.0, deadline - loop.time()))
        finally:
            if timer is not None:
                timer.cancel()
        if not self._card.done():
            self._finish_with_error("card_read_timed_out")
            return
        await self._read(self._card.result())

    async def _read(self, name: str) -> None:
        script, n, card = self._script, self.request.collection, TEST_CARDS[name]
        read_method = script.read_method or ("contact_emv" if script.card_events else card.default_read_method)
        if script.card_events:
            self._emit(MessageType.CARD, {"collection": n, "event": "card_inserted"})
            await asyncio.sleep(script.delay_s)
            self._emit(MessageType.CARD, {"collection": n, "event": "card_removed"})
            await asyncio.sleep(script.delay_s)
        collected: dict[str, Any] = {"collection": n, "brand": card.brand, "last4": card.last4}
        collected["read_method"] = read_method
        if self._attach is None:
            ending = (MessageType.COLLECTED, {**collected, "reference": card.reference})
        else:
            outcome = await self._attach(card.reference, collected)
            if isinstance(outcome, str):
                self._finish_with_error(outcome)
                return
            ending = outcome
        self.ended = True
        self._emit(*ending)

    def _finish_with_error(self, code: str) -> None:
        self.ended = True
        self._emit(
            MessageType.ERROR, {"collection": self.request.collection, "code": code, "message": ERROR_TEXT[code]}
        )
