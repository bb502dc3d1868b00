"""The systemd adapter against real sockets: sd_notify datagrams, the watchdog, socket activation."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import select
import shutil
import socket
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from readerhost.daemon.systemd import Notifier, Watchdog, listen_sockets, unset_environment

LOGGER = "readerhost.daemon.systemd"
CREDENTIALS = struct.Struct("3i")  # struct ucred: pid, uid, gid
SOCKET_ACTIVATE = shutil.which("systemd-socket-activate")

# A daemon's stand-in: takes the "api" socket from listen_sockets(), answers one line on one connection.
# With an fd number as argument it emulates systemd itself: that fd moves to 3 and LISTEN_PID names
# this process (LISTEN_FDS and LISTEN_FDNAMES come from the test).
ACCEPTING_CHILD = """
import os, sys
if len(sys.argv) > 1:
    fd = int(sys.argv[1])
    if fd != 3:
        os.dup2(fd, 3)
        os.close(fd)
    os.environ["LISTEN_PID"] = str(os.getpid())
from readerhost.daemon.systemd import listen_sockets
api = listen_sockets(os.environ)["api"]
facts = f"pid={os.getpid()} fd={api.fileno()} blocking={api.getblocking()} inheritable={api.get_inheritable()}"
api.settimeout(30)
connection, _ = api.accept()
with connection, connection.makefile("rwb") as stream:
    line = stream.readline().decode().strip()
    stream.write(f"{line} {facts}\\n".encode())
"""

# Puts descriptors of the given kinds at fds 3, 4, ..., sets LISTEN_* as systemd would, and prints
# what listen_sockets() made of them.
PROBE_CHILD = """
import fcntl, json, os, socket, sys
from readerhost.daemon.systemd import listen_sockets
kinds, fdnames, wanted = sys.argv[1].split(","), sys.argv[2], sys.argv[3].split(",")

def make(kind):
    if kind == "pipe":
        return os.pipe()[0]
    if kind == "tcp":
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        s.listen()
    elif kind == "dgram":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    else:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if kind == "listening":
            s.bind("")  # autobind: an abstract address of the kernel's choosing
            s.listen()
    return s.detach()

parked = []
for kind in kinds:
    fd = make(kind)
    parked.append(fcntl.fcntl(fd, fcntl.F_DUPFD, 100))
    os.close(fd)
for target, fd in enumerate(parked, start=3):
    os.dup2(fd, target)
    os.close(fd)
os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS=str(len(kinds)))
if fdnames != "-":
    os.environ["LISTEN_FDNAMES"] = fdnames
fds = range(3, 3 + len(kinds))
try:
    found = listen_sockets(os.environ, wanted)
except ValueError as error:
    report = {"error": str(error)}
else:
    report = {"sockets": {name: {"fd": s.fileno(), "blocking": s.getblocking(), "family": s.family.name}
                          for name, s in found.items()}}
report["inheritable"] = [os.get_inheritable(fd) for fd in fds]
report["open"] = [os.fstat(fd) is not None for fd in fds]
print(json.dumps(report))
"""


@dataclass(frozen=True)
class Datagram:
    text: str
    pid: int  # the sender's, from SCM_CREDENTIALS

    @property
    def fields(self) -> dict[str, str]:
        return dict(line.split("=", 1) for line in self.text.splitlines())


class NotifyReceiver:
    """What systemd does with $NOTIFY_SOCKET: a datagram socket that learns each sender's pid."""

    def __init__(self, address: str, bind_to: str) -> None:
        self.address = address  # as NOTIFY_SOCKET spells it
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.socket.bind(bind_to)

    def receive(self, timeout_s: float = 5.0) -> Datagram:
        self.socket.settimeout(max(timeout_s, 0.001))
        data, ancillary, _flags, _address = self.socket.recvmsg(4096, socket.CMSG_SPACE(CREDENTIALS.size))
        pids = [
            CREDENTIALS.unpack(payload[: CREDENTIALS.size])[0]
            for level, kind, payload in ancillary
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS
        ]
        assert len(pids) == 1, ancillary
        return Datagram(data.decode(), pids[0])

    def pending(self) -> bool:
        """Whether a datagram waits (a send reaches the receiver's queue before sendto returns)."""
        readable, _, _ = select.select([self.socket], [], [], 0)
        return bool(readable)


