"""The reference device's stand-in for the Terminal SDK's offline mode (protocol version 2): the
payments it stored while Stripe could not be reached, kept in a JSON file (so they survive the
device's restart, as the SDK's own store does), until each is forwarded to Stripe and the host
told. Forwarded ones are kept too (the last KEEP_FORWARDED), so that LIST_STORED can tell a host
that restarted before it heard of them."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from readerhost.sim.stripe_emulator.ids import random_token

KEEP_FORWARDED = 100


@dataclass(frozen=True)
class StoredPayment:
    offline_ref: str
    amount: int
    currency: str
    brand: str
    last4: str
    payment_method: str  # the test card the reader read
    stored_at: int
    payment_intent: str | None = None  # once forwarded
    metadata: dict[str, str] = field(default_factory=dict)  # the host's order metadata, for the PaymentIntent

    def stored_message(self) -> dict[str, object]:
        """STORED's body."""
        return {
            "offline_ref": self.offline_ref,
            "amount": self.amount,
            "currency": self.currency,
            "brand": self.brand,
            "last4": self.last4,
            "stored_at": self.stored_at,
        }


class OfflineStore:
    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._payments: list[StoredPayment] = []
        if path is not None and path.exists():
            self._payments = [StoredPayment(**item) for item in json.loads(path.read_text())]

    def store(
        self, amount: int, currency: str, brand: str, last4: str, payment_method: str, metadata: Mapping[str, str]
    ) -> StoredPayment:
        payment = StoredPayment(
            f"offline_{random_token(20)}", amount, currency, brand, last4, payment_method, int(time.time()),
            metadata=dict(metadata),
        )  # fmt: skip
        self._payments.append(payment)
        self._save()
        return payment

    def forwarded(self, offline_ref: str, payment_intent: str) -> StoredPayment:
        for i, payment in enumerate(self._payments):
            if payment.offline_ref == offline_ref:
                self._payments[i] = replace(payment, payment_intent=payment_intent)
        done = [p for p in self._payments if p.payment_intent is not None]
        for old in done[:-KEEP_FORWARDED]:
            self._payments.remove(old)
        self._save()
        return next(p for p in self._payments if p.offline_ref == offline_ref)

    @property
    def waiting(self) -> list[StoredPayment]:
        """Stored, not forwarded yet, oldest first."""
        return [p for p in self._payments if p.payment_intent is None]

    @property
    def all(self) -> list[StoredPayment]:
        return list(self._payments)

    def _save(self) -> None:
        if self._path is None:
            return
        staging = self._path.with_name(f".{self._path.name}.tmp")
        staging.write_text(json.dumps([asdict(p) for p in self._payments]))
        os.replace(staging, self._path)  # a device killed mid-write keeps the previous file
