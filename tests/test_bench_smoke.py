"""The benchmark suite still runs: a quick pass of the payment, latency, durability, reader link
(it starts the reader emulator on a pty and drives the daemon's serial reader) and create-truth
(2,000 preloaded PaymentIntents) benchmarks, and the profile of a payment (py-spy attached to a real
daemon).

Benchmarks assert nothing about speed; this only checks that they run to the end and report.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(120)
def test_quick_benchmarks_run_and_report_each_section() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--no-write",
            "--only",
            "payment-overhead",
            "api-latency",
            "durability",
            "reader-link",
            "create-truth",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=115,  # the payment benchmark starts three daemons and builds the slow-storage shim
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    titles = ("### Payment overhead", "### API latency", "### Durability", "### Reader link", "### Learning a create")
    for title in titles:
        assert title in done.stdout, done.stdout
    assert "FAILED" not in done.stdout


@pytest.mark.timeout(180)
def test_the_profile_of_a_payment_is_taken_with_its_flame_graph() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--no-write", "--only", "profile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "### Profile of a payment" in done.stdout, done.stdout
    assert "the Stripe request in stripe-python" in done.stdout, done.stdout  # py-spy sampled the daemon
    assert "FAILED" not in done.stdout
