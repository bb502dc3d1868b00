"""Which client started which payment, and what to cancel when that client leaves.

The POS protocol's ownership rule: a client that disconnects while its payment still waits for
the customer abandons it, and the reader is freed. A client of the plain JSON-RPC socket owns
nothing: a generic library may connect once per request. Once a payment no longer holds the reader it
runs to a saved state any client can read, and is forgotten here.
"""

from __future__ import annotations

import contextlib
import logging

from readerhost.daemon.payments.events import Event
from readerhost.daemon.payments.model import HOLDS_READER, RequestRefused

from .backends import Payments
from .server import Client

logger = logging.getLogger(__name__)


class PaymentOwners:
    def __init__(self, payments: Payments) -> None:
        self._payments = payments
        self._owner_of: dict[str, int] = {}  # payment_id -> the number of the client that started it

    def started(self, payment_id: str, client: Client) -> None:
        """payment.start: the first client to start a payment owns it; starting the same order
        again from another client returns the payment without taking it over."""
        if not client.plain:
            self._owner_of.setdefault(payment_id, client.number)

    def collecting_again(self, payment_id: str, client: Client) -> None:
        """payment.collect_again: the client that asked for another card owns the new collection
        (nobody does when it asked on the plain socket)."""
        if client.plain:
            self._owner_of.pop(payment_id, None)
        else:
            self._owner_of[payment_id] = client.number

    def on_event(self, event: Event) -> None:
        """A payment that let go of the reader has nothing to cancel when its client leaves."""
        if event.type == "payment.state" and event.data.get("state") not in HOLDS_READER:
            self._owner_of.pop(str(event.data.get("payment_id")), None)

    async def client_left(self, client: Client) -> None:
        """A client gone while its payment still waits for a card: that collection is canceled."""
        canceled = 0
        for payment_id, owner in list(self._owner_of.items()):
            if owner != client.number:
                continue
            self._owner_of.pop(payment_id, None)
            with contextlib.suppress(RequestRefused):
                payment = self._payments.get(payment_id=payment_id)
                if payment.holds_reader:
                    logger.info("client %d left: canceling its payment %s", client.number, payment_id)
                    await self._payments.cancel(payment_id, "abandoned")
                    canceled += 1
        if not canceled:
            logger.debug("client %d left: no payment of its waited for a card", client.number)