@pytest.fixture
def receiver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[NotifyReceiver]:
    path = str(tmp_path / "notify")
    notify = NotifyReceiver(path, path)
    monkeypatch.setenv("NOTIFY_SOCKET", notify.address)  # libsystemd reads the process's environment
    with notify.socket:
        yield notify


@pytest.fixture
def abstract_receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[NotifyReceiver]:
    name = f"readerhost-test-{uuid.uuid4().hex}"
    notify = NotifyReceiver(f"@{name}", f"\0{name}")
    monkeypatch.setenv("NOTIFY_SOCKET", notify.address)
    with notify.socket:
        yield notify


def notifier_for(receiver: NotifyReceiver) -> Notifier:
    assert os.environ["NOTIFY_SOCKET"] == receiver.address
    notifier = Notifier.from_env(os.environ)
    assert notifier is not None
    return notifier


def notifier_at(path: Path, monkeypatch: pytest.MonkeyPatch) -> Notifier:
    """A notifier for NOTIFY_SOCKET=path, which nobody may be listening on yet."""
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    notifier = Notifier.from_env(os.environ)
    assert notifier is not None
    return notifier


# -- Notifier -------------------------------------------------------------------------------------


def test_ready_status_and_stopping_arrive_from_our_pid(receiver: NotifyReceiver) -> None:
    notifier = notifier_for(receiver)

    assert notifier.ready("serving on /run/readerhost/api.sock")
    ready = receiver.receive()
    assert ready.text == "READY=1\nSTATUS=serving on /run/readerhost/api.sock\n"
    assert ready.pid == os.getpid()

    assert notifier.status("queue: 2 pending")
    assert receiver.receive().text == "STATUS=queue: 2 pending\n"

    assert notifier.stopping()
    stopping = receiver.receive()
    assert stopping.fields == {"STOPPING": "1"}
    assert stopping.pid == os.getpid()
    assert not receiver.pending()


def test_an_abstract_notify_socket_works(abstract_receiver: NotifyReceiver) -> None:
    notifier = notifier_for(abstract_receiver)

    assert notifier.ready()

    datagram = abstract_receiver.receive()
    assert datagram.text == "READY=1\n"
    assert datagram.pid == os.getpid()


def test_status_is_sent_only_when_it_changes(receiver: NotifyReceiver) -> None:
    notifier = notifier_for(receiver)
    notifier.ready("idle")
    assert receiver.receive().fields == {"READY": "1", "STATUS": "idle"}

    notifier.status("idle")
    assert not receiver.pending()
    notifier.status("collecting")
    notifier.status("collecting")
    notifier.status("idle")

    assert receiver.receive().text == "STATUS=collecting\n"
    assert receiver.receive().text == "STATUS=idle\n"
    assert not receiver.pending()


def test_send_puts_fields_in_one_datagram_and_flattens_newlines(receiver: NotifyReceiver) -> None:
    notifier = notifier_for(receiver)

    assert notifier.send(STATUS="two\nlines", ERRNO=0)
    assert notifier.send_lines("EXTEND_TIMEOUT_USEC=5000000", "STATUS=longer start")

    assert receiver.receive().text == "STATUS=two lines\nERRNO=0\n"
    assert receiver.receive().text == "EXTEND_TIMEOUT_USEC=5000000\nSTATUS=longer start\n"


def test_reloading_carries_the_monotonic_clock_and_reloaded_is_ready(receiver: NotifyReceiver) -> None:
    notifier = notifier_for(receiver)
    before = time.monotonic_ns() // 1000

    notifier.reloading()
    reloading = receiver.receive().fields
    notifier.reloaded("reloaded")

    after = time.monotonic_ns() // 1000
    assert reloading.keys() == {"RELOADING", "MONOTONIC_USEC"}
    assert reloading["RELOADING"] == "1"
    assert before <= int(reloading["MONOTONIC_USEC"]) <= after
    assert receiver.receive().text == "READY=1\nSTATUS=reloaded\n"


