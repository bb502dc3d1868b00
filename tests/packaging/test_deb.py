"""The Debian package, as a technician meets it: built by `./dev deb`, installed on a fresh Debian 12.

Two packages are built from a copy of this checkout (Debian revisions 1 and 2, offline, from the
wheelhouse `./dev deb` fills; each build runs lintian). A fresh Debian 12 root (the tarball
tests/packaging/debian12-root.sh makes) is booted with systemd-nspawn, without a network, so that
the maintainer scripts meet a real systemd: the units are enabled and started by the package,
`readerhostctl pay` goes through the running daemon, an upgrade restarts it, remove and purge leave
what docs/operations.md says. The tests run in order, each on the machine the previous one left.
piuparts checks both builds on the same root, without a network.

Skipped, with the reason, where this cannot run: not root, no systemd-nspawn, debootstrap or
dpkg-buildpackage, no wheelhouse or root tarball yet (`.ci/run` makes both), or a machine where
systemd-nspawn cannot boot a container (a chroot without mount namespaces).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WHEELHOUSE = Path(os.environ.get("READERHOST_WHEELHOUSE", REPO / "build" / "wheelhouse"))
ROOT_TARBALL = Path(os.environ.get("READERHOST_DEBIAN_ROOT", REPO / "build" / "debian12-root.tar"))
DROP_IN = "/etc/systemd/system/readerhostd.service.d/no-key.conf"
STORE = "/var/lib/readerhost/readerhost.db"
UNITS = ("readerhostd.socket", "readerhostd-jsonrpc.socket", "readerhostd.service", "readerhost-reconcile.timer")
BOOT_TIMEOUT_S = 120


def missing_prerequisite() -> str | None:
    if os.geteuid() != 0:
        return "needs root (dpkg-buildpackage, systemd-nspawn)"
    for tool, package in (("dpkg-buildpackage", "dpkg-dev"), ("systemd-nspawn", "systemd-container"),
                          ("nsenter", "util-linux"), ("lintian", "lintian")):  # fmt: skip
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt install {package})"
    if not WHEELHOUSE.is_dir() or not any(WHEELHOUSE.iterdir()):
        return f"no wheelhouse at {WHEELHOUSE}: `./dev deb` fills it (.ci/run does)"
    if not ROOT_TARBALL.is_file():
        return f"no Debian 12 root at {ROOT_TARBALL}: tests/packaging/debian12-root.sh makes it (.ci/run does)"
    return None


pytestmark = [
    pytest.mark.skipif(missing_prerequisite() is not None, reason=missing_prerequisite() or ""),
    pytest.mark.timeout(1800),
]


@dataclass(frozen=True)
class Packages:
    first: Path  # readerhost_<v>-1_<arch>.deb
    second: Path  # readerhost_<v>-2_<arch>.deb, the upgrade
    version: str  # the upstream version, from pyproject.toml


def build(checkout: Path, revision: str) -> Path:
    env = {**os.environ, "READERHOST_OFFLINE": "1", "READERHOST_WHEELHOUSE": str(WHEELHOUSE)}
    done = subprocess.run(["./dev", "deb", revision], cwd=checkout, env=env, capture_output=True, text=True,
                          timeout=900, check=False)  # fmt: skip
    assert done.returncode == 0, f"./dev deb {revision} failed:\n{done.stdout}\n{done.stderr}"
    built = sorted((checkout / "build" / "deb").glob(f"readerhost_*-{revision}_*.deb"))
    assert len(built) == 1, built
    return built[0]


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> Packages:
    """Both packages, built from a copy of this checkout's files (as git sees them, changes included)."""
    checkout = tmp_path_factory.mktemp("checkout")
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = REPO / name
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the working tree
        target = checkout / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, target)
    version = re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M)
    assert version is not None
    return Packages(build(checkout, "1"), build(checkout, "2"), version.group(1))


