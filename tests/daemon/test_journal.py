"""The journal: the fields JournalHandler gives libsystemd, the message catalog through journalctl,
and the daemon's entries read back from the real systemd-journald (which also shows libsystemd's
encoding: values with newlines, an entry too large for one datagram).

The real journald runs, as root, in a private mount namespace with tmpfs over /run (and over
/var/log/journal), so that neither the host's journal nor its /run is seen or touched. Run as a
script, this file is the two child processes of that test: `namespace` (mounts, starts journald,
runs `log`, reads the entries back with journalctl and prints them) and `log` (logs as the daemon
does: configure_logging, then a payment sequence through the real payment core).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import EmulatorHandle
from support.daemon import LineClient, running_daemon
from support.payments_core import running_core

from readerhost.daemon.journal import JournalHandler, MessageId, configure_logging, journal_field, under_journald
from readerhost.daemon.payments.model import State, rfc3339
from readerhost.sim.stripe_emulator import running_emulator

HERE = Path(__file__).resolve()
TESTS = HERE.parents[1]
CATALOG = HERE.parents[2] / "systemd" / "readerhost.catalog"
JOURNALD = "/usr/lib/systemd/systemd-journald"
JOURNAL_SOCKET = "/run/systemd/journal/socket"
RUNTIME_JOURNAL = "/run/log/journal"
BIG = 300 * 1024


# -- what JournalHandler sends (libsystemd's sd_journal_sendv carries it to journald) ------------


class FieldRecorder(JournalHandler):
    """JournalHandler with each entry's fields recorded, as `emit` would give them to libsystemd."""

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[list[tuple[str, bytes]]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.entries.append([(name, field_bytes(name, value)) for name, value in self.fields(record)])


def field_bytes(name: str, value: Any) -> bytes:
    data = journal_field(name, value)
    assert data.startswith(name.encode() + b"=")
    return data[len(name) + 1 :]


@dataclass
class Journal:
    handler: FieldRecorder
    logger: logging.Logger

    def entry(self) -> dict[str, bytes]:
        (fields,) = self.handler.entries[-1:]
        return dict(fields)

    def names(self) -> list[str]:
        return [name for name, _ in self.handler.entries[-1]]


@pytest.fixture
def journal() -> Journal:
    handler = FieldRecorder()
    logger = logging.Logger("readerhost.test")  # not registered anywhere: no global state
    logger.setLevel(1)  # everything, even below DEBUG
    logger.addHandler(handler)
    return Journal(handler, logger)


def test_a_record_carries_the_standard_fields(journal: Journal) -> None:
    line = sys._getframe().f_lineno + 1
    journal.logger.info("payment %s captured", "pay_1")

    entry = journal.entry()
    assert journal.names() == [
        "MESSAGE",
        "PRIORITY",
        "SYSLOG_IDENTIFIER",
        "LOGGER",
        "CODE_FILE",
        "CODE_LINE",
        "CODE_FUNC",
    ]
    assert entry["MESSAGE"] == b"payment pay_1 captured"
    assert entry["PRIORITY"] == b"6"
    assert entry["SYSLOG_IDENTIFIER"] == b"readerhostd"
    assert entry["LOGGER"] == b"readerhost.test"
    assert entry["CODE_FILE"] == __file__.encode()
    assert entry["CODE_LINE"] == str(line).encode()
    assert entry["CODE_FUNC"] == b"test_a_record_carries_the_standard_fields"


def test_structured_fields_come_from_extra_journal_and_only_valid_names_are_sent(journal: Journal) -> None:
    fields: dict[str, Any] = {
        "PAYMENT_ID": "pay_1",
        "ORDER_ID": "A-1",
        "PAYMENT_INTENT": "pi_1",
        "READER_ID": "reader-1",
        "PEER_PID": 4321,
        "PEER_UID": 1000,
        "QUEUE_DEPTH": 3,
        "MESSAGE_ID": MessageId.PAYMENT_CAPTURED,
        "lower": "dropped",
        "MIXED_case": "dropped",
        "DASH-ED": "dropped",
        "_PID": "1",  # journald's own trusted fields cannot be forged
        "9LIVES": "dropped",
        "A" * 65: "dropped",
        "MESSAGE": "never replaces the message",
        "PRIORITY": 0,
        "NOTHING": None,
    }
    journal.logger.info("captured", extra={"journal": fields, "api_key": "sk_test_never_sent"})

    entry = journal.entry()
    assert journal.names() == [
        "MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "LOGGER", "CODE_FILE", "CODE_LINE", "CODE_FUNC",
        "PAYMENT_ID", "ORDER_ID", "PAYMENT_INTENT", "READER_ID", "PEER_PID", "PEER_UID", "QUEUE_DEPTH", "MESSAGE_ID",
    ]  # fmt: skip
    assert entry["MESSAGE"] == b"captured"
    assert entry["PRIORITY"] == b"6"
    assert entry["PEER_PID"] == b"4321"
    assert entry["QUEUE_DEPTH"] == b"3"
    assert entry["MESSAGE_ID"] == b"f6e746b28cc248e9898de0100f63710e"
    assert not any(b"sk_test_" in value for value in entry.values())  # other record attributes never travel


def test_values_keep_their_newlines_and_bytes(journal: Journal) -> None:
    journal.logger.warning("first line\nsecond line", extra={"journal": {"ORDER_ID": "A\n1", "READER_ID": b"r\x00\n"}})

    entry = journal.entry()
    assert entry["MESSAGE"] == b"first line\nsecond line"
    assert entry["ORDER_ID"] == b"A\n1"
    assert entry["READER_ID"] == b"r\x00\n"


def test_an_exception_travels_in_the_message_with_its_traceback(journal: Journal) -> None:
    try:
        raise ValueError("the reader said no")
    except ValueError:
        journal.logger.exception("reader trouble")

    entry = journal.entry()
    assert entry["PRIORITY"] == b"3"
    assert entry["MESSAGE"].startswith(b"reader trouble\nTraceback (most recent call last):\n")
    assert entry["MESSAGE"].endswith(b"ValueError: the reader said no")


@pytest.mark.parametrize(
    ("level", "priority"),
    [(logging.DEBUG, 7), (logging.INFO, 6), (logging.WARNING, 4), (logging.ERROR, 3), (logging.CRITICAL, 2),
     (5, 7), (25, 6), (45, 3), (60, 2)],
)  # fmt: skip
def test_log_levels_map_to_syslog_priorities(journal: Journal, level: int, priority: int) -> None:
    journal.logger.log(level, "at %d", level)

    assert journal.entry()["PRIORITY"] == str(priority).encode()


# -- under_journald and configure_logging ------------------------------------------------------


def test_under_journald_when_journal_stream_names_our_stderr(tmp_path: Path) -> None:
    with (tmp_path / "stderr").open("w") as stderr, (tmp_path / "other").open("w") as other:
        mine, theirs = os.fstat(stderr.fileno()), os.fstat(other.fileno())
        fd = stderr.fileno()
        missing = str(tmp_path / "no-socket")
        assert under_journald({"JOURNAL_STREAM": f"{mine.st_dev}:{mine.st_ino}"}, stderr_fd=fd, socket_path=missing)
        assert not under_journald({"JOURNAL_STREAM": f"{theirs.st_dev}:{theirs.st_ino}"}, stderr_fd=fd)
        assert not under_journald({"JOURNAL_STREAM": "garbage"}, stderr_fd=fd, socket_path=missing)
        assert not under_journald({}, stderr_fd=fd, socket_path=missing)


def test_under_journald_when_a_unit_has_the_journal_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "journal.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listening:
        listening.bind(path)  # where journald's socket would be
        assert under_journald({"INVOCATION_ID": "c0ffee" * 5 + "00"}, socket_path=path)
        assert not under_journald({"INVOCATION_ID": "c0ffee" * 5 + "00"}, socket_path=str(tmp_path / "none"))
        assert not under_journald({"INVOCATION_ID": ""}, socket_path=path)
        assert not under_journald({}, socket_path=path)


CONFIGURE = """
import logging, sys
from readerhost.daemon.journal import configure_logging
configure_logging(sys.argv[1], {})
logging.getLogger("readerhostd").info("started")
logging.getLogger("readerhostd").debug("details")
logging.getLogger("stripe").info("Request to Stripe api")
logging.getLogger("stripe").debug("body with a client secret")
logging.getLogger("stripe").warning("stripe warns")
"""


@pytest.mark.parametrize(
    ("level", "lines"),
    [
        ("info", ["INFO readerhostd: started", "WARNING stripe: stripe warns"]),
        ("warning", ["WARNING stripe: stripe warns"]),
        ("debug", ["INFO readerhostd: started", "DEBUG readerhostd: details", "INFO stripe: Request to Stripe api",
                   "WARNING stripe: stripe warns"]),
    ],
)  # fmt: skip
def test_without_journald_logs_are_stderr_lines_and_stripe_is_kept_quiet(level: str, lines: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("JOURNAL_STREAM", "INVOCATION_ID")}
    done = subprocess.run(
        [sys.executable, "-c", CONFIGURE, level], env=env, capture_output=True, text=True, timeout=30, check=True
    )
    assert done.stderr.splitlines() == lines
    assert done.stdout == ""


# -- the daemon's log calls carry their fields -------------------------------------------------


async def payment_sequence(emulator: EmulatorHandle, db: Path) -> dict[str, str]:
    """As the daemon does it: one payment authorised and captured, then one taken while Stripe is
    down, stored offline and forwarded when it is back. Returns the payment ids by order."""
    async with running_core(emulator, db) as core:
        online = await core.authorise("J-1")
        await core.service.capture(online.payment_id)
        await core.until_state(online.payment_id, State.CAPTURED)
        emulator.emulator.add_fault({"path": ".", "action": "down"})
        offline = await core.service.start(
            {"order_id": "J-2", "amount": 1200, "currency": "usd", "offline": "prefer_online"}
        )
        await core.until_collecting()
        core.reader.present("pm_card_present_visa")
        await core.until_state(offline.payment_id, State.QUEUED_OFFLINE)
        await core.until(lambda: not core.worker.health.reachable, what="Stripe to count as unreachable")
        emulator.emulator.faults.clear()
        await core.until_state(offline.payment_id, State.AUTHORIZED)
        await core.until(lambda: core.worker.health.reachable, what="Stripe to count as reachable")
        return {"J-1": online.payment_id, "J-2": offline.payment_id}


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "journal", None)
    assert isinstance(fields, dict), record.getMessage()
    return fields


