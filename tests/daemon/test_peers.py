"""Peer credentials: only allowed users and groups may use the socket (checked with SO_PEERCRED)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.daemon import daemon_process
from support.other_user import NOBODY, open_to_all

PROBE = """
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rwb")
first = json.loads(f.readline())
try:
    f.write(b'{"jsonrpc":"2.0","id":1,"method":"status.get"}\\n'); f.flush()
    line = f.readline()
except OSError:  # the daemon has closed the connection
    line = b""
print(json.dumps([first, json.loads(line) if line else None]))
"""

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="switching to another user needs root and setpriv"
)


def as_nobody(socket_path: Path) -> list[object]:
    done = subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", sys.executable, "-c", PROBE,
         str(socket_path)],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    answer: list[object] = json.loads(done.stdout)
    return answer


@needs_root
def test_a_peer_not_allowed_gets_forbidden_and_is_closed(tmp_path: Path) -> None:
    with daemon_process(tmp_path) as daemon:
        open_to_all(daemon.daemon_socket_path)
        first, second = as_nobody(daemon.daemon_socket_path)
        assert isinstance(first, dict)
        assert first["error"]["data"]["reason"] == "FORBIDDEN"
        assert second is None  # nothing more: the connection was closed
        daemon.log.until(lambda line: "refused client" in line and f"uid {NOBODY}" in line)


@needs_root
def test_an_allowed_group_may_use_the_socket(tmp_path: Path) -> None:
    config = f"[api]\nallowed_gids = [{NOBODY}]\n\n[reader.simulated]\npresent_after_s = -1\n"
    with daemon_process(tmp_path, config) as daemon:
        open_to_all(daemon.daemon_socket_path)
        banner, status = as_nobody(daemon.daemon_socket_path)
        assert isinstance(banner, dict)
        assert isinstance(status, dict)
        assert banner["method"] == "hello"
        assert status["result"]["mode"] == "emulator"
        daemon.log.until(lambda line: f"uid {NOBODY}): status.get" in line)
