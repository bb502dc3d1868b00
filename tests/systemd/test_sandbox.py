"""The sandbox settings readerhostd.service leaves out, each run to show why.

There is no systemd manager here to start the unit, so each setting is reproduced with the kernel
feature systemd builds it from: PrivateUsers=yes is a user namespace mapping only root and the
service's own user and group (support/private_users.py); ProcSubset=pid is a /proc mount with
subset=pid in a private mount namespace. ProtectProc=invisible, which the unit sets, is run the same
way in tests/daemon/test_peers.py.
"""

from __future__ import annotations

import ast
import json
import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.daemon import daemon_process
from support.other_user import NOBODY, open_to_all, shared_folder

REPO = Path(__file__).resolve().parents[2]
PRIVATE_USERS = Path(__file__).resolve().parents[1] / "support" / "private_users.py"
# Ids no user of this machine has: the daemon's user, a POS user, and the groups they are in.
DAEMON_USER, POS_USER, POS_GROUP, HARDWARE_GROUP = 4244, 4246, 4242, 4247
OVERFLOW_ID = 65534  # what an unmapped id reads as in a user namespace (/proc/sys/kernel/overflowuid)

PROBE = """
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
print(json.dumps(json.loads(s.makefile("rb").readline())))
"""


def _private_users_unavailable() -> str | None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        return "mapping other users into a user namespace needs root (and setpriv for the peers)"
    probe = subprocess.run(
        [sys.executable, str(PRIVATE_USERS), str(DAEMON_USER), str(DAEMON_USER), "", "id", "-u"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    return f"no user namespace here: {probe.stderr.strip()}" if probe.returncode else None


needs_private_users = pytest.mark.skipif(
    _private_users_unavailable() is not None, reason=str(_private_users_unavailable())
)


def _first_line_as(uid: int, gid: int, groups: tuple[int, ...], socket_path: Path) -> dict[str, object]:
    done = subprocess.run(
        ["setpriv", f"--reuid={uid}", f"--regid={gid}", f"--groups={','.join(map(str, groups))}", sys.executable,
         "-c", PROBE, str(socket_path)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    first: dict[str, object] = json.loads(done.stdout)
    return first


@needs_private_users
def test_private_users_would_refuse_every_pos_user() -> None:
    """Why the unit does not set PrivateUsers=yes: a POS user's uid and groups read as nobody."""
    wrapper = (sys.executable, str(PRIVATE_USERS), str(DAEMON_USER), str(DAEMON_USER), str(HARDWARE_GROUP))
    allowed = f"[api]\nallowed_uids = [{POS_USER}]\nallowed_gids = [{POS_GROUP}]\n"
    config = allowed + "\n[reader.simulated]\npresent_after_s = -1\n"
    with shared_folder(owner=DAEMON_USER) as folder, daemon_process(folder, config, wrapper=wrapper) as daemon:
        open_to_all(daemon.daemon_socket_path)
        by_group = _first_line_as(NOBODY, NOBODY, (POS_GROUP,), daemon.daemon_socket_path)
        by_user = _first_line_as(POS_USER, POS_USER, (POS_USER,), daemon.daemon_socket_path)
        for first in (by_group, by_user):
            error = first.get("error")
            assert isinstance(error, dict), first
            assert error["data"]["reason"] == "FORBIDDEN"
        # Both were seen as nobody: the allowed user and group cannot be told apart from anyone.
        for _ in (by_group, by_user):
            assert f"uid {OVERFLOW_ID})" in daemon.log.until(lambda line: "refused client" in line)


@needs_private_users
def test_private_users_keeps_device_access_by_group() -> None:
    """What PrivateUsers=yes would not break: a device opened through a hardware group (a serial
    reader's tty is root:dialout 0660), though the group reads as nobody inside."""
    leader, follower = pty.openpty()
    try:
        tty = Path(os.ttyname(follower))
        os.chown(tty, 0, HARDWARE_GROUP)
        tty.chmod(0o660)
        opens = "import sys; open(sys.argv[1], 'r+b', buffering=0).write(b'ok'); import os; print(os.getgroups())"
        base = (str(DAEMON_USER), str(DAEMON_USER))
        done = subprocess.run(
            [sys.executable, str(PRIVATE_USERS), *base, str(HARDWARE_GROUP), sys.executable, "-c", opens, str(tty)],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        refused = subprocess.run(
            [sys.executable, str(PRIVATE_USERS), *base, "", sys.executable, "-c", opens, str(tty)],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert ast.literal_eval(done.stdout.strip()) == [OVERFLOW_ID]  # the group, unmapped, still opens it
        assert os.read(leader, 2) == b"ok"
        assert refused.returncode != 0
        assert "Permission denied" in refused.stderr
    finally:
        os.close(leader)
        os.close(follower)


def _proc_subset_unavailable() -> str | None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return "a private /proc mount needs root and unshare"
    probe = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "mount", "-t", "proc", "-o", "subset=pid", "proc", "/proc"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    return f"/proc with subset=pid: {probe.stderr.strip()}" if probe.returncode else None


@pytest.mark.skipif(_proc_subset_unavailable() is not None, reason=str(_proc_subset_unavailable()))
def test_proc_subset_pid_hides_the_board_revision() -> None:
    """Why the unit does not set ProcSubset=pid: gpiozero's pin factories learn which Pi they run on
    from /proc/device-tree or /proc/cpuinfo, and subset=pid hides both."""
    reads = (
        "from gpiozero.pins.local import get_pi_revision\n"
        "try:\n    print(get_pi_revision())\n"
        "except Exception as e:\n    print(type(e).__name__, getattr(e, 'filename', ''))"
    )
    subset = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c",
         'mount -t proc -o subset=pid proc /proc && exec "$@"', "sh", sys.executable, "-c", reads],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    plain = subprocess.run([sys.executable, "-c", reads], capture_output=True, text=True, timeout=60, check=True)
    assert subset.stdout.split() == ["FileNotFoundError", "/proc/cpuinfo"]
    # Without it, /proc/cpuinfo is read: a Pi finds its revision there (elsewhere, no Pi revision is in it).
    assert "FileNotFoundError" not in plain.stdout


def test_nothing_the_daemon_runs_opens_a_bluetooth_socket() -> None:
    """Why the unit leaves AF_BLUETOOTH out of RestrictAddressFamilies=: neither the daemon and its
    drivers nor the BLE stack it runs on a Pi (bleak's BlueZ backend, dbus-fast) create one. BlueZ is
    reached over D-Bus (AF_UNIX); the GATT sockets it hands over (AcquireNotify) arrive already open,
    and the filter applies only to socket(2) and socketpair(2)."""
    import bleak
    import dbus_fast

    roots = [REPO / "daemon", REPO / "drivers", Path(bleak.__file__).parent, Path(dbus_fast.__file__).parent]
    sources = [path for root in roots for path in root.rglob("*.py")]
    assert len(sources) > 100, "the sources were not found"
    opening = [str(path) for path in sources if any(w in path.read_text() for w in ("AF_BLUETOOTH", "BTPROTO_"))]
    assert not opening, f"these create Bluetooth sockets, which readerhostd.service forbids: {opening}"
    bluez = (Path(bleak.__file__).parent / "backends" / "bluezdbus" / "client.py").read_text()
    assert '"AcquireNotify"' in bluez  # the sockets BlueZ opens for bleak come through D-Bus