def test_payment_and_worker_log_calls_carry_their_journal_fields(
    stripe_emulator: EmulatorHandle, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="readerhost")
    ids = asyncio.run(payment_sequence(stripe_emulator, tmp_path / "store.db"))

    told = [(r.levelno, fields_of(r)) for r in caplog.records if r.name.startswith("readerhost.daemon.payments.")
            and hasattr(r, "journal")]  # fmt: skip
    by_id: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for level, fields in told:
        by_id.setdefault(str(fields.get("MESSAGE_ID")), []).append((level, fields))

    [(_, authorised)] = by_id[MessageId.PAYMENT_AUTHORISED]
    assert authorised["PAYMENT_ID"] == ids["J-1"]
    assert authorised["ORDER_ID"] == "J-1"
    assert authorised["PAYMENT_INTENT"].startswith("pi_")
    # The capture deadline: readable in the message, its raw value in a field.
    deadline = int(authorised["CAPTURE_BEFORE_UNIX"])
    [message] = [
        r.getMessage()
        for r in caplog.records
        if getattr(r, "journal", {}).get("MESSAGE_ID") == MessageId.PAYMENT_AUTHORISED
    ]
    assert message.endswith(f"authorised; capture before {rfc3339(deadline)}")
    [(_, captured)] = by_id[MessageId.PAYMENT_CAPTURED]
    assert captured["PAYMENT_ID"] == ids["J-1"]
    [(_, stored)] = by_id[MessageId.OFFLINE_STORED]
    assert (stored["PAYMENT_ID"], stored["ORDER_ID"]) == (ids["J-2"], "J-2")
    [(_, forwarded)] = by_id[MessageId.OFFLINE_FORWARDED]
    assert forwarded["PAYMENT_ID"] == ids["J-2"]
    assert forwarded["PAYMENT_INTENT"].startswith("pi_")
    [(level, unreachable)] = by_id[MessageId.STRIPE_UNREACHABLE]
    assert level == logging.WARNING
    assert unreachable["QUEUE_DEPTH"] >= 1
    [(level, back)] = by_id[MessageId.STRIPE_BACK]
    assert level == logging.INFO
    assert isinstance(back["QUEUE_DEPTH"], int)
    transitions = [f for _, f in told if "PAYMENT_ID" in f]
    assert all(f["ORDER_ID"] in ("J-1", "J-2") for f in transitions)
    assert not any("_secret_" in str(value) for _, f in told for value in f.values())


