"""The systemd units, the files that go with them, and install.sh / uninstall.sh.

The units are checked by systemd's own tools (`systemd-analyze verify` and `security`) on copies whose
ExecStart= points at this checkout's venv, since verify insists that the program exists. The scripts run
with `--root` into a staging tree, with systemctl, apt and friends replaced by stand-ins that record any
call: a staging install must not touch the machine. sysusers.d and tmpfiles.d run through
systemd-sysusers and systemd-tmpfiles against a copy of this machine's user database.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from readerhost.daemon.api.listen import JSONRPC_SOCKET, POS_SOCKET
from readerhost.daemon.config import CREDENTIAL_NAME, Config, load_config, resolve_socket_path, resolve_store_path
from readerhost.daemon.payments.store import Store

REPO = Path(__file__).resolve().parents[2]
UNITS_DIR = REPO / "systemd"
INSTALL = UNITS_DIR / "install.sh"
UNINSTALL = UNITS_DIR / "uninstall.sh"
INSTALLED_BIN = "/opt/readerhost/venv/bin/"
CHECKOUT_BIN = Path(sys.prefix) / "bin"  # this checkout's .venv, where readerhostd and readerhostctl exist
UNITS = (
    "readerhostd.service",
    "readerhostd.socket",
    "readerhostd-jsonrpc.socket",
    "readerhost-reconcile.service",
    "readerhost-reconcile.timer",
)
SERVICES = ("readerhostd.service", "readerhost-reconcile.service")
UNIT_DIR = "usr/local/lib/systemd/system"
KEY = "sk_test_51ReaderhostNeverShowsThisKey0123456789abcdef"
OTHER_KEY = "rk_live_51AnotherKeyThatMustStayHidden9876543210zyx"

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_systemd_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed (Debian: apt install systemd)"
)
# Commands a staging install (--root) must never run; stand-ins on PATH record any call.
MACHINE_COMMANDS = (
    "systemctl", "apt-get", "apt-cache", "dpkg-query", "systemd-sysusers", "systemd-tmpfiles", "udevadm",
    "journalctl", "modprobe", "userdel", "groupdel", "pip", "getent", "chown",
)  # fmt: skip


# -- helpers --------------------------------------------------------------------------------------


def directives(path: Path) -> dict[str, list[str]]:
    """`Section.Key` -> every value assigned, in order (units allow a key several times)."""
    found: dict[str, list[str]] = defaultdict(list)
    section = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        found[f"{section}.{key.strip()}"].append(value.strip())
    return dict(found)


def checkout_copies(target: Path) -> dict[str, Path]:
    """The units, with the installed venv's programs replaced by this checkout's."""
    target.mkdir(parents=True, exist_ok=True)
    copies: dict[str, Path] = {}
    for name in UNITS:
        text = (UNITS_DIR / name).read_text()
        copy = target / name
        copy.write_text(text.replace(INSTALLED_BIN, f"{CHECKOUT_BIN}/"))
        copies[name] = copy
    return copies


def run_analyze(*args: str, unit_path: Path) -> subprocess.CompletedProcess[str]:
    assert SYSTEMD_ANALYZE is not None
    env = {**os.environ, "SYSTEMD_UNIT_PATH": f"{unit_path}:", "SYSTEMD_LOG_LEVEL": "info", "SYSTEMD_COLORS": "0"}
    return subprocess.run([SYSTEMD_ANALYZE, *args], capture_output=True, text=True, env=env, timeout=60, check=False)


def snapshot(root: Path) -> dict[str, tuple[str, int, str, int]]:
    """Every path under root: kind, mode, content hash (or link target) and mtime (not a folder's: that
    says only that something in it came and went, and what is in it is compared itself)."""
    entries: dict[str, tuple[str, int, str, int]] = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            kind, content = "link", os.readlink(path)
        elif stat.S_ISDIR(info.st_mode):
            kind, content = "dir", ""
        else:
            kind, content = "file", hashlib.sha256(path.read_bytes()).hexdigest()
        mtime = 0 if kind == "dir" else info.st_mtime_ns
        entries[str(path.relative_to(root))] = (kind, stat.S_IMODE(info.st_mode), content, mtime)
    return entries


class Scripts:
    """Runs install.sh / uninstall.sh with machine commands replaced by recording stand-ins."""

    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path / "root"
        self.root.mkdir()
        self.calls = tmp_path / "machine-calls.log"
        fakes = tmp_path / "fake-bin"
        fakes.mkdir()
        for name in MACHINE_COMMANDS:
            fake = fakes / name
            fake.write_text(f'#!/bin/sh\necho "{name} $*" >> "{self.calls}"\nexit 97\n')
            fake.chmod(0o755)
        # The readerhostd that reads a store before --purge: this checkout's (no venv under the root).
        readerhostd = Path(sys.executable).with_name("readerhostd")
        self.env = {**os.environ, "PATH": f"{fakes}:{os.environ['PATH']}", "LC_ALL": "C.UTF-8",
                    "READERHOSTD": str(readerhostd)}  # fmt: skip
        self.key_file = tmp_path / "stripe.key"
        self.key_file.write_text(KEY + "\n")
        self.key_file.chmod(0o600)

    def run(self, script: Path, *args: str, expect: int = 0, stdin: str | None = None) -> str:
        result = subprocess.run(
            ["bash", str(script), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=60,
            check=False,
        )
        output = result.stdout + result.stderr
        assert result.returncode == expect, f"{script.name} {' '.join(args)} exited {result.returncode}:\n{output}"
        assert not self.calls.exists(), f"a --root run touched the machine: {self.calls.read_text()}"
        return output

    def install(self, *args: str, expect: int = 0, stdin: str | None = None) -> str:
        return self.run(INSTALL, "--root", str(self.root), *args, expect=expect, stdin=stdin)

    def uninstall(self, *args: str, expect: int = 0) -> str:
        return self.run(UNINSTALL, "--root", str(self.root), *args, expect=expect)


@pytest.fixture
def scripts(tmp_path: Path) -> Scripts:
    return Scripts(tmp_path)


def make_store(path: Path, *, payment_state: str, operation_status: str) -> None:
    """A store with the daemon's real schema and one payment with one operation."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Store.open(path).close()
    now = time.time()
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO payments (payment_id, order_id, request, state, created_at, updated_at) "
            "VALUES ('pay_1', 'A-1', '{}', ?, ?, ?)",
            (payment_state, now, now),
        )
        db.execute(
            "INSERT INTO operations (payment_id, kind, idempotency_key, params, status, next_attempt_at, "
            "created_at, updated_at) VALUES ('pay_1', 'capture', 'k1', '{}', ?, ?, ?, ?)",
            (operation_status, now, now, now),
        )
    db.close()


