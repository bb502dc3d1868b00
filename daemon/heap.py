"""Giving the C heap's free memory back to the kernel now and then.

glibc's malloc keeps what Python frees in its arenas (the main one, and one per worker thread) for
reuse. After a burst of large short-lived objects (a page of PaymentIntents read for a reconcile, a
`payment.list` answer of 100 payments) much of it sits free but resident for the life of the
process, and a Pi without swap cannot reclaim it. `malloc_trim(0)` returns every whole free page of
every arena. Where the C library has no malloc_trim (musl), nothing is done.
"""

from __future__ import annotations

import asyncio
import ctypes
from collections.abc import Callable

TRIM_EVERY_S = 10.0


def malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None when the C library has none."""
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


async def trim_periodically(every_s: float = TRIM_EVERY_S) -> None:
    """Trim the heap every `every_s` seconds, until cancelled (a few milliseconds on a kiosk's heap)."""
    trim = malloc_trim()
    if trim is None:
        return
    while True:
        await asyncio.sleep(every_s)
        trim(0)
