"""`readerhostctl status` for monitoring: exit 0 only when healthy, a documented code for each problem
(the reader gone, Stripe unreachable or refusing the key, money at risk), and its own code for a
daemon that does not answer in time."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.daemon import daemon_env, daemon_process

from readerhost.daemon.ctl import exit_codes
from readerhost.daemon.ctl.health import DEADLINE_AT_RISK_S, QUEUE_AT_RISK_S, exit_code, problems
from readerhost.daemon.payments.model import rfc3339

CTL = [sys.executable, "-m", "readerhost.daemon.ctl"]
NOW = 1_796_000_000.0


def status(**changes: Any) -> dict[str, Any]:
    healthy: dict[str, Any] = {
        "reader": {"state": "ready", "id": "sim-1"},
        "stripe": {"state": "reachable", "reachable": True, "consecutive_failures": 0},
        "queue": {"pending": 0, "oldest_age_s": None},
        "deadline": None,
    }
    return {**healthy, **changes}


def test_a_healthy_daemon_has_no_problem() -> None:
    assert problems(status(), NOW) == []
    assert exit_code([]) == exit_codes.EXIT_OK
    far = {"payment_id": "pay_1", "order_id": "A-1", "capture_before": rfc3339(NOW + DEADLINE_AT_RISK_S + 60)}
    assert problems(status(deadline=far, stripe={"state": "unknown"}), NOW) == []  # not yet asked is no failure


@pytest.mark.parametrize(
    ("changes", "code", "text"),
    [
        ({"reader": {"state": "disconnected"}}, exit_codes.EXIT_READER_DOWN, "the reader is disconnected"),
        ({"reader": {"state": "connecting"}}, exit_codes.EXIT_READER_DOWN, "the reader is connecting"),
        ({"stripe": {"state": "unreachable"}}, exit_codes.EXIT_STRIPE_DOWN, "Stripe is unreachable"),
        ({"stripe": {"state": "key_refused"}}, exit_codes.EXIT_STRIPE_DOWN, "Stripe refuses the API key"),
        ({"queue": {"pending": 1, "oldest_age_s": QUEUE_AT_RISK_S + 60}}, exit_codes.EXIT_MONEY_AT_RISK,
         "a request has waited for Stripe for 61 min"),
        ({"deadline": {"payment_id": "pay_9", "capture_before": rfc3339(NOW + DEADLINE_AT_RISK_S - 60)}},
         exit_codes.EXIT_MONEY_AT_RISK, "the capture deadline of pay_9 is near"),
        ({"deadline": {"payment_id": "pay_9", "capture_before": rfc3339(NOW - 60)}},
         exit_codes.EXIT_MONEY_AT_RISK, "the capture deadline of pay_9 is near"),
    ],
)  # fmt: skip
def test_each_problem_has_its_exit_code(changes: dict[str, Any], code: int, text: str) -> None:
    found = problems(status(**changes), NOW)
    assert [(problem.exit_code, problem.text) for problem in found] == [(code, text)]
    assert exit_code(found) == code


def test_the_most_severe_problem_decides_the_exit_code() -> None:
    found = problems(
        status(reader={"state": "disconnected"}, stripe={"state": "unreachable"},
               queue={"pending": 3, "oldest_age_s": QUEUE_AT_RISK_S * 2}),
        NOW,
    )  # fmt: skip
    assert [problem.exit_code for problem in found] == [
        exit_codes.EXIT_MONEY_AT_RISK, exit_codes.EXIT_STRIPE_DOWN, exit_codes.EXIT_READER_DOWN,
    ]  # fmt: skip
    assert exit_code(found) == exit_codes.EXIT_MONEY_AT_RISK


def test_status_of_a_daemon_whose_reader_is_missing_exits_10_in_text_and_json(tmp_path: Path) -> None:
    config = '[reader]\ndriver = "serial"\n[reader.serial]\ndevice = "/dev/readerhost-no-such-reader"\n'
    with daemon_process(tmp_path, config) as daemon:
        env = {**daemon_env(tmp_path), "READERHOST_SOCKET": str(daemon.socket_path)}
        human = subprocess.run([*CTL, "status"], capture_output=True, text=True, env=env, timeout=60, check=False)
        machine = subprocess.run([*CTL, "--json", "status"], capture_output=True, text=True, env=env, timeout=60,
                                 check=False)  # fmt: skip

    assert human.returncode == exit_codes.EXIT_READER_DOWN == 10, human.stderr
    health = next(line for line in human.stdout.splitlines() if line.startswith("health "))
    assert health == "health   the reader is connecting"
    assert machine.returncode == 10
    assert json.loads(machine.stdout)["reader"]["state"] == "connecting"


@pytest.fixture
def silent_daemon(tmp_path: Path) -> Iterator[Path]:
    """A socket that greets like readerhostd and then never answers a request."""
    path = tmp_path / "silent.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()
    accepted: list[socket.socket] = []

    def serve() -> None:
        connection, _ = server.accept()
        accepted.append(connection)
        hello = {"jsonrpc": "2.0", "method": "hello", "params": {"protocol": {"major": 1, "minor": 3}}}
        connection.sendall(json.dumps(hello).encode() + b"\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield path
    server.close()
    thread.join(timeout=5)
    for connection in accepted:
        connection.close()


def test_a_daemon_that_does_not_answer_in_time_exits_7(silent_daemon: Path, tmp_path: Path) -> None:
    done = subprocess.run([*CTL, "--socket", str(silent_daemon), "--timeout", "0.5", "status"], capture_output=True,
                          text=True, env=daemon_env(tmp_path), timeout=60, check=False)  # fmt: skip

    assert done.returncode == exit_codes.EXIT_TIMEOUT == 7
    assert done.stderr.strip().endswith("(try --timeout)")
    assert "Traceback" not in done.stderr