# -- the units, by systemd's tools ----------------------------------------------------------------


@needs_systemd_analyze
@pytest.mark.parametrize("unit", UNITS)
def test_the_unit_verifies(unit: str, tmp_path: Path) -> None:
    copies = checkout_copies(tmp_path / "units")
    if unit.endswith(".service"):
        assert INSTALLED_BIN not in copies[unit].read_text()
        assert INSTALLED_BIN in (UNITS_DIR / unit).read_text()
    result = run_analyze("verify", str(copies[unit]), unit_path=tmp_path / "units")
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, f"systemd-analyze verify {unit}:\n{output}"
    # verify exits 0 on an unknown key or a bad value ("..., ignoring"): any such line is a mistake.
    lines = [line for line in output.splitlines() if not re.search(r"(user|group) .*(unknown|not found)", line, re.I)]
    assert not lines, f"systemd-analyze verify {unit} complained:\n{output}"


@needs_systemd_analyze
@pytest.mark.parametrize("service", SERVICES)
def test_the_service_is_hardened_to_1_5_or_better(service: str, tmp_path: Path) -> None:
    copy = checkout_copies(tmp_path / "units")[service]
    result = run_analyze("security", "--offline=true", "--threshold=15", str(copy), unit_path=tmp_path / "units")
    output = result.stdout + result.stderr
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", output)
    assert found, f"no exposure level in:\n{output}"
    exposed = "\n".join(line for line in output.splitlines() if line.startswith("✗"))
    assert result.returncode == 0, f"{service}: exposure {found[1]} {found[2]}, above 1.5; exposed:\n{exposed}"
    assert float(found[1]) <= 1.5, f"{service}: exposure {found[1]} {found[2]}"
    if service == "readerhostd.service":  # the figure its comment and docs/operations.md give
        assert f"rates this unit {found[1]}" in (UNITS_DIR / service).read_text()