def test_a_notify_socket_pointing_nowhere_is_logged_once_and_never_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    notifier = notifier_at(tmp_path / "nobody-listens", monkeypatch)

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert not notifier.ready("starting")
        assert not notifier.status("still starting")
        assert not notifier.stopping()

    warnings = [record for record in caplog.records if record.name == LOGGER]
    assert len(warnings) == 1
    assert "cannot notify systemd" in warnings[0].getMessage()
    assert "nobody-listens" in warnings[0].getMessage()


def test_a_failure_is_logged_again_after_sends_worked_in_between(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "notify"
    notifier = notifier_at(path, monkeypatch)

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert not notifier.send(WATCHDOG=1)
        receiver = NotifyReceiver(str(path), str(path))
        with receiver.socket:
            assert notifier.send(WATCHDOG=1)
            assert receiver.receive().text == "WATCHDOG=1\n"
        path.unlink()
        assert not notifier.send(WATCHDOG=1)
        assert not notifier.send(WATCHDOG=1)

    assert [record.levelno for record in caplog.records if record.name == LOGGER] == [logging.WARNING] * 2


def test_a_status_that_could_not_be_sent_is_sent_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "notify"
    notifier = notifier_at(path, monkeypatch)
    assert not notifier.status("offline: 3 queued")

    receiver = NotifyReceiver(str(path), str(path))
    with receiver.socket:
        assert notifier.status("offline: 3 queued")
        assert receiver.receive().text == "STATUS=offline: 3 queued\n"


@pytest.mark.parametrize("env", [{}, {"NOTIFY_SOCKET": ""}, {"NOTIFY_SOCKET": "relative/path"}])
def test_no_notifier_without_a_usable_notify_socket(env: dict[str, str]) -> None:
    assert Notifier.from_env(env) is None


def test_unset_environment_forgets_what_systemd_handed_over_but_the_notify_socket() -> None:
    env = {
        "NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "42",
        "LISTEN_PID": "42", "LISTEN_FDS": "1", "LISTEN_FDNAMES": "api", "LISTEN_PIDFDID": "7",
        "PATH": "/usr/bin", "READERHOST_CONFIG": "/etc/readerhost/readerhost.toml",
    }  # fmt: skip

    unset_environment(env)

    # libsystemd reads NOTIFY_SOCKET at every notification: it stays.
    assert env == {
        "NOTIFY_SOCKET": "/run/systemd/notify",
        "PATH": "/usr/bin",
        "READERHOST_CONFIG": "/etc/readerhost/readerhost.toml",
    }


# -- Watchdog -------------------------------------------------------------------------------------


def watchdog_for(receiver: NotifyReceiver, usec: str = "200000") -> Watchdog:
    watchdog = Watchdog.from_env({"WATCHDOG_USEC": usec, "WATCHDOG_PID": str(os.getpid())}, notifier_for(receiver))
    assert watchdog is not None
    return watchdog


async def running(watchdog: Watchdog, healthy: Callable[[], Awaitable[bool]], body: Awaitable[object]) -> None:
    """Run `body` while the watchdog runs, then stop the watchdog."""
    task = asyncio.create_task(watchdog.run(healthy))
    try:
        await body
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert task.cancelled()


def test_the_watchdog_pings_every_half_timeout_while_healthy(receiver: NotifyReceiver) -> None:
    watchdog = watchdog_for(receiver)
    assert watchdog.interval_s == pytest.approx(0.1)
    checks: list[float] = []
    pings: list[Datagram] = []

    async def healthy() -> bool:
        checks.append(time.monotonic())
        return True

    async def three_pings() -> None:
        deadline = time.monotonic() + 1.0
        while len(pings) < 3:
            pings.append(await asyncio.to_thread(receiver.receive, deadline - time.monotonic()))

    asyncio.run(running(watchdog, healthy, three_pings()))

    assert [ping.text for ping in pings] == ["WATCHDOG=1\n"] * 3
    assert {ping.pid for ping in pings} == {os.getpid()}
    gaps = [later - earlier for earlier, later in itertools.pairwise(checks[:3])]
    assert all(gap >= 0.09 for gap in gaps), gaps  # one check per interval, not a busy loop


@pytest.mark.parametrize("failure", ["returns False", "hangs", "raises"])
def test_the_watchdog_stops_pinging_while_unhealthy_and_resumes(
    receiver: NotifyReceiver, failure: str, caplog: pytest.LogCaptureFixture
) -> None:
    watchdog = watchdog_for(receiver)
    checks: list[float] = []
    cancelled: list[int] = []
    state = {"healthy": False}
    fourth_check = asyncio.Event()

    async def healthy() -> bool:
        checks.append(time.monotonic())
        if len(checks) == 4:
            fourth_check.set()
        if state["healthy"]:
            return True
        if failure == "hangs":
            try:
                await asyncio.Event().wait()  # a wedged worker: never answers
            except asyncio.CancelledError:
                cancelled.append(len(checks))
                raise
        if failure == "raises":
            raise RuntimeError("the store is gone")
        return False

    async def body() -> None:
        await asyncio.wait_for(fourth_check.wait(), 5.0)  # three checks have failed, over three intervals
        assert not receiver.pending()
        state["healthy"] = True
        ping = await asyncio.to_thread(receiver.receive, 2.0)
        assert ping.text == "WATCHDOG=1\n"

    with caplog.at_level(logging.INFO, logger=LOGGER):
        asyncio.run(running(watchdog, healthy, body()))

    assert checks[3] - checks[0] >= 0.27  # ≥ 3 intervals without a ping
    if failure == "hangs":
        assert cancelled[:3] == [1, 2, 3]  # each hung check was abandoned after one interval
    records = [record for record in caplog.records if record.name == LOGGER]
    assert [record.levelno for record in records] == [logging.WARNING, logging.INFO]  # once per failing run
    expected = {
        "returns False": "returned False",
        "hangs": "did not answer within 0.1 s",
        "raises": "the store is gone",
    }
    assert expected[failure] in records[0].getMessage()


def test_a_failing_health_check_is_not_retried_before_the_next_interval(receiver: NotifyReceiver) -> None:
    """A check that fails at once still waits for the next interval: no busy loop against a broken store."""
    watchdog = watchdog_for(receiver)
    checks: list[float] = []
    third_check = asyncio.Event()

    async def healthy() -> bool:
        checks.append(time.monotonic())
        if len(checks) == 3:
            third_check.set()
        return False

    asyncio.run(running(watchdog, healthy, asyncio.wait_for(third_check.wait(), 5.0)))

    assert checks[2] - checks[0] >= 0.18
    assert not receiver.pending()


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"WATCHDOG_USEC": ""},
        {"WATCHDOG_USEC": "0"},
        {"WATCHDOG_USEC": "soon"},
        {"WATCHDOG_USEC": "200000", "WATCHDOG_PID": str(os.getppid())},  # meant for another process
    ],
)
def test_no_watchdog_unless_systemd_asked_this_process(receiver: NotifyReceiver, env: dict[str, str]) -> None:
    assert Watchdog.from_env(env, notifier_for(receiver)) is None


