"""The README's first command runs the demo: it must complete and show one capture per captured payment."""

from __future__ import annotations

import subprocess
import sys


def test_demo_runs_a_scripted_day_through_the_emulator() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "readerhost.sim.demo"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "first card declined: insufficient_funds" in done.stdout
    assert "answer replayed: True" in done.stdout
    assert "10 mutations, 2 captures" in done.stdout
