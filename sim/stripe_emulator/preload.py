"""PaymentIntents an account already holds, made in-process: a fleet's history for benchmarks and tests.

A kiosk's account is shared with hundreds of others: what it looks for must be found among hundreds
of thousands of PaymentIntents it did not make. Building those over HTTP would take longer than what
is measured, so they are built here and handed to `StripeEmulator.preload_payment_intents`.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from .payment_intents import PaymentIntent


@dataclass(frozen=True)
class PreloadedIntent:
    """One PaymentIntent as an earlier create left it: created at `created`, in `status`."""

    id: str
    created: int
    amount: int = 1000
    currency: str = "usd"
    status: str = "succeeded"
    metadata: dict[str, str] = field(default_factory=dict)

    def build(self, seq: int) -> PaymentIntent:
        received = self.amount if self.status == "succeeded" else 0
        return PaymentIntent(
            id=self.id,
            seq=seq,
            amount=self.amount,
            currency=self.currency,
            capture_method="manual",
            created=self.created,
            payment_method_types=["card_present"],
            allowed_payment_method_types=["card_present"],
            metadata=dict(self.metadata),
            description=None,
            receipt_email=None,
            statement_descriptor_suffix=None,
            client_secret=f"{self.id}_secret_{self.id[3:]}",
            status=self.status,
            amount_received=received,
        )


def fleet_history(
    count: int, *, since: int, until: int, terminals: int = 300, seed: int = 0
) -> Iterator[PreloadedIntent]:
    """`count` PaymentIntents of `terminals` other kiosks, created evenly in [since, until), captured,
    each carrying readerhost's metadata (payment_id, order_id, terminal_id) as a kiosk's would."""
    chooser = random.Random(seed)
    span = max(until - since, 1)
    for n in range(count):
        terminal = f"kiosk-{chooser.getrandbits(32) % terminals:04d}"
        yield PreloadedIntent(
            id=f"pi_{chooser.getrandbits(120):030x}",  # not ids.new_id: 200,000 of those take seconds
            created=since + n * span // count,
            amount=100 + chooser.getrandbits(32) % 9_900,
            metadata={"payment_id": f"pay_fleet{n:08d}", "order_id": f"order-{n}", "terminal_id": terminal},
        )