def test_a_watchdog_without_a_pid_is_ours_and_needs_a_notifier(receiver: NotifyReceiver) -> None:
    watchdog = Watchdog.from_env({"WATCHDOG_USEC": "30000000"}, notifier_for(receiver))
    assert watchdog is not None
    assert watchdog.interval_s == pytest.approx(15.0)
    assert Watchdog.from_env({"WATCHDOG_USEC": "30000000"}, None) is None


# -- socket activation ----------------------------------------------------------------------------


def child_env(**extra: str) -> dict[str, str]:
    """Our environment without anything systemd may have set for pytest itself."""
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("LISTEN_", "NOTIFY_", "WATCHDOG_", "JOURNAL_", "SYSTEMD_"))
    }
    return {**inherited, "SYSTEMD_LOG_TARGET": "console", "SYSTEMD_LOG_LEVEL": "info", **extra}


def ask(path: Path, line: str) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(10)
        client.connect(str(path))
        client.sendall(f"{line}\n".encode())
        with client.makefile("rb") as stream:
            return stream.readline().decode().strip()


def test_an_emulated_activation_hands_the_listening_socket_to_the_child(tmp_path: Path) -> None:
    path = tmp_path / "api.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listening:
        listening.bind(str(path))
        listening.listen()
        fd = listening.fileno()
        child = subprocess.Popen(
            [sys.executable, "-c", ACCEPTING_CHILD, str(fd)],
            pass_fds=(fd,), env=child_env(LISTEN_FDS="1", LISTEN_FDNAMES="api"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
    # Our copy is closed: only the child holds the socket now.
    try:
        answer = ask(path, "hello")
    finally:
        _out, err = child.communicate(timeout=30)
    assert child.returncode == 0, err
    assert answer == f"hello pid={child.pid} fd=3 blocking=False inheritable=False"


@pytest.mark.skipif(SOCKET_ACTIVATE is None, reason="systemd-socket-activate (Debian package systemd) is not installed")
def test_systemd_socket_activate_starts_the_child_for_a_waiting_client(tmp_path: Path) -> None:
    assert SOCKET_ACTIVATE is not None
    path = tmp_path / "api.sock"
    activator = subprocess.Popen(
        [SOCKET_ACTIVATE, "-l", str(path), "--fdname=api", sys.executable, "-c", ACCEPTING_CHILD],
        env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert activator.stderr is not None
        listening = activator.stderr.readline()
        assert listening.startswith(f"Listening on {path} as 3"), listening
        # Only systemd-socket-activate runs: it starts (execs) the child on the first connection.
        assert Path(f"/proc/{activator.pid}/exe").resolve() == Path(SOCKET_ACTIVATE).resolve()
        answer = ask(path, "hello")
        _out, err = activator.communicate(timeout=30)
    finally:
        if activator.poll() is None:
            activator.kill()
            activator.wait()
    assert activator.returncode == 0, listening + err
    # The child is the activator's process itself (exec), so LISTEN_PID named it.
    assert answer == f"hello pid={activator.pid} fd=3 blocking=False inheritable=False"


def probe(kinds: Sequence[str], fdnames: str | None, wanted: Sequence[str] = ("api",)) -> dict[str, Any]:
    """listen_sockets() in a child whose fds 3... are descriptors of the given kinds."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE_CHILD, ",".join(kinds), "-" if fdnames is None else fdnames, ",".join(wanted)],
        env=child_env(), capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def test_only_the_wanted_names_are_returned_and_all_fds_are_closed_on_exec() -> None:
    report = probe(["listening", "listening"], "metrics:api")

    assert report["sockets"] == {"api": {"fd": 4, "blocking": False, "family": "AF_UNIX"}}
    assert report["inheritable"] == [False, False]
    assert report["open"] == [True, True]  # the other one is left alone


@pytest.mark.parametrize("fdnames", [None, "unknown", ""])
def test_a_single_unnamed_socket_is_taken_as_the_first_wanted_name(fdnames: str | None) -> None:
    report = probe(["listening"], fdnames)

    assert report["sockets"] == {"api": {"fd": 3, "blocking": False, "family": "AF_UNIX"}}


def test_a_single_socket_named_otherwise_is_not_taken() -> None:
    report = probe(["listening"], "metrics")

    assert report["sockets"] == {}


@pytest.mark.parametrize(
    ("kinds", "fdnames", "message"),
    [
        (["dgram"], "api", "is AF_UNIX SOCK_DGRAM"),
        (["stream"], "api", "is AF_UNIX SOCK_STREAM, not listening"),
        (["tcp"], "api", "is AF_INET SOCK_STREAM"),
        (["pipe"], "api", "(fd 3) is not a socket"),
        (["listening", "listening"], "api", "cannot be taken (LISTEN_FDS='2', LISTEN_FDNAMES='api')"),
        (["listening", "listening"], "api:api", "more than one socket named 'api'"),
    ],
)
def test_unusable_passed_fds_are_a_clear_error(kinds: list[str], fdnames: str, message: str) -> None:
    report = probe(kinds, fdnames)

    assert message in report["error"]
    assert report["open"] == [True] * len(kinds)  # nothing closed behind systemd's back


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"LISTEN_PID": "1", "LISTEN_FDS": "1", "LISTEN_FDNAMES": "api"},  # for another process
        {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "0"},
    ],
)
def test_no_sockets_unless_activated_for_this_process(env: dict[str, str]) -> None:
    assert listen_sockets(env) == {}


def test_a_malformed_listen_fds_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LISTEN_PID", str(os.getpid()))
    monkeypatch.setenv("LISTEN_FDS", "two")
    with pytest.raises(ValueError, match="systemd passed sockets that cannot be taken \\(LISTEN_FDS='two'"):
        listen_sockets(os.environ)
