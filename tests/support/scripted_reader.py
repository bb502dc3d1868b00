"""A reader driven by its caller: the payment core's tests present cards on cue.

`collect` announces the input options, then waits for the next scripted step: a card to hand
back, a display message to show first, or a failure. No timers: every step is pushed by whoever
plays the customer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

from readerhost.drivers.reader.base import (
    Capability,
    CollectedPaymentMethod,
    ReaderError,
    ReaderListener,
    RefundOrder,
    Unsupported,
)


@dataclass(frozen=True)
class _Message:
    message: str


@dataclass(frozen=True)
class _Failure:
    code: str
    message: str


_Step = CollectedPaymentMethod | _Message | _Failure


class ScriptedReader:
    driver = "scripted"

    def __init__(
        self,
        input_options: tuple[str, ...] = ("tap", "insert", "swipe"),
        capabilities: frozenset[Capability] = frozenset({Capability.STORES_OFFLINE}),
    ) -> None:
        """By default the reader hands over what it reads for the host to confirm, as the simulated
        reader does; with CONFIRMS_ITSELF it plays a smart reader, which goes to Stripe itself."""
        self.capabilities = capabilities
        self._steps: asyncio.Queue[_Step] = asyncio.Queue()
        self._input_options = list(input_options)
        self.collecting = asyncio.Event()  # set while a collection waits for a card
        self.collections = 0
        self.payment_intents: list[str | None] = []  # what each collection was for
        self.processed: list[str] = []  # the PaymentIntents process() was asked to confirm
        self.confirm_gate: asyncio.Event | None = None  # process() waits for it, when set
        self.gone: str | None = None  # set to play a reader that cannot collect (unplugged, ...)
        self.refunding = asyncio.Event()  # set while a refund waits for a card (REFUNDS_AT_READER)
        self.refund_orders: list[RefundOrder] = []  # what each refund at the reader was asked

    def unavailable(self) -> str | None:
        return self.gone

    def present(
        self,
        reference: str,
        brand: str = "visa",
        last4: str = "4242",
        read_method: str = "contactless_emv",
    ) -> None:
        """The card is read (a reader that confirms itself has presented it to Stripe by then)."""
        self._steps.put_nowait(CollectedPaymentMethod(reference, brand, last4, read_method))

    def show(self, message: str) -> None:
        self._steps.put_nowait(_Message(message))

    def fail(self, code: str, message: str) -> None:
        self._steps.put_nowait(_Failure(code, message))

    async def process(self, payment_intent: str, listener: ReaderListener) -> None:
        """A smart reader played by the test has presented the card to Stripe within its collect; with
        `confirm_gate` set, its confirm lasts until the test opens the gate."""
        self.processed.append(payment_intent)
        if self.confirm_gate is not None:
            await self.confirm_gate.wait()

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
        self.collections += 1
        self.payment_intents.append(payment_intent)
        listener.input_options(self._input_options)
        self.collecting.set()
        try:
            while True:
                step = await self._steps.get()
                if isinstance(step, _Message):
                    listener.display_message(step.message)
                elif isinstance(step, _Failure):
                    raise ReaderError(step.code, step.message)
                else:
                    return step
        finally:
            self.collecting.clear()

    async def refund(self, order: RefundOrder, listener: ReaderListener) -> None:
        """REFUNDS_AT_READER, when declared: waits for the next step; a failure is the reader's
        refusal, anything else its word that it refunded (which the host must not believe)."""
        if Capability.REFUNDS_AT_READER not in self.capabilities:
            raise Unsupported(self.driver, Capability.REFUNDS_AT_READER)
        self.refund_orders.append(order)
        self.refunding.set()
        try:
            step = await self._steps.get()
            if isinstance(step, _Failure):
                raise ReaderError(step.code, step.message)
        finally:
            self.refunding.clear()