# -- what the units promise the daemon and the Pi ---------------------------------------------------


def test_the_units_agree_with_the_daemon_and_the_installer() -> None:
    service = directives(UNITS_DIR / "readerhostd.service")
    socket = directives(UNITS_DIR / "readerhostd.socket")
    plain = directives(UNITS_DIR / "readerhostd-jsonrpc.socket")
    reconcile = directives(UNITS_DIR / "readerhost-reconcile.service")
    timer = directives(UNITS_DIR / "readerhost-reconcile.timer")

    # The protocols the daemon speaks: sd_notify from its main process, the watchdog, the "api" socket.
    assert service["Service.Type"] == ["notify"]
    assert service["Service.NotifyAccess"] == ["main"]
    assert service["Service.WatchdogSec"] == ["30"]
    assert service["Service.Sockets"] == ["readerhostd.socket readerhostd-jsonrpc.socket"]
    assert socket["Socket.FileDescriptorName"] == [POS_SOCKET]
    assert plain["Socket.FileDescriptorName"] == [JSONRPC_SOCKET]
    assert plain["Socket.Service"] == ["readerhostd.service"]
    for each in (socket, plain):  # the same daemon, the same people
        assert each["Socket.Accept"] == ["no"]
        assert (each["Socket.SocketUser"], each["Socket.SocketGroup"]) == (["readerhost"], ["readerhost-pos"])
        assert each["Socket.SocketMode"] == ["0660"]

    # The socket is where the daemon and readerhostctl look for a system service's socket, in the
    # runtime folder the service keeps across restarts; the store is where the uninstaller looks.
    runtime = "/run/" + service["Service.RuntimeDirectory"][0]
    assert socket["Socket.ListenStream"] == [
        str(resolve_socket_path(Config(), {"RUNTIME_DIRECTORY": runtime}, Path("/")))
    ]
    assert plain["Socket.ListenStream"] == [f"{runtime}/jsonrpc.sock"]  # as docs/pos-protocol.md says
    assert f"`{runtime}/jsonrpc.sock`" in (REPO / "docs/pos-protocol.md").read_text()
    assert service["Service.RuntimeDirectoryPreserve"] == ["yes"]
    # The folder must belong to readerhost before the socket appears in it: if the service's start had to
    # chown it, systemd would chown the socket too, and POS users would lose their group.
    tmpfiles = (UNITS_DIR / "tmpfiles.d/readerhost.conf").read_text()
    assert re.search(rf"^d {runtime}\s+0755 readerhost readerhost ", tmpfiles, re.MULTILINE)
    state = "/var/lib/" + service["Service.StateDirectory"][0]
    assert resolve_store_path(Config(), {"STATE_DIRECTORY": state}, Path("/nonexistent")).parent == Path(state)
    assert "STORE_DIR=/var/lib/readerhost\n" in UNINSTALL.read_text()
    assert service["Service.LoadCredential"] == [f"{CREDENTIAL_NAME}:/etc/readerhost/stripe-api-key"]
    assert service["Service.Environment"].count("GPIOZERO_PIN_FACTORY=lgpio") == 1

    # The programs are where install.sh puts them.
    assert "VENV=/opt/readerhost/venv\n" in INSTALL.read_text()
    assert service["Service.ExecStart"] == [INSTALLED_BIN + "readerhostd"]
    assert reconcile["Service.ExecStart"] == [INSTALLED_BIN + "readerhostctl reconcile --unattended"]

    # A static user (the store keeps its owner), with the Pi's hardware groups and device kinds.
    assert "Service.DynamicUser" not in service
    assert (service["Service.User"], service["Service.Group"]) == (["readerhost"], ["readerhost"])
    assert service["Service.SupplementaryGroups"] == ["dialout gpio i2c spi bluetooth"]
    assert service["Service.DevicePolicy"] == ["closed"]
    assert set(service["Service.DeviceAllow"]) == {
        "char-ttyUSB rw", "char-ttyACM rw", "char-ttyAMA rw", "/dev/ttyS0 rw", "char-gpiochip rw", "char-i2c rw",
        "char-spi rw",
    }  # fmt: skip

    # Settings that would break a Pi kiosk, each for its reason (tests/systemd/test_sandbox.py runs them).
    breaks = {
        "PrivateDevices": "hides the ttys, gpiochips and I²C/SPI buses",
        "ProcSubset": "gpiozero reads the board revision from /proc/device-tree or /proc/cpuinfo",
        "PrivateUsers": "a POS user's uid and groups would read as nobody: every POS user refused",
        "IPAddressDeny": "Stripe is on the internet",
    }
    for key, reason in breaks.items():
        assert f"Service.{key}" not in service, f"readerhostd.service must not set {key}=: {reason}"
    # A POS peer's groups come from its socket (SO_PEERGROUPS), so other users' processes may be hidden.
    assert service["Service.ProtectProc"] == ["invisible"]
    # BLE readers go through BlueZ over D-Bus (AF_UNIX): no Bluetooth sockets of the daemon's own.
    assert service["Service.RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6 AF_NETLINK"]
    assert service["Service.CapabilityBoundingSet"] == [""]
    assert service["Service.MemoryDenyWriteExecute"] == ["yes"]

    # The daily report.
    assert reconcile["Service.Type"] == ["oneshot"]
    assert reconcile["Service.SupplementaryGroups"] == ["readerhost-pos"]
    assert timer["Timer.OnCalendar"] == ["*-*-* 23:30:00"]
    assert timer["Timer.Persistent"] == ["true"]
    assert timer["Timer.RandomizedDelaySec"] == ["10min"]


