"""The README's first command: readerhostd on embedded defaults, and a sample payment through its socket."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_the_main_job_takes_a_sample_payment_through_the_daemon(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("READERHOST_CONFIG", "READERHOST_SOCKET")}
    env.update(XDG_STATE_HOME=str(tmp_path / "state"), XDG_RUNTIME_DIR=str(tmp_path / "run"))
    done = subprocess.run(
        [sys.executable, "-m", "readerhost.sim.demo", "--once"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    out = done.stdout
    assert "ready on" in out
    assert "emulator" in out
    assert "tap" in out  # the reader's prompt was shown
    assert "captured" in out
    assert out.count("┌") >= 4  # the OLED drawn in the terminal: idle, amount due, processing, approved
    assert (tmp_path / "state" / "readerhost" / "readerhost.db").exists()
    assert not (tmp_path / "run" / "readerhost" / "api.sock").exists()  # the daemon stopped and cleaned up


def test_sigterm_stops_the_daemon_the_demo_started(tmp_path: Path) -> None:
    import signal

    env = {k: v for k, v in os.environ.items() if k not in ("READERHOST_CONFIG", "READERHOST_SOCKET")}
    env.update(XDG_STATE_HOME=str(tmp_path / "state"), XDG_RUNTIME_DIR=str(tmp_path / "run"))
    demo = subprocess.Popen(
        [sys.executable, "-m", "readerhost.sim.demo"], env=env, cwd=tmp_path, stdout=subprocess.PIPE, text=True
    )
    assert demo.stdout is not None
    for line in demo.stdout:  # wait until the daemon is up
        if "ready on" in line:
            break
    demo.send_signal(signal.SIGTERM)
    assert demo.wait(timeout=30) == 128 + signal.SIGTERM
    socket_path = tmp_path / "run" / "readerhost" / "api.sock"
    assert not socket_path.exists()  # the daemon was stopped (it removes its socket), not orphaned
