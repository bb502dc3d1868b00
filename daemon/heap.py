"""Keeping the C heap small: few arenas, and their free memory given back to the kernel now and then.

glibc's malloc keeps what Python frees in its arenas (the main one, and up to eight per core for the
threads) for reuse. After a burst of large short-lived objects (a page of PaymentIntents read for a reconcile, a
`payment.list` answer of 100 payments) much of it sits free but resident for the life of the
process, and a Pi without swap cannot reclaim it. `malloc_trim(0)` returns every whole free page of
every arena. Where the C library has no malloc_trim (musl), nothing is done.

Each thread that allocates while the others hold their arenas gets an arena of its own, whose
high-water mark stays for the life of the process: the threads that run Stripe requests under load
each left a few MB. Python threads take turns (the GIL), so they gain nothing from arenas of their
own: `limit_arenas` lets them share one (MALLOC_ARENA_MAX=2: the main arena and one for every other
thread), unless MALLOC_ARENA_MAX is set in the environment, which glibc has then applied already.
"""

from __future__ import annotations

import asyncio
import ctypes
from collections.abc import Callable, Mapping

TRIM_EVERY_S = 10.0
ARENAS = 2  # the main thread's arena, and one shared by every other thread
_M_ARENA_MAX = -8  # mallopt's parameter number (glibc malloc.h)


def limit_arenas(env: Mapping[str, str], arenas: int = ARENAS) -> bool:
    """Cap glibc's arenas at `arenas` (before the threads start: arenas are made when a thread
    first allocates); False when MALLOC_ARENA_MAX in `env` has the say, or the C library has no mallopt."""
    if "MALLOC_ARENA_MAX" in env:
        return False
    try:
        mallopt: Callable[[int, int], int] = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return mallopt(_M_ARENA_MAX, arenas) == 1


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