def test_the_default_configuration_that_install_copies_loads() -> None:
    config = load_config(str(REPO / "config" / "readerhost.toml"), {})
    assert config.api.socket == ""  # so the socket systemd passes, or /run/readerhost/api.sock, is used
    assert config.store.path == ""  # so the store goes to $STATE_DIRECTORY


# -- install.sh and uninstall.sh in a staging root ----------------------------------------------------


@pytest.mark.parametrize("script", [INSTALL, UNINSTALL], ids=["install", "uninstall"])
def test_the_script_parses_and_explains_itself(script: Path, scripts: Scripts) -> None:
    subprocess.run(["bash", "-n", str(script)], check=True, timeout=30)
    head = script.read_text().splitlines()[:8]
    assert head[0] == "#!/usr/bin/env bash"
    assert "set -euo pipefail" in head
    assert script.stat().st_mode & stat.S_IXUSR
    usage = scripts.run(script, "--help")
    assert usage.startswith(f"Usage: {script.name}")
    assert "--root DIR" in usage
    refused = scripts.run(script, "--no-such-option", expect=2)
    assert "unknown argument: --no-such-option" in refused


def test_install_into_a_staging_root_twice_changes_nothing_the_second_time(scripts: Scripts) -> None:
    first = scripts.install("--stripe-key-file", str(scripts.key_file))
    after_first = snapshot(scripts.root)
    second = scripts.install("--stripe-key-file", str(scripts.key_file))

    assert snapshot(scripts.root) == after_first
    assert not [line for line in second.splitlines() if line.startswith(("installed ", "updated ", "linked "))]
    assert "nothing to change" in second
    assert "installed /usr/local/lib/systemd/system/readerhostd.service" in first

    root = scripts.root
    for unit in UNITS:
        installed = root / UNIT_DIR / unit
        assert installed.read_bytes() == (UNITS_DIR / unit).read_bytes()
        assert stat.S_IMODE(installed.stat().st_mode) == 0o644
    expected = {
        "usr/local/lib/sysusers.d/readerhost.conf": UNITS_DIR / "sysusers.d/readerhost.conf",
        "usr/local/lib/tmpfiles.d/readerhost.conf": UNITS_DIR / "tmpfiles.d/readerhost.conf",
        "usr/local/lib/modules-load.d/readerhost.conf": UNITS_DIR / "modules-load.d/readerhost.conf",
        "etc/udev/rules.d/99-readerhost.rules": UNITS_DIR / "udev/99-readerhost.rules",
        "usr/local/share/doc/readerhost/operations.md": REPO / "docs/operations.md",
        "etc/readerhost/readerhost.toml": REPO / "config/readerhost.toml",
    }
    if (UNITS_DIR / "readerhost.catalog").exists():
        expected["usr/local/lib/systemd/catalog/readerhost.catalog"] = UNITS_DIR / "readerhost.catalog"
    for installed_path, source in expected.items():
        assert (root / installed_path).read_bytes() == source.read_bytes(), installed_path
    assert os.readlink(root / "usr/local/bin/readerhostctl") == INSTALLED_BIN + "readerhostctl"
    assert stat.S_IMODE((root / "etc/readerhost").stat().st_mode) == 0o750
    assert stat.S_IMODE((root / "etc/readerhost/readerhost.toml").stat().st_mode) == 0o640

    key = root / "etc/readerhost/stripe-api-key"
    assert key.read_text() == KEY + "\n"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert KEY not in first + second
    leftovers = [p for p in root.rglob("*") if p.name[-7:-6] == "." and (p.parent / p.name[:-7]).exists()]
    assert not leftovers, "temporary files left behind"


