"""Binding the API socket: a stale socket file from a dead daemon is replaced, a live one is not."""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from pathlib import Path

# The names systemd passes the sockets under (FileDescriptorName= of readerhostd.socket and
# readerhostd-jsonrpc.socket): the POS socket with its banner, and the plain JSON-RPC socket.
POS_SOCKET = "api"
JSONRPC_SOCKET = "jsonrpc"


class SocketInUse(RuntimeError):
    pass


def bind_unix_socket(path: Path, mode: int = 0o660) -> socket.socket:
    """A listening socket at `path` (group read/write: POS users are given the daemon's group)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
    if path.exists() or path.is_symlink():
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise SocketInUse(f"{path} exists and is not a socket: refusing to replace it")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink()  # nobody answers: a socket left by a daemon that died
        else:
            raise SocketInUse(f"another readerhostd is already serving {path}")
        finally:
            probe.close()
    listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listening.bind(str(path))
        os.chmod(path, mode)
        listening.listen(64)
    except OSError:
        listening.close()
        with contextlib.suppress(OSError):
            path.unlink()
        raise
    listening.setblocking(False)
    return listening
