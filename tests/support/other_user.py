"""Reaching the daemon's socket as another user (uid 65534, "nobody"): tests of its peer check."""

from __future__ import annotations

import os
from pathlib import Path

NOBODY = 65534


def open_to_all(path: Path) -> None:
    """Let another user reach the socket, so that the daemon's own check is what decides."""
    path.chmod(0o666)
    for parent in path.parents:
        if parent == Path("/"):
            break
        parent.chmod(parent.stat().st_mode | 0o011)


def drop_to_nobody() -> None:
    """A subprocess's `preexec_fn`: the child runs as nobody, with no supplementary groups."""
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)
