"""Logs for the fleet: the journal-upload configuration docs/operations.md gives, exercised for real.

In a private mount namespace (as tests/daemon/test_journal.py does): the real journald takes the
daemon's entries (that test's `log` child: a payment sequence through the real payment core);
systemd-journal-remote listens over HTTPS with a certificate of a CA made here; systemd-journal-upload,
configured by the documented journal-upload.conf (its placeholders replaced by this test's files),
sends the journal there; journalctl then reads the entries on the server's side, with readerhost's
fields, and explains them with readerhost's catalog installed there.

Run as a script, this file is the child that does all of that inside the namespace.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from readerhost.daemon.journal import MessageId

HERE = Path(__file__).resolve()
REPO = HERE.parents[2]
TESTS = HERE.parents[1]
JOURNAL_TEST = TESTS / "daemon" / "test_journal.py"
CATALOG = REPO / "systemd" / "readerhost.catalog"
OPERATIONS = REPO / "docs" / "operations.md"
JOURNALD = "/usr/lib/systemd/systemd-journald"
REMOTE = "/usr/lib/systemd/systemd-journal-remote"
UPLOAD = "/usr/lib/systemd/systemd-journal-upload"
UPLOAD_CONF = "/etc/systemd/journal-upload.conf"
RUNTIME_JOURNAL = "/run/log/journal"


def why_not() -> str | None:
    if os.geteuid() != 0:
        return "journald in a private mount namespace needs root"
    for program in (JOURNALD, REMOTE, UPLOAD):
        if not os.access(program, os.X_OK):
            return f"{program} is not installed (apt install systemd-journal-remote; .ci/run does)"
    for tool in ("unshare", "journalctl", "openssl", "setpriv", "mount"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not os.path.exists(UPLOAD_CONF):
        return f"no {UPLOAD_CONF} to bind the documented configuration over"
    return None


def documented_upload_conf() -> str:
    """The journal-upload.conf docs/operations.md tells a technician to write."""
    section = OPERATIONS.read_text()[OPERATIONS.read_text().index("### Shipping the journal") :]
    found = re.search(r"```ini\n# /etc/systemd/journal-upload.conf\n(.*?)```", section, re.DOTALL)
    assert found is not None, "operations.md has no journal-upload.conf example"
    return found.group(1)


def test_the_documented_upload_takes_readerhost_entries_to_journal_remote_with_their_fields(tmp_path: Path) -> None:
    reason = why_not()
    if reason is not None:
        pytest.skip(reason)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))}

    done = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable, str(HERE), str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=120, check=False)  # fmt: skip

    assert done.returncode == 0, done.stdout + done.stderr
    found = json.loads(done.stdout)
    [authorised] = [e for e in found["entries"] if e.get("PAYMENT_INTENT") == "pi_test_123"]
    assert authorised["MESSAGE_ID"] == MessageId.PAYMENT_AUTHORISED
    assert (authorised["PAYMENT_ID"], authorised["ORDER_ID"]) == ("pay_test_1", "A-1")
    assert authorised["SYSLOG_IDENTIFIER"] == "readerhostd"
    assert authorised["_TRANSPORT"] == "journal"  # as journald took it, not re-logged by the uploader
    captured = [e for e in found["entries"] if e.get("MESSAGE_ID") == MessageId.PAYMENT_CAPTURED]
    assert captured
    assert captured[0]["PAYMENT_INTENT"].startswith("pi_")
    explained = found["explained"]
    assert "Payment pay_test_1 (order A-1) authorised" in explained  # the catalog's Subject, filled in
    assert "Defined-By: readerhost" in explained
    assert not [e for e in found["entries"] if any("sk_test_" in str(value) for value in e.values())]


# -- the child, in the private mount namespace ----------------------------------------------------


def run(*command: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=True)


def make_certificates(folder: Path) -> dict[str, Path]:
    """A CA, and a certificate from it for the server (127.0.0.1) and one for the uploading kiosk."""
    ca_key, ca = folder / "ca.key", folder / "ca.pem"
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=readerhost test CA",
        "-keyout", str(ca_key), "-out", str(ca))  # fmt: skip
    made = {"ca": ca}
    for name, subject, extension in (("server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1"),
                                     ("kiosk", "/CN=kiosk-1", "extendedKeyUsage=clientAuth")):  # fmt: skip
        key, request, certificate = folder / f"{name}.key", folder / f"{name}.csr", folder / f"{name}.pem"
        run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", str(key),
            "-out", str(request))  # fmt: skip
        extensions = folder / f"{name}.ext"
        extensions.write_text(extension + "\n")
        run("openssl", "x509", "-req", "-in", str(request), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
            "-days", "2", "-extfile", str(extensions), "-out", str(certificate))  # fmt: skip
        made[f"{name}_key"], made[name] = key, certificate
    return made


def start_notified(command: list[str], folder: Path, name: str) -> subprocess.Popen[bytes]:
    """A systemd service's program, started as systemd would, once it says READY=1."""
    ready = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ready.bind(str(folder / f"{name}.notify"))
    ready.settimeout(10)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFY_", "WATCHDOG_", "LISTEN_"))}
    env.update(NOTIFY_SOCKET=str(folder / f"{name}.notify"), SYSTEMD_LOG_TARGET="console")
    with (folder / f"{name}.log").open("w") as log:
        process = subprocess.Popen(["setpriv", "--pdeathsig", "TERM", *command], env=env, stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=log)  # fmt: skip
    try:
        while b"READY=1" not in ready.recv(4096):
            pass
    except TimeoutError:
        process.terminate()
        raise RuntimeError(f"{name} did not start: {(folder / f'{name}.log').read_text()}") from None
    finally:
        ready.close()
    return process


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def child(folder: Path) -> int:
    # Hide the host's /run, journal and catalog database, and never write to them.
    for target in ("/run", "/var/log/journal", "/var/lib/systemd/catalog"):
        if os.path.isdir(target):
            subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", target], check=True)
    os.makedirs("/run/systemd/journal")
    os.makedirs(RUNTIME_JOURNAL)
    started: list[subprocess.Popen[bytes]] = []
    try:
        started.append(start_notified([JOURNALD], folder, "journald"))
        logged = subprocess.run([sys.executable, str(JOURNAL_TEST), "log", str(folder)], capture_output=True,
                                text=True, timeout=60, check=False)  # fmt: skip
        if logged.returncode != 0:
            print(logged.stdout, logged.stderr, file=sys.stderr)
            return 1
        run("journalctl", "--sync")

        certificates = make_certificates(folder)
        port = free_port()
        received = folder / "remote"
        received.mkdir()
        started.append(start_notified(
            [REMOTE, f"--listen-https=127.0.0.1:{port}", f"--key={certificates['server_key']}",
             f"--cert={certificates['server']}", f"--output={received}/"],
            folder, "journal-remote",
        ))  # fmt: skip

        # The documented configuration, with this test's address and files in place of the examples.
        conf = documented_upload_conf()
        for setting, value in (("URL", f"https://127.0.0.1:{port}"), ("ServerKeyFile", certificates["kiosk_key"]),
                               ("ServerCertificateFile", certificates["kiosk"]),
                               ("TrustedCertificateFile", certificates["ca"])):  # fmt: skip
            conf, count = re.subn(rf"(?m)^{setting}=.*$", f"{setting}={value}", conf)
            assert count == 1, f"the documented journal-upload.conf has no {setting}="
        (folder / "journal-upload.conf").write_text(conf)
        run("mount", "--bind", str(folder / "journal-upload.conf"), UPLOAD_CONF)
        upload = subprocess.run([UPLOAD, "-D", RUNTIME_JOURNAL, "--follow=no", f"--save-state={folder}/upload.state"],
                                capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
        if upload.returncode != 0:
            print("journal-upload failed:", upload.stdout, upload.stderr, file=sys.stderr)
            print((folder / "journal-remote.log").read_text(), file=sys.stderr)
            return 1

        # The server's journalctl, with readerhost's catalog installed there as the package installs it.
        run("mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", "/usr/local/lib")  # where install.sh puts it
        os.makedirs("/usr/local/lib/systemd/catalog")
        shutil.copy(CATALOG, "/usr/local/lib/systemd/catalog/readerhost.catalog")
        run("journalctl", "--update-catalog")
        entries = run("journalctl", "-D", str(received), "-o", "json", "--all", "--no-pager").stdout
        explained = run("journalctl", "-D", str(received), "-x", "--no-pager", "PAYMENT_INTENT=pi_test_123").stdout
        print(json.dumps({"entries": [json.loads(line) for line in entries.splitlines() if line.strip()],
                          "explained": explained}))  # fmt: skip
        return 0
    finally:
        for process in reversed(started):
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)


if __name__ == "__main__":
    started_at = time.monotonic()
    sys.exit(child(Path(sys.argv[1])))
