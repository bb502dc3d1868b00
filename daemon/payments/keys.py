"""Idempotency keys: derived from what they protect, committed before the request that uses them.

The create key is derived from the terminal, the order and the order's attempt, so one attempt can
never get two PaymentIntents (architecture invariant 1); an order paid again gets a new attempt,
and with it a new key. The other keys name the payment, the operation and its attempt. A key that
has to be replaced after learning the truth gets a generation suffix.
"""

from __future__ import annotations

import hashlib
from urllib.parse import quote

MAX_KEY_LENGTH = 255  # Stripe's limit


def create_key(terminal_id: str, order_id: str, order_attempt: int) -> str:
    # Each part is escaped so that no two (terminal, order, attempt) can spell the same key.
    key = f"readerhost:{quote(terminal_id, safe='')}:{quote(order_id, safe='')}:{order_attempt}:create"
    if len(key) <= MAX_KEY_LENGTH - 8:  # room for a generation suffix
        return key
    digest = hashlib.sha256(f"{terminal_id}\0{order_id}\0{order_attempt}".encode()).hexdigest()
    return f"readerhost:create:{digest}"


def operation_key(payment_id: str, kind: str, attempt: int | None = None) -> str:
    return f"{payment_id}:{kind}" if attempt is None else f"{payment_id}:{kind}:{attempt}"


def refund_key(payment_id: str, refund_id: str, *, at_reader: bool = False) -> str:
    """The key of a refund: one per refund id, so that a refund id can never make two refunds."""
    kind = "reader_refund" if at_reader else "refund"
    key = f"{payment_id}:{kind}:{quote(refund_id, safe='')}"
    if len(key) <= MAX_KEY_LENGTH - 8:  # room for a generation suffix
        return key
    return f"{payment_id}:{kind}:{hashlib.sha256(refund_id.encode()).hexdigest()}"


def increment_key(payment_id: str, increment_id: str) -> str:
    """The key of an increment: one per increment id, so that an increment id is sent as one request."""
    key = f"{payment_id}:increment:{quote(increment_id, safe='')}"
    if len(key) <= MAX_KEY_LENGTH - 8:  # room for a generation suffix
        return key
    return f"{payment_id}:increment:{hashlib.sha256(increment_id.encode()).hexdigest()}"


def next_generation(key: str) -> str:
    """The key to use once the truth is known and the operation must be sent anew."""
    base, marker, generation = key.rpartition(":r")
    if marker and generation.isdigit():
        return f"{base}:r{int(generation) + 1}"
    return f"{key}:r2"
