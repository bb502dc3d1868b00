"""The simulated POS: orders drawn from the seed, each driven through the service by what the store
says it is now, so that an order survives a crash of the core (the POS reconnects and asks again).

What the POS asks is written into the run's PosRecord before it can matter, as reliability/cashier.py
does: a capture as "maybe" when sent and as asked once accepted, a cancel once answered `canceled`."""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass, field

from readerhost.daemon.payments.model import Payment, RequestRefused, State
from readerhost.daemon.payments.validation import InvalidRequest
from reliability.cashier import APPROVING, DECLINING
from reliability.simulation.world import World

CARD = "pm_card_present_"


@dataclass
class Order:
    order_id: str
    amount: int
    card: str
    automatic: bool
    on_decline: str  # "again" (another card for the same PaymentIntent) or "cancel"
    then: str  # once authorised: "capture", "partial", "cancel" or "leave"
    cancel_while_collecting: bool
    refunds: int
    increment_by: int  # > 0: started incremental, and once authorised the hold is raised by this much
    increment_declined: bool  # the issuer declines that raise (the emulator's decline_increments)
    attempts: int  # how many attempts the POS makes at most: it pays again an order whose attempt ended
    # What has happened to it so far (the POS's own memory: it survives the core's crashes).
    starts: int = 0
    cards: int = 0
    refunds_asked: list[str] = field(default_factory=list)
    increment_asked: bool = False
    reader_failures: int = 0
    done: bool = False


def draw_order(rng: random.Random, number: int) -> Order:
    amount = rng.randrange(100, 9_999)
    if amount % 100 in (1, 2, 3, 5, 55, 60, 65, 75):  # Stripe's declining test amounts: only by choice
        amount += 10
    automatic = rng.random() < 0.15
    return Order(
        order_id=f"S-{number:03d}",
        amount=amount,
        card=rng.choice(DECLINING) if rng.random() < 0.2 else rng.choice(APPROVING),
        automatic=automatic,
        on_decline=rng.choice(("again", "again", "cancel")),
        then=rng.choices(("capture", "partial", "cancel", "leave"), weights=(55, 20, 15, 10))[0],
        cancel_while_collecting=rng.random() < 0.05,
        refunds=rng.choices((0, 1, 2), weights=(50, 35, 15))[0],
        increment_by=rng.randrange(100, 2_000) if not automatic and rng.random() < 0.12 else 0,
        increment_declined=rng.random() < 0.4,
        attempts=rng.choices((1, 2, 3), weights=(70, 25, 5))[0],
    )


