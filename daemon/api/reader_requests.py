"""reader.present, reader.display_cart, reader.register, reader.locations and reader.pair: what a
POS (or a technician) may ask of the reader itself.

The reader answers what it cannot do (drivers/reader/base.py: Unsupported, from its capabilities);
here each of the reader's refusals becomes the protocol's reason, in one place."""

from __future__ import annotations

from typing import Any, Protocol

from readerhost.daemon.payments.model import Reason, RequestRefused
from readerhost.drivers.reader.base import (
    Capability,
    Cart,
    FixedByConfiguration,
    NotCollecting,
    ReaderDriver,
    ReaderError,
    UnknownTestCard,
    Unsupported,
    require,
)


class ReaderHolder(Protocol):
    def reader_holder(self) -> str | None:
        """The payment holding the reader, if any."""
        ...


class ReaderRequests:
    def __init__(self, reader: ReaderDriver, payments: ReaderHolder) -> None:
        self._reader = reader
        self._payments = payments

    def present_card(self, card: str) -> None:
        try:
            self._reader.present(card)
        except ReaderError as error:
            raise refused(error) from None

    async def display_cart(self, cart: Cart) -> None:
        """The items on the reader's screen, between payments (never over a payment's prompt)."""
        try:
            require(self._reader, Capability.SHOWS_CART)
        except Unsupported as error:
            raise refused(error) from None
        holder = self._payments.reader_holder()
        if holder is not None:
            raise RequestRefused(
                Reason.BUSY, f"payment {holder} holds the reader: a cart would replace its prompt", retryable=True
            )
        try:
            await self._reader.show_cart(cart)
        except ReaderError as error:
            raise refused(error) from None

    async def register(self, registration_code: str, location: str | None, label: str | None) -> dict[str, Any]:
        """Register a reader at Stripe and use it from now on (never under a payment); the reader's status."""
        try:
            require(self._reader, Capability.REGISTERS)
        except Unsupported as error:
            raise refused(error) from None
        holder = self._payments.reader_holder()
        if holder is not None:
            raise RequestRefused(
                Reason.BUSY, f"payment {holder} holds the reader: register once it is done", retryable=True
            )
        try:
            await self._reader.register(registration_code, location, label)
        except ReaderError as error:
            raise refused(error) from None
        return self._reader.status()

    async def pair(self) -> dict[str, Any]:
        """Bond with a Bluetooth reader (never under a payment): what was done, and the reader's status."""
        try:
            require(self._reader, Capability.PAIRS)
        except Unsupported as error:
            raise refused(error) from None
        holder = self._payments.reader_holder()
        if holder is not None:
            raise RequestRefused(
                Reason.BUSY, f"payment {holder} holds the reader: pair once it is done", retryable=True
            )
        try:
            paired = await self._reader.pair()
        except ReaderError as error:
            raise refused(error) from None
        return {"address": paired.address, "already_bonded": paired.already, "reader": self._reader.status()}

    async def locations(self) -> list[dict[str, Any]]:
        try:
            return [location.to_json() for location in await self._reader.locations()]
        except ReaderError as error:
            raise refused(error) from None


def refused(error: ReaderError) -> RequestRefused:
    """The POS's refusal for what the reader said."""
    if isinstance(error, Unsupported):
        return RequestRefused(Reason.UNSUPPORTED, error.message)
    if isinstance(error, NotCollecting | FixedByConfiguration):
        return RequestRefused(Reason.INVALID_STATE, error.message)
    if isinstance(error, UnknownTestCard):
        return RequestRefused(Reason.NOT_FOUND, error.message)
    return RequestRefused(Reason.READER_UNAVAILABLE, error.message, retryable=True)
