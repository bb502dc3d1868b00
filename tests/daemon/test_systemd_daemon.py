"""readerhostd under systemd's protocols, as a real process: sd_notify, the watchdog, socket activation."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.daemon import LogLines, daemon_env, socket_accepts, write_config

CONFIG = "[reader.simulated]\npresent_after_s = -1\n"


class NotifySocket:
    """The receiving end of NOTIFY_SOCKET, as systemd binds it (with the sender's credentials)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)

    def next(self, timeout: float = 20.0) -> tuple[dict[str, str], int]:
        """The next datagram's fields and the pid that sent it."""
        self.sock.settimeout(timeout)
        data, ancillary, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        pid = next(int.from_bytes(d[:4], "little") for level, kind, d in ancillary if kind == socket.SCM_CREDENTIALS)
        fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
        return fields, pid

    def until(self, key: str, timeout: float = 20.0) -> dict[str, str]:
        while True:
            fields, _ = self.next(timeout)
            if key in fields:
                return fields


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[NotifySocket]:
    receiver = NotifySocket(tmp_path / "notify.sock")
    yield receiver
    receiver.sock.close()


def start(tmp_path: Path, extra_env: dict[str, str]) -> tuple[subprocess.Popen[str], LogLines, Path]:
    env = {**daemon_env(tmp_path), **extra_env}
    process = subprocess.Popen(
        [sys.executable, "-m", "readerhost.daemon.app", "--config", str(write_config(tmp_path, CONFIG))],
        env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert process.stderr is not None
    return process, LogLines(process.stderr), Path(env["READERHOST_SOCKET"])


def test_ready_only_once_serving_then_status_watchdog_reload_and_stopping(tmp_path: Path, notify: NotifySocket) -> None:
    process, _log, socket_path = start(tmp_path, {"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "400000"})
    try:
        ready, pid = notify.next()
        assert ready.get("READY") == "1"
        assert pid == process.pid
        assert socket_accepts(socket_path)  # READY is sent only once the socket accepts
        assert ready["STATUS"].startswith("ready · reader sim-1 ready · 0 queued · ")
        status = ready["STATUS"]  # Stripe is "not yet answered" until the start-up probe's answer
        while "online" not in status:
            assert "· Stripe not yet answered ·" in status
            status = notify.until("STATUS")["STATUS"]
        assert notify.until("WATCHDOG")["WATCHDOG"] == "1"
        assert notify.until("WATCHDOG")["WATCHDOG"] == "1"  # and again: pinged at half of WATCHDOG_USEC
        pos = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        pos.connect(str(socket_path))
        pos.sendall(b'{"jsonrpc":"2.0","id":1,"method":"payment.start","params":'
                    b'{"order_id":"S-1","amount":1000,"currency":"usd"}}\n')  # fmt: skip
        seen = [notify.until("STATUS")["STATUS"]]  # STATUS follows the daemon, one change at a time
        while "reader sim-1 collecting" not in seen[-1]:
            seen.append(notify.until("STATUS")["STATUS"])
        assert any("1 queued" in status for status in seen)
        pos.close()
        process.send_signal(signal.SIGHUP)
        assert notify.until("RELOADING")["RELOADING"] == "1"
        assert notify.until("READY")["READY"] == "1"
        process.send_signal(signal.SIGTERM)
        assert notify.until("STOPPING")["STOPPING"] == "1"
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.skipif(shutil.which("systemd-socket-activate") is None, reason="systemd-socket-activate is not installed")
def test_a_client_connected_before_the_daemon_starts_gets_its_banner(tmp_path: Path) -> None:
    socket_path = tmp_path / "activated.sock"
    env = daemon_env(tmp_path)
    env.pop("READERHOST_SOCKET")
    activator = subprocess.Popen(
        ["systemd-socket-activate", "-l", str(socket_path), "--fdname=api", "-E", "XDG_STATE_HOME", "-E",
         "XDG_RUNTIME_DIR", "-E", "PATH", sys.executable, "-m", "readerhost.daemon.app", "--config",
         str(write_config(tmp_path, CONFIG))],
        env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert activator.stderr is not None
    log = LogLines(activator.stderr)
    try:
        log.until(lambda line: "Listening on" in line)
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.settimeout(30)
        client.connect(str(socket_path))  # nothing runs yet: systemd's socket holds the connection
        banner = json.loads(client.makefile("rb").readline())
        assert banner["method"] == "hello"
        assert banner["params"]["mode"] == "emulator"
        log.until(lambda line: " ready on " in line and str(socket_path) in line)
        client.close()
    finally:
        activator.send_signal(signal.SIGTERM)
        try:
            activator.wait(timeout=20)
        except subprocess.TimeoutExpired:
            activator.kill()
            activator.wait()
    assert socket_path.exists()  # the socket is systemd's: the daemon leaves it in place
    assert os.path.exists(socket_path)


@pytest.mark.skipif(shutil.which("systemd-socket-activate") is None, reason="systemd-socket-activate is not installed")
def test_both_sockets_systemd_passes_are_served_the_pos_socket_with_its_banner_the_plain_one_without(
    tmp_path: Path,
) -> None:
    # As readerhostd.socket and readerhostd-jsonrpc.socket pass them: one fd named "api", one "jsonrpc".
    pos_path, plain_path = tmp_path / "pos.sock", tmp_path / "plain.sock"
    env = daemon_env(tmp_path)
    env.pop("READERHOST_SOCKET")
    activator = subprocess.Popen(
        ["systemd-socket-activate", "-l", str(pos_path), "-l", str(plain_path), "--fdname=api:jsonrpc",
         "-E", "XDG_STATE_HOME", "-E", "XDG_RUNTIME_DIR", "-E", "PATH", sys.executable, "-m",
         "readerhost.daemon.app", "--config", str(write_config(tmp_path, CONFIG))],
        env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert activator.stderr is not None
    log = LogLines(activator.stderr)
    try:
        log.until(lambda line: "Listening on" in line and str(plain_path) in line)
        plain = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        plain.settimeout(30)
        plain.connect(str(plain_path))  # the first connection starts the daemon
        plain.sendall(b'{"jsonrpc":"2.0","id":1,"method":"session.hello"}\n')
        answer = json.loads(plain.makefile("rb").readline())  # the answer, not a banner, comes first
        assert answer["id"] == 1
        assert answer["result"]["mode"] == "emulator"
        log.until(lambda line: " ready on " in line and f"and {plain_path} (plain JSON-RPC)" in line)
        pos = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        pos.settimeout(30)
        pos.connect(str(pos_path))
        banner = json.loads(pos.makefile("rb").readline())
        assert (banner["method"], banner["params"]) == ("hello", answer["result"])
        plain.close()
        pos.close()
    finally:
        activator.send_signal(signal.SIGTERM)
        try:
            activator.wait(timeout=20)
        except subprocess.TimeoutExpired:
            activator.kill()
            activator.wait()
    assert plain_path.exists()  # systemd's sockets: the daemon leaves them in place
    assert pos_path.exists()