def test_each_request_is_logged_with_the_peers_pid_and_uid(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async with running_daemon(tmp_path) as daemon:
            client = await LineClient.connect(daemon.socket_path)
            await client.receive()
            await client.call("status.get")
            await client.close()

    caplog.set_level(logging.INFO, logger="readerhost.daemon.api.server")
    asyncio.run(asyncio.wait_for(scenario(), 30))

    [request] = [r for r in caplog.records if r.getMessage().endswith(": status.get")]
    assert fields_of(request) == {"PEER_PID": os.getpid(), "PEER_UID": os.getuid()}
    [connected] = [r for r in caplog.records if r.getMessage().endswith(" connected")]
    assert fields_of(connected) == {"PEER_PID": os.getpid(), "PEER_UID": os.getuid()}


# -- the message catalog -----------------------------------------------------------------------


def catalog_entries() -> dict[str, str]:
    text = "\n".join(line for line in CATALOG.read_text().splitlines() if not line.startswith("#"))
    entries = {}
    for block in text.split("\n-- ")[1:]:
        head, _, body = block.partition("\n")
        entries[head.strip()] = body
    return entries


def test_the_catalog_explains_every_message_id_for_technicians() -> None:
    entries = catalog_entries()
    assert sorted(entries) == sorted(m.value for m in MessageId)
    for message_id, body in entries.items():
        headers, _, text = body.partition("\n\n")
        assert headers.splitlines()[0].startswith("Subject: "), message_id
        assert "Defined-By: readerhost" in headers.splitlines(), message_id
        assert "Support: see /usr/local/share/doc/readerhost/operations.md" in headers.splitlines(), message_id
        assert len(text.split()) >= 10, message_id
    for message_id in MessageId:
        assert len(message_id.value) == 32
        assert int(message_id.value, 16) >= 0
        assert message_id.value == message_id.value.lower()


def test_journalctl_compiles_the_catalog_and_lists_every_id(tmp_path: Path) -> None:
    journalctl = shutil.which("journalctl")
    if journalctl is None:
        pytest.skip("journalctl is not installed")
    usage = subprocess.run([journalctl, "--help"], capture_output=True, text=True, timeout=10, check=False).stdout
    if "--root" not in usage or "--update-catalog" not in usage:
        pytest.skip("this journalctl has no --root or no --update-catalog")
    folder = tmp_path / "usr" / "lib" / "systemd" / "catalog"
    folder.mkdir(parents=True)
    shutil.copy(CATALOG, folder / "readerhost.catalog")

    subprocess.run([journalctl, f"--root={tmp_path}", "--update-catalog"], check=True, timeout=30)
    listed = subprocess.run(
        [journalctl, f"--root={tmp_path}", "--list-catalog"], capture_output=True, text=True, check=True, timeout=30
    ).stdout

    lines = {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in listed.splitlines()}
    assert sorted(lines) == sorted(m.value for m in MessageId)
    assert all(subject.startswith("readerhost: ") for subject in lines.values())


# -- the real journald -------------------------------------------------------------------------


def field_text(value: Any) -> str:
    """A field of `journalctl -o json`: a string, bytes as a list of numbers, or a list of values."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, int) for v in value):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, list):
        return "\n".join(field_text(v) for v in value)
    return json.dumps(value)


def usable_namespace() -> str | None:
    """Why the real-journald test cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "starting journald in a private mount namespace needs root"
    for tool in ("unshare", "journalctl", "mount", "setpriv"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not os.access(JOURNALD, os.X_OK):
        return f"{JOURNALD} is not installed"
    probe = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "mount", "-t", "tmpfs", "tmpfs", "/run"],
        capture_output=True, text=True, timeout=10, check=False,
    )  # fmt: skip
    if probe.returncode != 0:
        return f"unshare -m with a tmpfs mount failed: {probe.stderr.strip()}"
    return None


