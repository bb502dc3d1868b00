"""Peer credentials: only allowed users and groups may use the socket (checked with SO_PEERCRED, and
the supplementary groups with SO_PEERGROUPS: from the socket, never from /proc)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from support.daemon import daemon_process
from support.other_user import NOBODY, open_to_all, shared_folder

from readerhost.daemon.api.server import Peer, PeerPolicy

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


# Groups no user of this machine is in, for a peer's primary and supplementary groups.
POS_GROUP, OTHER_GROUP, DAEMON_USER = 4242, 4243, 4244


def as_nobody(socket_path: Path, groups: tuple[int, ...] = ()) -> list[object]:
    """The probe as uid and primary group nobody, in `groups` as its supplementary groups."""
    in_groups = f"--groups={','.join(map(str, groups))}" if groups else "--clear-groups"
    done = subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", in_groups, sys.executable, "-c", PROBE,
         str(socket_path)],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    answer: list[object] = json.loads(done.stdout)
    return answer


@needs_root
def test_a_peer_not_allowed_gets_forbidden_and_is_closed() -> None:
    with shared_folder() as folder, daemon_process(folder) as daemon:
        open_to_all(daemon.daemon_socket_path)
        first, second = as_nobody(daemon.daemon_socket_path)
        assert isinstance(first, dict)
        assert first["error"]["data"]["reason"] == "FORBIDDEN"
        assert second is None  # nothing more: the connection was closed
        daemon.log.until(lambda line: "refused client" in line and f"uid {NOBODY}" in line)


@needs_root
def test_an_allowed_group_may_use_the_socket() -> None:
    config = f"[api]\nallowed_gids = [{NOBODY}]\n\n[reader.simulated]\npresent_after_s = -1\n"
    with shared_folder() as folder, daemon_process(folder, config) as daemon:
        open_to_all(daemon.daemon_socket_path)
        banner, status = as_nobody(daemon.daemon_socket_path)
        assert isinstance(banner, dict)
        assert isinstance(status, dict)
        assert banner["method"] == "hello"
        assert status["result"]["mode"] == "emulator"
        daemon.log.until(lambda line: f"uid {NOBODY}): status.get" in line)


@needs_root
def test_a_peers_supplementary_groups_come_from_its_socket() -> None:
    with shared_folder() as folder, socket.socket(socket.AF_UNIX) as listening:
        path = folder / "peer.sock"
        listening.bind(str(path))
        listening.listen()
        open_to_all(path)
        # The peer connects and waits to be told to go, so that its credentials are read while it runs.
        peer = subprocess.Popen(
            ["setpriv", f"--reuid={NOBODY}", f"--regid={OTHER_GROUP}", f"--groups={POS_GROUP},{NOBODY}",
             sys.executable, "-c", "import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); "
             "s.recv(1)", str(path)],
        )  # fmt: skip
        try:
            connection, _ = listening.accept()
            with connection:
                seen = Peer.of(connection)
                connection.sendall(b".")
        finally:
            assert peer.wait(timeout=30) == 0
    assert (seen.pid, seen.uid, seen.gid) == (peer.pid, NOBODY, OTHER_GROUP)
    assert seen.groups == {POS_GROUP, NOBODY}
    assert PeerPolicy(allowed_gids=frozenset({POS_GROUP})).allows(seen)
    assert not PeerPolicy(allowed_gids=frozenset({POS_GROUP + 100})).allows(seen)


def _hidden_proc_unavailable() -> str | None:
    """Why the daemon cannot be run here as ProtectProc=invisible runs it, or None."""
    for tool in ("unshare", "mount", "setpriv"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if os.geteuid() != 0:
        return "a private /proc mount and another user need root"
    probe = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c",
         f"mount -t proc -o hidepid=invisible proc /proc && exec setpriv --reuid={DAEMON_USER} "
         f"--regid={DAEMON_USER} --clear-groups test ! -e /proc/1"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    return f"/proc with hidepid=invisible in a mount namespace: {probe.stderr.strip()}" if probe.returncode else None


@pytest.mark.skipif(_hidden_proc_unavailable() is not None, reason=str(_hidden_proc_unavailable()))
def test_a_supplementary_group_is_allowed_under_protect_proc_invisible() -> None:
    """readerhostd.service sets ProtectProc=invisible: systemd mounts the service's /proc with
    hidepid=invisible, where the daemon (not root) sees no other user's process. Run so, the daemon
    must still let in a POS user who is in an allowed group as a supplementary group only."""
    hidden_proc = ("unshare", "-m", "--propagation", "private", "sh", "-c",
                   'mount -t proc -o hidepid=invisible proc /proc && exec "$@"', "sh",
                   "setpriv", f"--reuid={DAEMON_USER}", f"--regid={DAEMON_USER}", "--clear-groups")  # fmt: skip
    config = f"[api]\nallowed_gids = [{POS_GROUP}]\n\n[reader.simulated]\npresent_after_s = -1\n"
    with shared_folder(owner=DAEMON_USER) as folder, daemon_process(folder, config, wrapper=hidden_proc) as daemon:
        open_to_all(daemon.daemon_socket_path)
        banner, status = as_nobody(daemon.daemon_socket_path, groups=(POS_GROUP,))
        refused, _ = as_nobody(daemon.daemon_socket_path, groups=(OTHER_GROUP,))
        assert isinstance(banner, dict)
        assert isinstance(status, dict)
        assert isinstance(refused, dict)
        assert banner["method"] == "hello"
        assert status["result"]["mode"] == "emulator"
        assert refused["error"]["data"]["reason"] == "FORBIDDEN"
        daemon.log.until(lambda line: f"uid {NOBODY}): status.get" in line)
