"""What the API layer needs of the rest of the daemon: narrow interfaces, never the daemon itself."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any, Protocol

from readerhost.daemon.payments.model import OrderClosure, PaidBy, Payment, Refund, State
from readerhost.daemon.payments.reconcile import Report
from readerhost.drivers.reader.base import Cart


class Payments(Protocol):
    """The payment service, as the POS methods use it."""

    async def start(self, params: dict[str, Any]) -> Payment: ...

    def get(self, *, payment_id: str | None = None, order_id: str | None = None) -> Payment: ...

    def list(
        self,
        *,
        states: Collection[State] | None = None,
        since: float | None = None,
        limit: int = 100,
        capture_before_lt: float | None = None,
        order_id: str | None = None,
    ) -> list[Payment]: ...

    def close_order(self, order_id: str, paid_by: PaidBy) -> tuple[OrderClosure, Sequence[Payment]]: ...

    async def confirm(self, payment_id: str) -> Payment: ...

    async def collect_again(self, payment_id: str) -> Payment: ...

    async def capture(self, payment_id: str, amount: int | None = None) -> Payment: ...

    async def cancel(self, payment_id: str, reason: str = "requested_by_customer") -> Payment: ...

    async def refund(self, params: dict[str, Any]) -> Refund: ...

    async def increment(self, params: dict[str, Any]) -> Payment: ...


class Reconciling(Protocol):
    async def run(
        self,
        *,
        completed_order_ids: Iterable[str] = (),
        since: float | None = None,
        until: float | None = None,
        dry_run: bool = True,
        unattended: bool = False,
    ) -> Report: ...


class DaemonStatus(Protocol):
    """status.get's answer, the parts of it that events.subscribe's snapshot carries, and the banner."""

    def banner(self) -> dict[str, Any]: ...

    def status(self) -> dict[str, Any]: ...

    def reader_status(self) -> dict[str, Any]: ...

    def queue_status(self) -> dict[str, Any]: ...


class TextDisplay(Protocol):
    """display.show: the idle text on the kiosk's screen."""

    def show_text(self, lines: list[str], ttl_s: float | None) -> None: ...


class ReaderOperations(Protocol):
    """What the POS may ask of the reader directly (refused with UNSUPPORTED by readers that cannot)."""

    def present_card(self, card: str) -> None: ...

    async def display_cart(self, cart: Cart) -> None: ...

    async def register(self, registration_code: str, location: str | None, label: str | None) -> dict[str, Any]: ...

    async def locations(self) -> list[dict[str, Any]]: ...

    async def pair(self) -> dict[str, Any]: ...
