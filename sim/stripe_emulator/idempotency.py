"""Idempotency keys as Stripe keeps them.

Once a request starts executing, its first response (402s and 500s included) is saved under
its key and replayed for every later request with that key, marked `Idempotent-Replayed`.
The same key with other parameters (or another endpoint) is an idempotency error; a key whose
first request is still executing answers 409. Keys are forgotten 24 hours (of emulator time)
after their first use.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

from .errors import idempotency_in_flight, idempotency_mismatch

KEY_LIFETIME_S = 24 * 3600
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class SavedResponse:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class _KeyRecord:
    fingerprint: str
    first_used_at: float
    response: SavedResponse | None = None  # None while the first request is executing


def fingerprint(method: str, path: str, params: dict[str, Any]) -> str:
    return json.dumps([method, path, params], sort_keys=True)


class IdempotencyStore:
    def __init__(self) -> None:
        self._records: dict[str, _KeyRecord] = {}
        self._lock = threading.Lock()

    def begin(self, key: str, request_fingerprint: str, now: float) -> SavedResponse | None:
        """Claim a key for a request: the saved response to replay, or None to execute it.

        Raises the StripeError Stripe answers with for a mismatched key or one in flight.
        """
        with self._lock:
            record = self._records.get(key)
            if record is not None and now - record.first_used_at >= KEY_LIFETIME_S:
                record = None  # expired: the key is new again
            if record is None:
                self._records[key] = _KeyRecord(request_fingerprint, now)
                return None
            if record.fingerprint != request_fingerprint:
                raise idempotency_mismatch(key)
            if record.response is None:
                raise idempotency_in_flight()
            return record.response

    def save(self, key: str, response: SavedResponse) -> None:
        with self._lock:
            record = self._records.get(key)
            if record is not None:
                record.response = response

    def release(self, key: str) -> None:
        """Forget a claimed key whose request never started executing (nothing saved)."""
        with self._lock:
            record = self._records.get(key)
            if record is not None and record.response is None:
                del self._records[key]

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
