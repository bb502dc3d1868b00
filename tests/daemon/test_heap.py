"""The daemon gives freed C-heap memory back to the kernel (daemon/heap.py): after a burst of large
short-lived objects, what glibc keeps free but resident is returned by the trim."""

from __future__ import annotations

import subprocess
import sys

import pytest

from readerhost.daemon.heap import malloc_trim

# In a fresh interpreter: 40 MB of 1000-byte objects (each over pymalloc's limit: glibc's malloc),
# all freed but the last, which pins the heap's top so that glibc cannot shrink it by itself.
BURST = """
import sys
from readerhost.daemon.heap import malloc_trim

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