class Cashier:
    """Sells its orders one after the other on the world's current core."""

    def __init__(self, world: World, orders: list[Order]) -> None:
        self.world = world
        self.orders = orders
        self.rng = world.rng["pos"]

    async def run(self) -> None:
        for order in self.orders:
            while not order.done:
                life = self.world.life
                assert life is not None
                life.changed.clear()
                await self._step(order)
                if not order.done:
                    await self._wait(life.changed)

    async def _step(self, order: Order) -> None:
        life = self.world.life
        assert life is not None
        payment = life.store.payment_by_order(order.order_id)
        if payment is None:
            await self._start(order)
            return
        state = payment.state
        if state in (State.CANCELED, State.FAILED) and payment.order_attempt < order.attempts:
            await self._start(order)  # the order paid again: its next attempt (payments.md)
            return
        if state in (State.CANCELED, State.FAILED) or (state is State.AUTHORIZED and order.then == "leave"):
            order.done = True
            return
        if state is State.COLLECTING and not life.reader.waiting and payment.error is not None:
            # The reader failed this collection; the payment waits for the POS (pos-protocol.md).
            await self._ask(order, "collect_again", payment)
            return
        if state is State.COLLECTING and life.reader.waiting:
            if order.cancel_while_collecting:
                order.cancel_while_collecting = False
                await self._ask(order, "cancel", payment)
            elif self.rng.random() < 0.05 and order.reader_failures < 2:
                order.reader_failures += 1
                self.world.note(f"{order.order_id}: the reader fails")
                life.reader.fail("READER_UNAVAILABLE", "the reader's link was lost during the collection")
            else:
                card = order.card if order.cards == 0 else self.rng.choice(APPROVING)
                order.cards += 1
                self.world.note(f"{order.order_id}: card {card} presented")
                life.reader.present(CARD + card)
            return
        if state is State.DECLINED:
            if order.on_decline == "again" and order.cards < 3:
                await self._ask(order, "collect_again", payment)
            else:
                await self._ask(order, "cancel", payment)
            return
        if state is State.AUTHORIZED:
            if order.increment_by and not order.increment_asked:
                await self._increment(order, payment)
            else:
                await self._ask(order, order.then, payment)
            return
        if state is State.CAPTURED:
            if len(order.refunds_asked) < order.refunds:
                await self._refund(order, payment)
            else:
                order.done = True
            return

    async def _start(self, order: Order) -> None:
        life = self.world.life
        assert life is not None
        params: dict[str, object] = {"order_id": order.order_id, "amount": order.amount, "currency": "usd"}
        if order.automatic:
            params["capture"] = "automatic"
        if order.increment_by:
            params["incremental"] = True
        try:
            payment = await life.service.start(params)
        except RequestRefused as refused:
            self.world.note(f"{order.order_id}: start refused {refused.reason}")
            if not refused.retryable:
                order.done = True
            await asyncio.sleep(self.rng.uniform(1.0, 30.0))  # the POS tries again later
            return
        order.starts += 1
        if order.automatic:
            self.world.record.automatic.add(payment.payment_id)
        self._told(payment)
        self.world.note(f"{order.order_id}: started, attempt {payment.order_attempt}")

    async def _ask(self, order: Order, what: str, payment: Payment) -> None:
        life = self.world.life
        assert life is not None
        service, record, payment_id = life.service, self.world.record, payment.payment_id
        self.world.note(f"{order.order_id}: {what}")
        try:
            if what in ("capture", "partial"):
                whole = payment.authorised_amount
                amount = whole if what == "capture" else self.rng.randrange(50, whole)
                record.capture_maybe.add(payment_id)
                answer = await service.capture(payment_id, amount)
                record.capture_asked[payment_id] = amount
            elif what == "cancel":
                answer = await service.cancel(payment_id)
                if answer.state is State.CANCELED:
                    record.cancel_accepted.add(payment_id)
            else:
                answer = await service.collect_again(payment_id)
        except (RequestRefused, InvalidRequest) as refused:
            self.world.note(f"{order.order_id}: {what} refused: {refused}")
            return
        self._told(answer)

    async def _refund(self, order: Order, payment: Payment) -> None:
        life = self.world.life
        assert life is not None
        refund_id = f"{order.order_id}-R{len(order.refunds_asked)}"
        last = len(order.refunds_asked) == order.refunds - 1
        params: dict[str, object] = {"payment_id": payment.payment_id, "refund_id": refund_id}
        if not last:
            params["amount"] = max(1, payment.captured_amount // 3)
        self.world.record.refund_maybe.add(refund_id)
        self.world.note(f"{order.order_id}: refund {refund_id}")
        try:
            refund = await life.service.refund(params)
        except (RequestRefused, InvalidRequest) as refused:
            self.world.note(f"{order.order_id}: refund refused: {refused}")
            order.refunds_asked.append(refund_id)  # the POS gives up on this one
            return
        order.refunds_asked.append(refund_id)
        self.world.record.refund_asked[refund_id] = (payment.payment_id, refund.amount)
        self.world.record.refunds_told.add((refund.refund_id, refund.state.value))

    async def _increment(self, order: Order, payment: Payment) -> None:
        life = self.world.life
        assert life is not None
        order.increment_asked = True
        amount = payment.authorised_amount + order.increment_by
        declined = ", which the issuer declines" if order.increment_declined else ""
        self.world.note(f"{order.order_id}: increment to {amount}{declined}")
        if order.increment_declined:  # the next increment to reach Stripe is declined, whichever it is
            self.world.emulator.decline_increments(1)
        params: dict[str, object] = {
            "payment_id": payment.payment_id,
            "increment_id": f"{order.order_id}-I",
            "amount": amount,
        }
        try:
            self._told(await life.service.increment(params))
        except (RequestRefused, InvalidRequest) as refused:
            self.world.note(f"{order.order_id}: increment refused: {refused}")

    def _told(self, payment: Payment) -> None:
        self.world.record.told.add((payment.payment_id, payment.state.value))

    async def _wait(self, changed: asyncio.Event) -> None:
        """Until the core publishes something, or a while passes (the POS looks again)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), timeout=self.rng.uniform(0.5, 5.0))
