"""The crash harness itself: a reconnect that races a kill is the daemon gone, not a harness failure;
a daemon that dies without being killed is reported as a finding with its evidence, and the run
goes on (or ends, when the daemon cannot start again) instead of stopping with a traceback."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bench.support import workdir
from reliability.__main__ import crash_section
from reliability.crash import run_crashes
from reliability.invariants import read_store
from reliability.pos import Gone, PosClient, PosRecord


def test_a_connect_to_a_socket_nobody_listens_on_is_gone(tmp_path: Path) -> None:
    path = tmp_path / "api.sock"
    with socket.socket(socket.AF_UNIX) as listening:  # the daemon's socket file outlives a SIGKILL
        listening.bind(str(path))
        listening.listen()
    assert path.exists()
    with pytest.raises(Gone, match="Connection refused"):
        asyncio.run(PosClient.connect(path, PosRecord(), timeout=5.0))


def test_a_connect_to_a_socket_that_is_not_there_is_gone(tmp_path: Path) -> None:
    with pytest.raises(Gone, match="No such file"):
        asyncio.run(PosClient.connect(tmp_path / "api.sock", PosRecord(), timeout=5.0))


def _payments_in(folder: Path) -> int:
    store = folder / "state" / "readerhost" / "readerhost.db"
    try:
        return len(read_store(store).payments)
    except Exception:  # not made yet, or being made
        return 0


def _serving_daemon(folder: Path) -> int | None:
    """The pid of the run's readerhostd once it serves, found as an outsider would: by its command line."""
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(str(folder / "api.sock"))
        except OSError:
            return None
    config = f"{folder}/readerhost.toml".encode()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            if config in cmdline.read_bytes().split(b"\0"):
                return int(cmdline.parent.name)
    return None


@contextlib.contextmanager
def behind_the_harness(folder: Path, act: Callable[[], bool], payments: int) -> Iterator[threading.Event]:
    """Once the run's store holds `payments` payments, `act` (until it returns True), once, from a
    thread the harness knows nothing of. The event is set when it has acted."""
    acted, done = threading.Event(), threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + 90
        while not done.is_set() and time.monotonic() < deadline:
            if _payments_in(folder) >= payments and act():
                acted.set()
                return
            done.wait(0.05)  # polling a file and /proc: neither can be waited on

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield acted
    finally:
        done.set()
        watcher.join(timeout=10)


@pytest.mark.timeout(180)
def test_a_daemon_killed_behind_the_harness_is_a_finding_and_the_run_goes_on(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # the evidence goes to ./reliability-evidence
    killed: list[int] = []

    def kill_it() -> bool:  # as the kernel's OOM killer would
        pid = _serving_daemon(folder)
        if pid is None:
            return False
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)
        return True

    with workdir("rel-ci-death-") as folder, behind_the_harness(folder, kill_it, payments=2) as acted:
        result = run_crashes(folder, seed=5, kills=4, chosen_every=100)
    assert acted.is_set()
    assert len(killed) == 1
    assert len(result.deaths) == 1, result.deaths
    finding = result.deaths[0]
    assert finding.seed == 5
    assert finding.death.when == "running"
    assert finding.death.ended() == "killed by SIGKILL"
    assert finding.death.last_lines, "the end of its log"
    assert 0 <= finding.kill < 4
    assert (finding.evidence / "daemon.log").read_text().strip()
    assert (finding.evidence / "readerhost.db").is_file()
    assert "died unasked while running" in str(finding)
    # The run went on: the daemon restarted, the harness made its other kills, the checks held.
    assert result.kills == 3
    assert result.violations == []
    assert not result.clean
    # What docs/reliability.md is given: the count in the table, the finding with its evidence below it.
    section = crash_section(result)
    assert "| deaths of the daemon the harness did not cause | 1 |" in section
    assert f"- {finding}" in section


@pytest.mark.timeout(180)
def test_a_daemon_that_cannot_start_again_ends_the_run_with_a_finding(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)

    def expose_the_key() -> bool:  # the daemon refuses a key file others can read: its next start fails
        (folder / "stripe.key").chmod(0o644)
        return True

    with workdir("rel-ci-nostart-") as folder, behind_the_harness(folder, expose_the_key, payments=1) as acted:
        result = run_crashes(folder, seed=6, kills=6, chosen_every=100)
    assert acted.is_set()
    assert len(result.deaths) == 1, result.deaths
    death = result.deaths[0].death
    assert death.when == "starting"
    assert death.ended() == "exit status 2"  # a configuration error
    assert any("the Stripe key file is readable or writable by others" in line for line in death.last_lines)
    assert result.kills < 6  # the run ended there
    assert result.violations == []
    assert not result.clean