def test_the_real_journald_keeps_the_fields_and_never_a_secret(tmp_path: Path) -> None:
    reason = usable_namespace()
    if reason is not None:
        pytest.skip(reason)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))}
    started = time.monotonic()
    done = subprocess.run(
        ["unshare", "-m", "--propagation", "private", sys.executable, str(HERE), "namespace", str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    ids: dict[str, str] = found["payments"]
    everything = [{name: field_text(value) for name, value in e.items()} for e in found["all"]]
    ours = [e for e in everything if e.get("SYSLOG_IDENTIFIER") == "readerhostd"]

    [by_intent] = found["by_intent"]
    entry = {name: field_text(value) for name, value in by_intent.items()}
    assert entry["MESSAGE"] == "payment pay_test_1 (order A-1): processing -> authorized: authorised"
    assert entry["PAYMENT_INTENT"] == "pi_test_123"
    assert entry["PAYMENT_ID"] == "pay_test_1"
    assert entry["ORDER_ID"] == "A-1"
    assert entry["MESSAGE_ID"] == MessageId.PAYMENT_AUTHORISED
    assert entry["PRIORITY"] == "6"
    assert entry["SYSLOG_IDENTIFIER"] == "readerhostd"
    assert entry["LOGGER"] == "readerhost.daemon.payments.service"
    assert entry["CODE_FILE"] == str(HERE)
    assert entry["CODE_FUNC"] == "log_child"
    assert entry["_TRANSPORT"] == "journal"

    authorised = [{name: field_text(value) for name, value in e.items()} for e in found["by_message_id"]]
    assert {e["ORDER_ID"] for e in authorised} == {"A-1", "J-1"}
    [online] = [e for e in authorised if e["ORDER_ID"] == "J-1"]
    assert online["PAYMENT_ID"] == ids["J-1"]
    assert online["PAYMENT_INTENT"].startswith("pi_")
    assert online["CODE_FUNC"] == "commit"  # Ledger.commit: every change of state is logged there

    def with_id(message_id: MessageId) -> dict[str, str]:
        [one] = [e for e in ours if e.get("MESSAGE_ID") == message_id]
        return one

    assert with_id(MessageId.PAYMENT_CAPTURED)["PAYMENT_ID"] == ids["J-1"]
    assert with_id(MessageId.OFFLINE_STORED)["PAYMENT_ID"] == ids["J-2"]
    assert with_id(MessageId.OFFLINE_FORWARDED)["PAYMENT_ID"] == ids["J-2"]
    unreachable = with_id(MessageId.STRIPE_UNREACHABLE)
    assert (unreachable["MESSAGE"], unreachable["PRIORITY"]) == ("Stripe is unreachable", "4")
    assert int(unreachable["QUEUE_DEPTH"]) >= 1
    back = with_id(MessageId.STRIPE_BACK)
    assert (back["MESSAGE"], back["PRIORITY"]) == ("Stripe is reachable again", "6")

    [trouble] = [e for e in ours if e["MESSAGE"].startswith("reader trouble")]
    assert trouble["PRIORITY"] == "3"
    assert trouble["READER_ID"] == "reader\nwith a newline"
    assert "Traceback (most recent call last):\n" in trouble["MESSAGE"]
    [big] = [e for e in ours if e.get("PAYMENT_ID") == "pay_big"]
    assert big["MESSAGE"] == "x" * BIG  # sent as a memfd: journald took it
    assert any(e.get("LOGGER") == "stripe" for e in ours)  # the library's request lines were in the journal too

    secrets = [(name, value) for e in everything for name, value in e.items() if "sk_test_" in name + value]
    assert secrets == []
    client_secrets = [(name, value) for e in everything for name, value in e.items() if "_secret_" in value]
    assert client_secrets == []
    assert elapsed < 15, f"the real-journald test took {elapsed:.1f} s"


# -- the children of the real-journald test ----------------------------------------------------


def journalctl(*match: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        ["journalctl", "-D", RUNTIME_JOURNAL, "-o", "json", "--all", "--no-pager", *match],
        capture_output=True, text=True, timeout=10, check=False,
    )  # fmt: skip
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def namespace_child(workdir: Path) -> int:
    """In the private mount namespace: journald on tmpfs, the `log` child, then the entries."""
    for target in ("/run", "/var/log/journal"):  # hide the host's, and never write to it
        if os.path.isdir(target):
            subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", target], check=True)
    os.makedirs(os.path.dirname(JOURNAL_SOCKET))
    os.makedirs(RUNTIME_JOURNAL)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFY_", "WATCHDOG_", "LISTEN_"))}
    env["SYSTEMD_LOG_TARGET"] = "console"  # journald's own messages to its stderr, not to the host's kernel log
    # journald says READY=1 over sd_notify once it serves, as it does to systemd: wait for that.
    ready = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ready.bind(str(workdir / "notify.sock"))
    ready.settimeout(5)
    env["NOTIFY_SOCKET"] = str(workdir / "notify.sock")
    with (workdir / "journald.log").open("w") as journald_log:
        journald = subprocess.Popen(
            ["setpriv", "--pdeathsig", "TERM", JOURNALD],  # it dies with us, whatever happens
            env=env, stdin=subprocess.DEVNULL, stdout=journald_log, stderr=journald_log,
        )  # fmt: skip
    try:
        try:
            while b"READY=1" not in ready.recv(4096):
                pass
        except TimeoutError:
            print("journald did not start:", (workdir / "journald.log").read_text(), file=sys.stderr)
            return 1
        logged = subprocess.run(
            [sys.executable, __file__, "log", str(workdir)], capture_output=True, text=True, timeout=20, check=False
        )
        if logged.returncode != 0:
            print(logged.stdout, logged.stderr, file=sys.stderr)
            return 1
        subprocess.run(["journalctl", "--sync"], capture_output=True, timeout=10, check=False)
        # journalctl reads the files journald writes; the last line logged appears once they are flushed.
        deadline = time.monotonic() + 5
        while not journalctl(f"MESSAGE_ID={MessageId.DAEMON_STOPPING}"):
            if time.monotonic() > deadline:
                print("the entries never showed up", file=sys.stderr)
                return 1
            time.sleep(0.05)
        print(
            json.dumps(
                {
                    "payments": json.loads(logged.stdout),
                    "by_intent": journalctl("PAYMENT_INTENT=pi_test_123"),
                    "by_message_id": journalctl(f"MESSAGE_ID={MessageId.PAYMENT_AUTHORISED}"),
                    "all": journalctl(),
                }
            )
        )
        return 0
    finally:
        journald.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            journald.wait(5)


def log_child(workdir: Path) -> int:
    """Log as the daemon does, under a systemd unit (INVOCATION_ID) with journald's socket at hand."""
    configure_logging("debug", {"INVOCATION_ID": "5eed" * 8})
    assert any(isinstance(handler, JournalHandler) for handler in logging.getLogger().handlers)
    service = logging.getLogger("readerhost.daemon.payments.service")
    fields = {"PAYMENT_ID": "pay_test_1", "ORDER_ID": "A-1", "PAYMENT_INTENT": "pi_test_123"}
    service.info(
        "payment %s (order %s): %s -> %s: %s", "pay_test_1", "A-1", "processing", "authorized", "authorised",
        extra={"journal": {**fields, "MESSAGE_ID": MessageId.PAYMENT_AUTHORISED}},
    )  # fmt: skip
    try:
        raise ValueError("the reader said no")
    except ValueError:
        logging.getLogger("readerhost.drivers.reader").exception(
            "reader trouble", extra={"journal": {"READER_ID": "reader\nwith a newline"}}
        )
    service.info("%s", "x" * BIG, extra={"journal": {"PAYMENT_ID": "pay_big"}})
    with tempfile.TemporaryDirectory(dir=workdir) as folder, running_emulator(search_lag_s=0) as (url, emulator):
        ids = asyncio.run(payment_sequence(EmulatorHandle(url, emulator), Path(folder) / "store.db"))
    logging.getLogger("readerhostd").info("stopping", extra={"journal": {"MESSAGE_ID": MessageId.DAEMON_STOPPING}})
    print(json.dumps(ids))
    return 0


if __name__ == "__main__":
    children = {"namespace": namespace_child, "log": log_child}
    sys.exit(children[sys.argv[1]](Path(sys.argv[2])))
