"""Storage whose syncs cost what an SD card's do, for a daemon under benchmark.

This machine offers no device-mapper (no `dm-delay`) and a loop device cannot be told to be slow to
sync; what it does allow is a shim preloaded into the daemon (LD_PRELOAD) that makes every
`fsync`/`fdatasync` wait `delay_ms` before doing the real one. It is built here with gcc when the
benchmark runs. It models the one cost that decides a kiosk's payment time — the sync each commit
waits for — and nothing else: reads, and writes without a sync, stay as fast as this machine's.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

# What one sync costs on an SD card, assumed and said why: the SD Association's Application
# Performance Class A1 guarantees 500 random 4 KB writes a second, 2 ms each, and a Pi's host
# controller does not give an A2 card the command queue and cache it needs to do better. A commit's
# fdatasync writes its WAL frames (a payment's commit changes several 4 KB pages) and waits for the
# card to flush them: a few such writes, 5 ms taken as the middle of it.
SD_SYNC_MS = 5.0
SD_SYNC_SOURCE = (
    "the shim in `bench/slow_storage.py` (this machine has no device-mapper for a dm-delay device). "
    "5 ms is an assumed figure: the SD Association's A1 class guarantees 500 random 4 KB writes a "
    "second (2 ms each; a Pi does not give an A2 card what it needs to do better), and a commit's "
    "sync writes several pages of the WAL and waits for the card's flush."
)

SHIM_SOURCE = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <time.h>

/* Every fsync/fdatasync of the process waits READERHOST_BENCH_SYNC_DELAY_US first. */
static void slow_down(void) {
    const char *text = getenv("READERHOST_BENCH_SYNC_DELAY_US");
    long us = text ? atol(text) : 0;
    struct timespec left = {us / 1000000, (us % 1000000) * 1000};
    while (nanosleep(&left, &left) == -1 && errno == EINTR) {
    }
}

int fsync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    slow_down();
    return real(fd);
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    slow_down();
    return real(fd);
}
"""


def build_shim(folder: Path) -> Path:
    """Compile the shim into `folder`; the path of the shared object."""
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        raise RuntimeError("the slow-storage row needs gcc (apt install gcc) to build its shim")
    source, library = folder / "slow_sync.c", folder / "slow_sync.so"
    source.write_text(SHIM_SOURCE)
    subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-o", str(library), str(source), "-ldl"], check=True)
    return library


def slow_sync_wrapper(folder: Path, delay_ms: float) -> list[str]:
    """A command prefix (for `bench.support.readerhostd`'s wrapper) that runs the daemon with each
    of its syncs `delay_ms` slower."""
    library = build_shim(folder)
    return ["env", f"LD_PRELOAD={library}", f"READERHOST_BENCH_SYNC_DELAY_US={round(delay_ms * 1000)}"]
