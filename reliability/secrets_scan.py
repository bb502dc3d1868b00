"""The secrets scan: the Stripe key and card numbers must appear nowhere the daemon writes or says.

Looked at: every log line of every daemon life, the store's files (database, WAL, shared memory),
every byte exchanged on the POS socket, and the daemon's state as it shows it (`status.get` and
`payment.list` answers are part of the socket traffic; the process's command line and
environment are read from /proc while it runs).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# Stripe's simulated-reader test cards (https://docs.stripe.com/terminal/references/testing): what a presented
# test card stands for. The daemon only ever holds an opaque reference, so none may show up.
TEST_CARD_NUMBERS = (
    "4242424242424242", "4000056655665556", "5555555555554444", "378282246310005", "6011111111111117",
    "4506445006931933", "4001007020000002", "4001000360000005", "4000000000000002", "4000000000009995",
    "4000000000009987", "4000000000009979", "4000000000000069", "4000000000000119",
)  # fmt: skip
ANY_SECRET_KEY = re.compile(rb"\b[sr]k_(?:test|live)_[A-Za-z0-9]{8,}")


@dataclass(frozen=True)
class Finding:
    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.what} in {self.where}"


def scan(sources: Iterable[tuple[str, bytes]], key: str) -> list[Finding]:
    """Every place (by name) where the key, a test card number or any secret-key-like word appears."""
    needles = [(key.encode(), "the Stripe key")] + [(n.encode(), f"card number {n[:4]}...") for n in TEST_CARD_NUMBERS]
    found: list[Finding] = []
    for where, data in sources:
        found += [Finding(where, what) for needle, what in needles if needle in data]
        found += [Finding(where, f"a secret key {m.group()[:12].decode()}...") for m in ANY_SECRET_KEY.finditer(data)]
    return found


def store_files(store: Path) -> list[tuple[str, bytes]]:
    """The database and its WAL and shared-memory files, as they are on disk."""
    files = [store, store.with_name(store.name + "-wal"), store.with_name(store.name + "-shm")]
    return [(f"store file {f.name}", f.read_bytes()) for f in files if f.exists()]


def process_files(pid: int) -> list[tuple[str, bytes]]:
    """The running daemon's command line and environment."""
    sources = []
    for name in ("cmdline", "environ"):
        path = Path(f"/proc/{pid}/{name}")
        if path.exists():
            sources.append((f"daemon {name}", path.read_bytes()))
    return sources