def test_install_keeps_the_configuration_and_replaces_the_key_without_showing_it(scripts: Scripts) -> None:
    scripts.install("--stripe-key-file", str(scripts.key_file))
    config = scripts.root / "etc/readerhost/readerhost.toml"
    config.write_text('[stripe]\nterminal_id = "lobby-1"\n')
    new_key = scripts.key_file.with_name("new.key")
    new_key.write_text(f"  {OTHER_KEY}  \n\n")
    new_key.chmod(0o644)  # readable by others: installed, with a warning to delete it

    output = scripts.install(f"--stripe-key-file={new_key}")

    assert config.read_text() == '[stripe]\nterminal_id = "lobby-1"\n'
    assert "kept /etc/readerhost/readerhost.toml" in output
    key = scripts.root / "etc/readerhost/stripe-api-key"
    assert key.read_text() == f"  {OTHER_KEY}  \n\n"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert "updated /etc/readerhost/stripe-api-key" in output
    assert "readable by other users" in output
    assert OTHER_KEY not in output
    assert KEY not in output

    again = scripts.install()  # without the option, the installed key stays
    assert key.read_text() == f"  {OTHER_KEY}  \n\n"
    assert "nothing to change" in again


def test_install_takes_the_key_from_a_pipe(scripts: Scripts) -> None:
    output = scripts.install("--stripe-key-file", "/dev/stdin", stdin=KEY + "\n")
    assert (scripts.root / "etc/readerhost/stripe-api-key").read_text() == KEY + "\n"
    assert "installed /etc/readerhost/stripe-api-key" in output
    assert KEY not in output


