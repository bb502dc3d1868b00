"""A POS cashier: sells one order at a time through the socket, the way a kiosk's software would,
with the twists a run draws for each order (declines, cancels, partial captures, hang-ups).

What it asks for is written into the run's PosRecord *before* it can matter: a capture is noted
as "maybe" when sent and as asked once accepted, a cancel once the daemon answered `canceled`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Collection
from dataclasses import dataclass

from readerhost.daemon.payments.model import HOLDS_READER, TERMINAL
from reliability.pos import Gone, PosClient, Reply, payment_event
from reliability.world import World

APPROVING = ("visa", "mastercard", "amex", "discover", "visa_debit")
DECLINING = ("charge_declined", "charge_declined_insufficient_funds", "charge_declined_lost_card")
# Worth waiting for: the payment needs the POS again, or is done.
NEEDS_POS = frozenset({"authorized", "declined", "captured", "canceled", "failed", "queued_offline"})
# What `until` reports for a payment still collecting after its reader failed (it waits for the POS).
READER_FAILED = "collecting, the reader failed"
RETRY_LATER = frozenset({"BUSY", "STRIPE_UNAVAILABLE", "OFFLINE_LIMIT", "STORAGE_UNAVAILABLE"})


@dataclass(frozen=True)
class Order:
    order_id: str
    amount: int
    card: str
    capture: str = "manual"  # or "automatic"
    offline: str = "require_online"  # or "prefer_online"
    confirm: bool = False  # the customer confirms on the kiosk (awaiting_confirmation)
    on_decline: str = "again"  # "again" (another card, same PaymentIntent) or "cancel"
    then: str = "capture"  # after authorised: "capture", "partial", "cancel" or "leave"
    cancel_while_collecting: bool = False
    hang_up: str = ""  # "", "collecting" or "processing": the POS disconnects there
    refunds: int = 0  # once captured: how many refunds the POS asks for (the last one for all that is left)


def draw_order(rng: random.Random, number: int, prefix: str = "O") -> Order:
    """One order with its twists, from the run's seeded generator."""
    offline = "prefer_online" if rng.random() < 0.15 else "require_online"
    amount = rng.randrange(100, 9_999) * (1 if offline == "prefer_online" else rng.choice((1, 1, 3)))
    if amount % 100 in (1, 2, 3, 5, 55, 60, 65, 75):  # Stripe's declining test amounts: only by choice
        amount += 10
    return Order(
        order_id=f"{prefix}-{number:05d}",
        amount=amount,
        card=rng.choice(DECLINING) if rng.random() < 0.15 else rng.choice(APPROVING),
        capture="automatic" if rng.random() < 0.1 else "manual",
        offline=offline,
        confirm=rng.random() < 0.1,
        on_decline=rng.choice(("again", "again", "cancel")),
        then=rng.choices(("capture", "partial", "cancel", "leave"), weights=(60, 15, 15, 10))[0],
        cancel_while_collecting=rng.random() < 0.05,
        hang_up=rng.choices(("", "collecting", "processing"), weights=(92, 3, 5))[0],
        refunds=rng.choices((0, 1, 2, 3), weights=(55, 25, 12, 8))[0],
    )