class Machine:
    """A Debian 12 root booted with systemd-nspawn (no network); commands run in it through nsenter."""

    def __init__(self, root: Path, log: Path) -> None:
        self.root = root
        self.log = log
        self.nspawn: subprocess.Popen[bytes] | None = None
        self.leader = 0

    def boot(self) -> str | None:
        """None once systemd runs in the container, else why it does not."""
        with self.log.open("wb") as log:
            self.nspawn = subprocess.Popen(
                ["systemd-nspawn", "--quiet", "--boot", "--register=no", "--keep-unit", "--private-network",
                 f"--directory={self.root}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        children = Path(f"/proc/{self.nspawn.pid}/task/{self.nspawn.pid}/children")
        while not self.leader:
            if self.nspawn.poll() is not None or time.monotonic() > deadline:
                return f"systemd-nspawn could not boot a container here: {self.log.read_text()[-600:]}"
            # nspawn's child becomes the container's systemd once it has set the container up.
            with contextlib.suppress(OSError, IndexError):
                child = int(children.read_text().split()[0])
                if os.readlink(f"/proc/{child}/exe").endswith("/systemd"):
                    self.leader = child
            time.sleep(0.05)  # polling /proc for the container's first process: nothing to wait on
        while True:
            # Until systemd listens on its private socket, systemctl cannot ask it anything.
            state = self.run("systemctl", "is-system-running", "--wait", timeout=BOOT_TIMEOUT_S)
            if state.stdout.strip() in ("running", "degraded"):
                return None
            if state.stdout.strip() or time.monotonic() > deadline:
                return f"the container's systemd did not come up: {state.stdout} {state.stderr}"
            time.sleep(0.1)  # nothing to wait on from outside the container

    def run(self, *command: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        env = ["env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C.UTF-8", "DEBIAN_FRONTEND=noninteractive"]
        return subprocess.run(["nsenter", f"--target={self.leader}", "--all", *env, *command], capture_output=True,
                              text=True, timeout=timeout, check=False)  # fmt: skip

    def ok(self, *command: str) -> str:
        done = self.run(*command)
        assert done.returncode == 0, f"{' '.join(command)}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done.stdout + done.stderr

    def file(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def install(self, package: Path) -> str:
        shutil.copy2(package, self.file(f"/root/{package.name}"))
        return self.ok("apt-get", "install", "-y", f"/root/{package.name}")

    def payment(self, *args: str) -> dict[str, object]:
        """The last document `readerhostctl --json ...` printed: the result."""
        lines = self.ok("readerhostctl", "--json", *args).splitlines()
        result = json.loads(lines[-1])
        payment = result.get("payment", result)
        assert isinstance(payment, dict)
        return payment

    def invocation(self) -> str:
        return self.ok("systemctl", "show", "--value", "--property=InvocationID", "readerhostd.service").strip()

    def shutdown(self) -> None:
        if self.nspawn is None:
            return
        if self.leader and self.nspawn.poll() is None:
            os.kill(self.leader, signal.SIGRTMIN + 4)  # systemd: power off
            try:
                self.nspawn.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.kill(self.leader, signal.SIGKILL)  # the container's init: its whole PID namespace goes
                self.nspawn.wait(timeout=30)


@pytest.fixture(scope="module")
def machine(tmp_path_factory: pytest.TempPathFactory, packages: Packages) -> Iterator[Machine]:
    folder = tmp_path_factory.mktemp("debian12")
    root = folder / "root"
    root.mkdir()
    with tarfile.open(ROOT_TARBALL) as tar:
        tar.extractall(root, filter="fully_trusted")  # our own root tarball, device nodes and owners included
    booted = Machine(root, folder / "nspawn.log")
    try:
        why_not = booted.boot()
        if why_not is not None:
            pytest.skip(why_not)
        yield booted
    finally:
        booted.shutdown()
        shutil.rmtree(folder, ignore_errors=True)


def venv_versions(package: Path, scratch: Path) -> dict[str, str]:
    """name -> version of every distribution in the package's venv."""
    subprocess.run(["dpkg-deb", "-x", str(package), str(scratch)], check=True)
    found: dict[str, str] = {}
    for info in scratch.glob("opt/readerhost/venv/lib/python3*/site-packages/*.dist-info"):
        name, _, version = info.name.removesuffix(".dist-info").partition("-")
        found[name.lower().replace("_", "-").replace(".", "-")] = version
    return found


def locked_versions() -> dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9._-]+)==(\S+)", (REPO / "requirements" / "kiosk.txt").read_text(), re.M)
    return {name.lower().replace("_", "-").replace(".", "-"): version for name, version in pins}


# -- the package itself ---------------------------------------------------------------------------


def test_the_package_holds_the_locked_versions_its_conffile_and_never_a_key(packages: Packages, tmp_path: Path) -> None:
    contents = subprocess.run(["dpkg-deb", "--contents", str(packages.first)], capture_output=True, text=True,
                              check=True).stdout  # fmt: skip
    assert "stripe-api-key" not in contents
    for path in ("./lib/systemd/system/readerhostd.service", "./usr/lib/sysusers.d/readerhost.conf",
                 "./usr/lib/tmpfiles.d/readerhost.conf", "./lib/udev/rules.d/99-readerhost.rules",
                 "./usr/lib/modules-load.d/readerhost.conf", "./usr/lib/systemd/catalog/readerhost.catalog",
                 "./opt/readerhost/venv/bin/readerhostd", "./usr/bin/readerhostctl"):  # fmt: skip
        assert f" {path}" in contents, path
    conffiles = subprocess.run(["dpkg-deb", "--info", str(packages.first), "conffiles"], capture_output=True,
                               text=True, check=True).stdout.split()  # fmt: skip
    assert conffiles == ["/etc/readerhost/readerhost.toml"]

    in_venv = venv_versions(packages.first, tmp_path / "first")
    locked = locked_versions()
    # systemd-python is Debian's python3-systemd (a dependency of the package), the venv sees it.
    assert locked.pop("systemd-python") == "235"
    assert {name: in_venv.get(name) for name in locked} == locked
    assert in_venv["readerhost"] == packages.version
    control = subprocess.run(["dpkg-deb", "--field", str(packages.first), "Version", "Depends"], capture_output=True,
                             text=True, check=True).stdout  # fmt: skip
    assert f"Version: {packages.version}-1" in control
    assert "python3-systemd" in control


def test_piuparts_passes_without_a_network(packages: Packages, tmp_path: Path) -> None:
    """piuparts' own checks on the fresh Debian 12 root: this build installed and purged; the previous
    build installed from a repository, upgraded to this one, removed and purged; what is left behind
    or broken each time. Its chroot's only source is a local repository, and it runs without a network."""
    if shutil.which("piuparts") is None:
        pytest.skip("piuparts is not installed (apt install piuparts adequate; .ci/run does)")
    root = tmp_path / "root"
    root.mkdir()
    with tarfile.open(ROOT_TARBALL) as tar:
        tar.extractall(root, filter="fully_trusted")  # our own root tarball, device nodes and owners included
    repository = tmp_path / "repository"  # the archive the previous build is upgraded from
    repository.mkdir()
    shutil.copy2(packages.first, repository)
    index = subprocess.run(["dpkg-scanpackages", ".", "/dev/null"], cwd=repository, capture_output=True, check=True)
    (repository / "Packages").write_bytes(index.stdout)
    (root / "etc/apt/sources.list").write_text(f"deb [trusted=yes] file://{repository} ./\n")
    shutil.rmtree(root / "var/lib/apt/lists")  # debootstrap's view of deb.debian.org

    done = subprocess.run(["unshare", "--net", "piuparts", f"--existing-chroot={root}", "--keep-sources-list",
                           "--distribution=bookworm", f"--bindmount={repository}", str(packages.second)],
                          capture_output=True, text=True, timeout=900, check=False)  # fmt: skip

    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-4000:]
    assert "PASS: Installation and purging test." in log
    assert "apt-cache knows about the following packages: readerhost" in log  # else no upgrade test
    assert "PASS: Installation, upgrade and purging tests." in log


# -- on a fresh Debian 12 -------------------------------------------------------------------------


def test_install_starts_the_daemon_on_its_embedded_defaults_and_a_payment_captures(
    machine: Machine, packages: Packages
) -> None:
    # No key: the demonstration set-up of docs/operations.md, before the package arrives.
    drop_in = machine.file(DROP_IN)
    drop_in.parent.mkdir(parents=True)
    drop_in.write_text("[Service]\nLoadCredential=\n")

    output = machine.install(packages.first)

    assert "no Stripe key" not in output  # the daemon runs: nothing to warn about
    for unit in UNITS:
        assert machine.run("systemctl", "is-enabled", unit).stdout.strip() == "enabled", unit
        assert machine.run("systemctl", "is-active", unit).stdout.strip() == "active", unit
    assert "mode emulator" in machine.ok("readerhostctl", "status")
    paid = machine.payment("pay", "1250", "--capture", "auto")
    assert (paid["state"], paid["captured_amount"]) == ("captured", 1250)

    # What sysusers.d and tmpfiles.d made, the catalog journalctl now knows, the conffile's mode.
    assert machine.ok("getent", "group", "readerhost-pos").startswith("readerhost-pos:")
    assert machine.ok("stat", "-c", "%a %U:%G", "/etc/readerhost").strip() == "750 root:readerhost"
    assert machine.ok("stat", "-c", "%a %U:%G", "/etc/readerhost/readerhost.toml").strip() == "640 root:readerhost"
    first_id = re.search(r"^-- ([0-9a-f]{32})", machine.file("/usr/lib/systemd/catalog/readerhost.catalog").read_text(),
                         re.M)  # fmt: skip
    assert first_id is not None
    assert first_id.group(1) in machine.ok("journalctl", "--list-catalog")
    assert not machine.file("/etc/readerhost/stripe-api-key").exists()


# Both sockets' first lines: the POS socket's banner, the plain socket's answer to session.hello.
FIRST_LINES = """
import json, socket
def first_line(path, send=b""):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall(send)
    line = s.makefile("rb").readline()
    s.close()
    return json.loads(line)
hello = first_line("/run/readerhost/jsonrpc.sock", b'{"jsonrpc": "2.0", "id": 7, "method": "session.hello"}\\n')
banner = first_line("/run/readerhost/api.sock")
print(json.dumps({"hello": hello, "banner": banner}))
"""


def test_systemd_starts_the_daemon_from_either_socket_and_passes_it_both(machine: Machine) -> None:
    # Stopped, the daemon is started again by the first connection to the plain JSON-RPC socket:
    # systemd passes it both sockets by name (FileDescriptorName=), and one daemon answers on both.
    machine.ok("systemctl", "stop", "readerhostd.service")
    assert machine.run("systemctl", "is-active", "readerhostd.service").stdout.strip() == "inactive"
    seen = json.loads(machine.ok("/opt/readerhost/venv/bin/python", "-c", FIRST_LINES))
    assert seen["hello"]["id"] == 7  # an answer first, not a banner
    assert seen["hello"]["result"]["protocol"] == seen["banner"]["params"]["protocol"]
    assert seen["hello"]["result"]["boot_id"] == seen["banner"]["params"]["boot_id"]  # the same daemon
    assert machine.run("systemctl", "is-active", "readerhostd.service").stdout.strip() == "active"
    journal = machine.ok("journalctl", "-b", "-u", "readerhostd.service", "-o", "cat")
    ready = [line for line in journal.splitlines() if " ready on " in line][-1]  # the start after the stop
    assert "ready on /run/readerhost/api.sock and /run/readerhost/jsonrpc.sock (plain JSON-RPC)" in ready


def test_an_upgrade_keeps_the_store_and_restarts_the_daemon(machine: Machine, packages: Packages) -> None:
    captured = machine.payment("list")
    before = machine.invocation()

    machine.install(packages.second)

    assert machine.ok("dpkg-query", "-W", "-f=${Version}", "readerhost") == f"{packages.version}-2"
    assert machine.run("systemctl", "is-active", "readerhostd.service").stdout.strip() == "active"
    assert machine.invocation() not in ("", before)  # a new start of the daemon
    assert machine.payment("list") == captured  # the same store, every payment in it


def test_remove_stops_the_units_and_keeps_the_store_and_configuration(machine: Machine) -> None:
    machine.ok("apt-get", "remove", "-y", "readerhost")

    for unit in UNITS:
        assert machine.run("systemctl", "is-active", unit).stdout.strip() != "active", unit
    for gone in ("/opt/readerhost", "/usr/bin/readerhostctl", "/lib/systemd/system/readerhostd.service"):
        assert not machine.file(gone).exists(), gone
    for kept in (STORE, "/etc/readerhost/readerhost.toml"):
        assert machine.file(kept).exists(), kept
    assert machine.file("/var/lib/readerhost/stripe-check-at-removal").read_text().startswith("verdict: settled\n")


def test_purge_deletes_a_store_with_nothing_left_for_stripe(machine: Machine) -> None:
    output = machine.ok("apt-get", "purge", "-y", "readerhost")

    assert "readerhost: deleted the payment store" in output
    assert "1 payments, 0 not settled, 0 operations still to reach Stripe" in output
    for gone in (
        "/var/lib/readerhost",
        "/etc/readerhost",
        "/etc/systemd/system/multi-user.target.wants/readerhostd.service",
    ):
        assert not machine.file(gone).exists(), gone
    assert machine.file("/opt").is_dir()  # the FHS's, though dpkg would take it with our last file
    # Debian keeps system users: the store's owner, should a kept store come back (docs/operations.md).
    assert machine.ok("getent", "passwd", "readerhost").startswith("readerhost:")


def test_purge_keeps_a_store_with_a_payment_stripe_has_not_settled(machine: Machine, packages: Packages) -> None:
    machine.install(packages.second)
    authorized = machine.payment("pay", "1250")  # manual capture: authorised, not yet captured
    assert authorized["state"] == "authorized"

    machine.ok("apt-get", "remove", "-y", "readerhost")
    output = machine.ok("apt-get", "purge", "-y", "readerhost")

    assert "readerhost: kept /var/lib/readerhost, the payment store" in output
    assert "1 payments, 1 not settled" in output
    assert machine.file(STORE).exists()
    assert not machine.file("/etc/readerhost/readerhost.toml").exists()  # the conffile goes with purge