@pytest.mark.parametrize(
    "content",
    ["pk_live_51PublishableKeysDoNotWork000000\n", f"{KEY}\n{OTHER_KEY}\n", f"STRIPE_API_KEY={KEY}\n", ""],
    ids=["publishable", "two-keys", "assignment", "empty"],
)
def test_install_refuses_a_file_that_is_not_one_key_before_changing_anything(scripts: Scripts, content: str) -> None:
    scripts.key_file.write_text(content)
    output = scripts.install("--stripe-key-file", str(scripts.key_file), expect=1)
    assert "does not hold a Stripe secret key" in output
    assert "its content is not shown" in output
    for secret in (KEY, OTHER_KEY, "pk_live_"):
        assert secret not in output
    assert list(scripts.root.iterdir()) == []


def test_uninstall_keeps_the_store_and_configuration_unless_purged(scripts: Scripts) -> None:
    scripts.install("--stripe-key-file", str(scripts.key_file))
    root = scripts.root
    make_store(root / "var/lib/readerhost/readerhost.db", payment_state="captured", operation_status="done")

    output = scripts.uninstall()

    assert "kept /var/lib/readerhost: the payment store" in output
    assert "kept /etc/readerhost: the configuration and the Stripe key" in output
    assert "--purge" in output
    assert (root / "var/lib/readerhost/readerhost.db").is_file()
    assert (root / "etc/readerhost/stripe-api-key").read_text() == KEY + "\n"
    assert (root / "etc/readerhost/readerhost.toml").is_file()
    for gone in (UNIT_DIR, "usr/local/lib/sysusers.d", "usr/local/lib/tmpfiles.d", "etc/udev/rules.d"):
        assert not [p for p in (root / gone).rglob("*") if p.is_file()], f"{gone} still holds files"
    assert not (root / "usr/local/bin/readerhostctl").is_symlink()
    assert not (root / "usr/local/share/doc/readerhost").exists()

    kept = snapshot(root)
    again = scripts.uninstall()
    assert snapshot(root) == kept
    assert "removed" not in again
    assert "nothing to remove" in again

    purged = scripts.uninstall("--purge")
    assert "removed /var/lib/readerhost" in purged
    assert "removed /etc/readerhost" in purged
    assert not (root / "var/lib/readerhost").exists()
    assert not (root / "etc/readerhost").exists()
    assert KEY not in output + again + purged


@pytest.mark.parametrize(
    ("payment_state", "operation_status"),
    [("authorized", "done"), ("queued_offline", "pending"), ("captured", "pending")],
)
def test_purge_refuses_while_the_store_holds_unsettled_money(
    scripts: Scripts, payment_state: str, operation_status: str
) -> None:
    scripts.install("--stripe-key-file", str(scripts.key_file))
    store = scripts.root / "var/lib/readerhost/readerhost.db"
    make_store(store, payment_state=payment_state, operation_status=operation_status)
    before = snapshot(scripts.root)

    refused = scripts.uninstall("--purge", expect=1)

    assert "refusing to --purge: /var/lib/readerhost/readerhost.db holds" in refused
    assert "--force" in refused
    assert snapshot(scripts.root) == before  # refused before anything changed
    forced = scripts.uninstall("--purge", "--force")
    assert "removed /var/lib/readerhost" in forced
    assert not store.exists()


def test_purge_refuses_a_store_it_cannot_read_before_changing_anything(scripts: Scripts) -> None:
    scripts.install("--stripe-key-file", str(scripts.key_file))
    store = scripts.root / "var/lib/readerhost/readerhost.db"
    make_store(store, payment_state="captured", operation_status="done")

    before = snapshot(scripts.root)
    scripts.env["READERHOSTD"] = str(scripts.root / "opt/readerhost/venv/bin/readerhostd")  # not installed
    unread = scripts.uninstall("--purge", expect=1)
    assert snapshot(scripts.root) == before

    scripts.env["READERHOSTD"] = str(Path(sys.executable).with_name("readerhostd"))
    store.write_bytes(b"not a database" * 100)
    before = snapshot(scripts.root)
    damaged = scripts.uninstall("--purge", expect=1)
    assert snapshot(scripts.root) == before

    assert "no readerhostd at" in unread
    assert "cannot read the payment store /var/lib/readerhost/readerhost.db" in damaged
    assert "is not a readerhost store" in damaged
    for output in (unread, damaged):
        assert "--force" in output
        assert "Traceback" not in output


