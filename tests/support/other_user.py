"""Reaching the daemon's socket as another user (uid 65534, "nobody"): tests of its peer check."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

NOBODY = 65534


@contextlib.contextmanager
def shared_folder(owner: int | None = None) -> Iterator[Path]:
    """A folder every user may pass through (owned by `owner`, if given), removed after. Not under
    pytest's tmp_path: any pytest that starts on this machine sets its root back to 0700, which would
    shut another user out in the middle of a test."""
    folder = Path(tempfile.mkdtemp(prefix="rh-users-"))
    try:
        folder.chmod(0o711)
        if owner is not None:
            os.chown(folder, owner, owner)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


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
