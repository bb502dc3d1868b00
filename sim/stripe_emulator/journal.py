"""The journal of mutations the emulator executed: what Stripe applied, never a replay."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class JournalEntry:
    seq: int
    at: int
    op: str
    object: str
    idempotency_key: str | None
    status: str
    amount: int | None
    metadata: dict[str, str]
    # What a refund is of (refund entries only): the PaymentIntent and charge it gives money back from.
    payment_intent: str | None = None
    charge: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Journal:
    def __init__(self) -> None:
        self._entries: list[JournalEntry] = []
        self._lock = threading.Lock()
        self._recorded = threading.Condition(self._lock)

    def record(
        self,
        *,
        at: int,
        op: str,
        object_id: str,
        idempotency_key: str | None,
        status: str,
        amount: int | None,
        metadata: dict[str, str],
        payment_intent: str | None = None,
        charge: str | None = None,
    ) -> JournalEntry:
        with self._lock:
            entry = JournalEntry(
                len(self._entries) + 1,
                at,
                op,
                object_id,
                idempotency_key,
                status,
                amount,
                dict(metadata),
                payment_intent,
                charge,
            )
            self._entries.append(entry)
            self._recorded.notify_all()
            return entry

    def entries(self, since: int = 0) -> list[JournalEntry]:
        """Entries with a sequence number greater than `since`."""
        with self._lock:
            return self._entries[since:]

    def wait_for(self, op: str, timeout: float) -> bool:
        """Block until an entry of `op` is recorded (True), or the timeout passes (False): a test waits
        for a request the emulator still holds to be carried out."""
        with self._recorded:
            return self._recorded.wait_for(lambda: any(entry.op == op for entry in self._entries), timeout)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
