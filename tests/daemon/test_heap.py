"""The daemon gives freed C-heap memory back to the kernel (daemon/heap.py): after a burst of large
short-lived objects, what glibc keeps free but resident is returned by the trim."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from readerhost.daemon.heap import ARENAS, limit_arenas, malloc_trim

# In a fresh interpreter: 40 MB of 1000-byte objects (each over pymalloc's limit: glibc's malloc),
# all freed but the last, which pins the heap's top so that glibc cannot shrink it by itself.
BURST = """
import sys
from readerhost.daemon.heap import ARENAS, limit_arenas, malloc_trim

def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")

burst = [bytes(1000) for _ in range(40_000)]
last = burst[-1]
del burst
before = rss_mb()
trim = malloc_trim()
assert trim is not None
trim(0)
print(before - rss_mb())
"""


@pytest.mark.skipif(malloc_trim() is None, reason="the C library has no malloc_trim (not glibc)")
def test_trimming_returns_the_free_memory_a_burst_left_resident() -> None:
    done = subprocess.run([sys.executable, "-c", BURST], capture_output=True, text=True, check=True)
    returned_mb = float(done.stdout)
    assert returned_mb > 20, f"the trim returned only {returned_mb:.1f} MB of a 40 MB burst"


# In a fresh interpreter: eight threads that each allocate from glibc's malloc while the others hold
# what they allocated; then glibc's own account of its arenas (malloc_stats, on stderr).
THREADS = """
import ctypes, os, sys, threading
from readerhost.daemon.heap import limit_arenas

if sys.argv[1] == "limit":
    assert limit_arenas(os.environ)
together = threading.Barrier(8)

def allocate():
    held = [bytes(1000) for _ in range(1000)]  # over pymalloc's 512 bytes: glibc's malloc
    together.wait()
    del held

threads = [threading.Thread(target=allocate) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
ctypes.CDLL(None).malloc_stats()
"""


def arenas_used(how: str) -> int:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    done = subprocess.run([sys.executable, "-c", THREADS, how], capture_output=True, text=True, check=True, env=env)
    return sum(1 for line in done.stderr.splitlines() if line.startswith("Arena "))


@pytest.mark.skipif(malloc_trim() is None, reason="the C library is not glibc")
def test_threads_share_one_arena_once_limited() -> None:
    assert arenas_used("default") > ARENAS, "glibc gave the threads no arenas of their own: the test proves nothing"
    assert arenas_used("limit") == ARENAS


def test_malloc_arena_max_in_the_environment_has_the_say() -> None:
    assert limit_arenas({"MALLOC_ARENA_MAX": "4"}) is False