class Cashier:
    """One POS connection selling orders; reconnects by itself after a hang-up."""

    def __init__(self, world: World, rng: random.Random, patience_s: float = 180.0) -> None:
        self.world = world
        self.rng = rng
        self.patience_s = patience_s  # how long one order may take before the run calls it stuck
        self.client: PosClient | None = None
        self.stuck: list[str] = []  # orders that took longer than patience_s

    async def _client(self) -> PosClient:
        if self.client is None or self.client.closed:
            self.client = await self.world.client()
        return self.client

    async def hang_up(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None

    async def call(self, method: str, params: dict[str, object]) -> Reply:
        client = await self._client()
        return await client.call(method, params)

    async def sell(self, order: Order) -> str | None:
        """Carry `order` as far as its twists say; the final state, or None if it never started."""
        record = self.world.record
        deadline = time.monotonic() + self.patience_s
        params: dict[str, object] = {
            "order_id": order.order_id, "amount": order.amount, "currency": "usd",
            "capture": order.capture, "offline": order.offline, "confirm": order.confirm,
        }  # fmt: skip
        while True:
            reply = await self.call("payment.start", params)
            if reply.ok or reply.reason not in RETRY_LATER:
                break
            if time.monotonic() > deadline:
                return None
            # The reader or Stripe is busy: wait for something to change (any payment event), or a moment.
            await (await self._client()).event(lambda e: e.get("type") == "payment.state", 0.5)
        if not reply.ok:
            raise AssertionError(f"payment.start {order.order_id} refused: {reply.error}")
        payment_id: str = reply.result["payment_id"]
        if order.capture == "automatic":
            record.automatic.add(payment_id)
        state = await self._collect(order, payment_id, order.card, deadline)
        if state == "declined":
            if order.on_decline == "again":
                reply = await self.call("payment.collect_again", {"payment_id": payment_id})
                if reply.ok:
                    state = await self._collect(order, payment_id, self.rng.choice(APPROVING), deadline)
            if state == "declined":
                state = await self._cancel(payment_id, deadline)
        if state in ("authorized", "queued_offline") and order.capture == "manual":
            state = await self._finish(order, payment_id, state, deadline)
        if state == "captured" and order.refunds:
            await self._refund(order, payment_id, deadline)
        if state in HOLDS_READER:  # given up on (counted stuck): free the reader, as a kiosk that timed out would
            reply = await self.call("payment.cancel", {"payment_id": payment_id})
            if reply.ok and reply.result.get("state") == "canceled":
                record.cancel_accepted.add(payment_id)
        return state

    async def _collect(self, order: Order, payment_id: str, card: str, deadline: float) -> str:
        """From collecting to the next state that needs the POS (or a final one)."""
        state = await self.until(payment_id, NEEDS_POS | {"collecting"}, deadline)
        if state != "collecting":
            return state
        if order.hang_up == "collecting":
            await self.hang_up()  # the daemon cancels the collection of a client that left
            return await self.until(payment_id, NEEDS_POS, deadline)
        if order.cancel_while_collecting:
            return await self._cancel(payment_id, deadline)
        while True:
            while not await self.world.present(card, await self._client()):
                # The payment is collecting, the reader maybe not yet: wait for it to ask for a card.
                client = await self._client()
                asked = await client.event(payment_event(payment_id, "reader.input_options"), 2.0)
                if asked is None and time.monotonic() > deadline:
                    return await self.until(payment_id, NEEDS_POS, deadline)
                if asked is None:
                    now = (await self.call("payment.get", {"payment_id": payment_id})).result
                    if now.get("state") != "collecting":
                        return await self.until(payment_id, NEEDS_POS, deadline)
                    if now.get("error"):  # the reader failed (its link, or Stripe behind it): as a POS does
                        await self.call("payment.collect_again", {"payment_id": payment_id})
            if order.confirm:
                state = await self.until(payment_id, NEEDS_POS | {"awaiting_confirmation"}, deadline)
                if state != "awaiting_confirmation":
                    return state
                await self.call("payment.confirm", {"payment_id": payment_id})
            if order.hang_up == "processing":
                await self.hang_up()  # the POS crashed; it comes back and reads the payment again
            state = await self.until(payment_id, NEEDS_POS | {READER_FAILED}, deadline)
            if state != READER_FAILED:
                return state
            # The reader failed after it read the card (a Terminal SDK that could not reach Stripe to
            # attach it): the payment stays collecting, with the error, until its POS collects again.
            await self.call("payment.collect_again", {"payment_id": payment_id})

    async def _finish(self, order: Order, payment_id: str, state: str, deadline: float) -> str:
        if order.then == "leave":
            return state
        if order.then == "cancel" and state == "authorized":
            return await self._cancel(payment_id, deadline)
        amount = order.amount
        if order.then == "partial":
            amount = max(50, order.amount * self.rng.randrange(30, 100) // 100)
        record = self.world.record
        record.capture_maybe.add(payment_id)  # from here on a capture may reach Stripe
        reply = await self.call("payment.capture", {"payment_id": payment_id, "amount": amount})
        if not reply.ok:
            record.capture_maybe.discard(payment_id)
            return await self.until(payment_id, NEEDS_POS - {"authorized"}, deadline)
        record.capture_asked[payment_id] = amount
        return await self.until(payment_id, TERMINAL, deadline)

    async def _refund(self, order: Order, payment_id: str, deadline: float) -> None:
        """Ask for `order.refunds` refunds, each for a part of what was captured (the last for all that
        is left, which may be nothing: refused), one of them asked twice; wait until each is done."""
        record = self.world.record
        captured = int((await self.call("payment.get", {"payment_id": payment_id})).result["captured_amount"])
        for number in range(order.refunds):
            refund_id = f"{order.order_id}-R{number}"
            last = number == order.refunds - 1
            amount = None if last else max(1, captured * self.rng.randrange(10, 60) // 100)
            params: dict[str, object] = {"payment_id": payment_id, "refund_id": refund_id}
            if amount is not None:
                params["amount"] = amount
            record.refund_maybe.add(refund_id)  # from here on the refund may reach Stripe
            reply = await self.call("payment.refund", params)
            if reply.ok and self.rng.random() < 0.3:
                reply = await self.call("payment.refund", params)  # the POS asks again: the same refund
            if not reply.ok:
                if reply.reason not in ("REFUND_EXCEEDS_CAPTURED", *RETRY_LATER):
                    raise AssertionError(f"payment.refund {refund_id} refused: {reply.error}")
                continue
            record.refund_asked[refund_id] = (payment_id, amount)
            await self._until_refunded(payment_id, refund_id, deadline)

    async def _until_refunded(self, payment_id: str, refund_id: str, deadline: float) -> None:
        while True:
            reply = await self.call("payment.get", {"payment_id": payment_id})
            refunds = reply.result.get("refunds", []) if reply.ok else []
            state = next((r["state"] for r in refunds if r["refund_id"] == refund_id), "missing")
            if state not in ("pending", "requires_action"):
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.stuck.append(f"refund {refund_id} still {state}")
                return
            client = await self._client()
            await client.event(lambda e: (e.get("data") or {}).get("refund_id") == refund_id, min(remaining, 2.0))

    async def _cancel(self, payment_id: str, deadline: float) -> str:
        reply = await self.call("payment.cancel", {"payment_id": payment_id})
        if reply.ok and reply.result.get("state") == "canceled":
            self.world.record.cancel_accepted.add(payment_id)
        return await self.until(payment_id, NEEDS_POS - {"authorized", "declined"}, deadline)

    async def until(self, payment_id: str, states: Collection[str], deadline: float) -> str:
        """Wait for `payment_id` to reach one of `states` (READER_FAILED among them: collecting after its
        reader failed): events first, `payment.get` to re-read (events may be missed across a
        reconnect). The state it has at the deadline otherwise."""
        while True:
            reply = await self.call("payment.get", {"payment_id": payment_id})
            state = str(reply.result["state"]) if reply.ok else "missing"
            if state == "collecting" and reply.result.get("error") and READER_FAILED in states:
                state = READER_FAILED
            if state in states:
                return state
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.stuck.append(f"{payment_id} still {state}")
                return state
            client = await self._client()
            await client.event(payment_event(payment_id, "payment.state"), min(remaining, 2.0))


async def sell_safely(cashier: Cashier, order: Order) -> str | None:
    """`sell`, with a connection that ends under it (a kill) counted as the order's end."""
    try:
        return await cashier.sell(order)
    except Gone:
        cashier.client = None
        return None
