"""`readerhost-stripe-emulator` as a real process: it says where it listens, serves, and stops on a signal."""

from __future__ import annotations

import selectors
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import stripe
from conftest import make_client
from support.emulator_fidelity import create_intent

SCRIPT = Path(sys.executable).parent / "readerhost-stripe-emulator"
MODULE = [sys.executable, "-m", "readerhost.sim.stripe_emulator.cli"]
COMMANDS = {"script": [str(SCRIPT)], "module": MODULE}


def first_line(process: subprocess.Popen[str], timeout: float = 10.0) -> str:
    """The first line the process prints, waiting at most `timeout` seconds for it."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise AssertionError(f"no output within {timeout} s")
    return process.stdout.readline().rstrip("\n")


@pytest.fixture
def started(request: pytest.FixtureRequest) -> Iterator[subprocess.Popen[str]]:
    """The emulator command on a port of the OS's choosing (`request.param` names how it is started)."""
    command = COMMANDS[request.param]
    process = subprocess.Popen([*command, "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


@pytest.mark.parametrize("started", ["script", "module"], indirect=True)
@pytest.mark.parametrize("stop_with", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serves_until_a_signal_then_exits_0(started: subprocess.Popen[str], stop_with: signal.Signals) -> None:
    line = first_line(started)
    prefix = "listening on http://127.0.0.1:"
    assert line.startswith(prefix), line
    port = int(line.removeprefix(prefix))
    assert 0 < port < 65536

    intent = create_intent(make_client(f"http://127.0.0.1:{port}"), 1000)
    assert intent.status == "requires_payment_method"

    started.send_signal(stop_with)
    _, stderr = started.communicate(timeout=10)

    assert started.returncode == 0, stderr
    assert "Traceback" not in stderr
    with pytest.raises(stripe.APIConnectionError):  # nothing listens any more
        make_client(f"http://127.0.0.1:{port}").v1.payment_intents.list()


@pytest.mark.parametrize("port", ["70000", "-1", "http", ""])
def test_a_bad_port_exits_2_with_a_message(port: str) -> None:
    finished = subprocess.run([*MODULE, "--port", port], capture_output=True, text=True, timeout=30, check=False)

    assert finished.returncode == 2
    assert "--port" in finished.stderr
    assert "Traceback" not in finished.stderr
    assert finished.stdout == ""


def test_a_port_in_use_exits_1_with_a_message() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        finished = subprocess.run(
            [*MODULE, "--port", str(port)], capture_output=True, text=True, timeout=30, check=False
        )

    assert finished.returncode == 1
    assert f"127.0.0.1:{port}" in finished.stderr
    assert "Traceback" not in finished.stderr


@pytest.mark.parametrize("option", [["--rate-limit", "0"], ["--search-lag", "-1"], ["--colour", "red"]])
def test_other_bad_options_exit_2(option: list[str]) -> None:
    finished = subprocess.run([*MODULE, *option], capture_output=True, text=True, timeout=30, check=False)

    assert finished.returncode == 2
    assert option[0] in finished.stderr
    assert "Traceback" not in finished.stderr


def test_the_script_is_installed() -> None:
    assert SCRIPT.is_file()