# -- sysusers.d and tmpfiles.d, by systemd's tools --------------------------------------------------


@pytest.mark.skipif(shutil.which("systemd-sysusers") is None, reason="systemd-sysusers is not installed")
@pytest.mark.skipif(os.geteuid() != 0, reason="systemd-tmpfiles sets owners: needs root")
def test_sysusers_and_tmpfiles_make_the_user_groups_and_folders(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "run").mkdir()
    for name in ("passwd", "group"):
        shutil.copy(f"/etc/{name}", root / "etc" / name)
    sysusers = ["systemd-sysusers", f"--root={root}", str(UNITS_DIR / "sysusers.d/readerhost.conf")]
    subprocess.run(sysusers, check=True, capture_output=True, timeout=30)
    users = snapshot(root / "etc")
    subprocess.run(sysusers, check=True, capture_output=True, timeout=30)
    assert snapshot(root / "etc") == users  # the second run changes nothing

    passwd = {line.split(":")[0]: line.split(":") for line in (root / "etc/passwd").read_text().splitlines()}
    groups = {line.split(":")[0]: line.split(":") for line in (root / "etc/group").read_text().splitlines()}
    user = passwd["readerhost"]
    assert user[5:7] == ["/var/lib/readerhost", "/usr/sbin/nologin"]
    assert int(user[2]) < 1000, "a system user"
    assert "readerhost-pos" in groups
    assert "readerhost" in groups
    for group in ("dialout", "gpio", "i2c", "spi", "bluetooth"):
        assert "readerhost" in groups[group][3].split(","), f"readerhost not in {group}"

    (root / "etc/readerhost").mkdir(mode=0o755)
    (root / "etc/readerhost/stripe-api-key").write_text(KEY)
    (root / "etc/readerhost/stripe-api-key").chmod(0o644)
    # The configuration comes on stdin: with --root, newer systemd 252 point releases look for a
    # named file inside the root.
    tmpfiles = ["systemd-tmpfiles", f"--root={root}", "--create", "-"]
    conf = (UNITS_DIR / "tmpfiles.d/readerhost.conf").read_text()
    subprocess.run(tmpfiles, input=conf, text=True, check=True, capture_output=True, timeout=30)

    uid, gid = int(user[2]), int(groups["readerhost"][2])
    etc, run = (root / "etc/readerhost").stat(), (root / "run/readerhost").stat()
    assert (stat.S_IMODE(etc.st_mode), etc.st_uid, etc.st_gid) == (0o750, 0, gid)
    assert (stat.S_IMODE(run.st_mode), run.st_uid, run.st_gid) == (0o755, uid, gid)
    key = (root / "etc/readerhost/stripe-api-key").stat()
    assert (stat.S_IMODE(key.st_mode), key.st_uid, key.st_gid) == (0o600, 0, 0)


# -- udev -------------------------------------------------------------------------------------------


def _udevadm_verify_missing() -> bool:
    udevadm = shutil.which("udevadm")
    if udevadm is None:
        return True
    probe = subprocess.run([udevadm, "verify", "--help"], capture_output=True, timeout=30, check=False)
    return probe.returncode != 0


@pytest.mark.skipif(
    _udevadm_verify_missing(), reason="no `udevadm verify` here (it came with systemd 254; Debian 12 has 252)"
)
def test_the_udev_rules_verify() -> None:
    result = subprocess.run(
        ["udevadm", "verify", str(UNITS_DIR / "udev/99-readerhost.rules")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
