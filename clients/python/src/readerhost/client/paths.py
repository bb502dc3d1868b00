"""Where the daemon's socket is, found the way readerhostd decides it (daemon/config.py's
resolve_socket_path), from a client's point of view.

A client cannot see the daemon's configuration file or its systemd environment, so:
$READERHOST_SOCKET (relative paths from the working folder), else the system service's
/run/readerhost/api.sock when it exists, else $XDG_RUNTIME_DIR/readerhost/api.sock (a daemon
run by this user), else ./readerhost-api.sock. A daemon configured with `[api] socket` elsewhere
is reached with READERHOST_SOCKET or an explicit path.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

SOCKET_ENV = "READERHOST_SOCKET"
SYSTEM_SOCKET = Path("/run/readerhost/api.sock")  # RuntimeDirectory=readerhost in the system unit
SOCKET_NAME = "api.sock"
CWD_SOCKET_NAME = "readerhost-api.sock"


def default_socket_path(
    env: Mapping[str, str] | None = None, cwd: Path | None = None, *, system_socket: Path = SYSTEM_SOCKET
) -> Path:
    """The socket to connect to when none is given (env defaults to os.environ, cwd to the working folder)."""
    env = os.environ if env is None else env
    if env.get(SOCKET_ENV):
        return (Path.cwd() if cwd is None else cwd) / env[SOCKET_ENV]
    if system_socket.exists():
        return system_socket
    runtime = _first_dir(env.get("XDG_RUNTIME_DIR", ""))
    if runtime is not None:
        return runtime / "readerhost" / SOCKET_NAME
    return (Path.cwd() if cwd is None else cwd) / CWD_SOCKET_NAME


def _first_dir(value: str) -> Path | None:
    """The first of colon-separated directories, if absolute (XDG says to ignore a relative one)."""
    first = value.split(":", 1)[0]
    return Path(first) if first and os.path.isabs(first) else None
