"""The integration guide's shell example, run as written against a real readerhostd."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from support.daemon import daemon_process

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "pay-with-socat.sh"


def test_the_socat_and_jq_example_takes_a_payment(tmp_path: Path) -> None:
    with daemon_process(tmp_path) as daemon:
        env = {**os.environ, "READERHOST_SOCKET": str(daemon.socket_path)}
        done = subprocess.run(
            ["bash", str(EXAMPLE), "DOC-1", "1250"], env=env, capture_output=True, text=True, timeout=60, check=False
        )
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("[")]
    assert [e[0] for e in events] == list(range(1, len(events) + 1))
    states = [e[2] for e in events if e[1] == "payment.state"]
    assert states == ["creating", "collecting", "processing", "authorized", "capturing", "captured"]


def test_the_socat_example_reports_a_decline_with_its_exit_code(tmp_path: Path) -> None:
    with daemon_process(tmp_path) as daemon:
        env = {**os.environ, "READERHOST_SOCKET": str(daemon.socket_path)}
        done = subprocess.run(
            ["bash", str(EXAMPLE), "DOC-2", "1205"], env=env, capture_output=True, text=True, timeout=60, check=False
        )
    assert done.returncode == 1
    assert '"declined"' in done.stdout


def test_the_python_client_examples_run_as_written(tmp_path: Path) -> None:
    import re
    import sys

    guide = (Path(__file__).resolve().parents[2] / "docs" / "pos-protocol.md").read_text()
    asynchronous, blocking = re.findall(r"```python\n(.*?)```", guide, re.S)
    with daemon_process(tmp_path, "[reader.simulated]\npresent_after_s = 0.1\n") as daemon:
        env = {**os.environ, "READERHOST_SOCKET": str(daemon.socket_path)}
        sold = subprocess.run(
            [sys.executable, "-c", asynchronous], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert sold.returncode == 0, sold.stderr
        assert sold.stdout.splitlines() == ["customer may tap, insert, swipe", "payment captured"]
        read = subprocess.run(
            [sys.executable, "-c", blocking], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert read.returncode == 0, read.stderr
        assert read.stdout.splitlines() == ["True", "captured"]


def test_the_documents_show_the_protocol_version_the_daemon_speaks() -> None:
    from readerhost.daemon.api.protocol import PROTOCOL_VERSION

    docs = Path(__file__).resolve().parents[2] / "docs"
    guide = (docs / "pos-protocol.md").read_text()
    hello = json.loads(
        next(line for line in guide.splitlines() if line.startswith('{"jsonrpc":"2.0","method":"hello"'))
    )
    assert hello["params"]["protocol"] == PROTOCOL_VERSION
    version = f"{PROTOCOL_VERSION['major']}.{PROTOCOL_VERSION['minor']}"
    assert f"this daemon speaks **{version}**" in guide
    assert f"## Additions in {version}" in guide
    for name in ("readerhostctl.md", "operations.md"):
        shown = re.findall(r"^readerhostd \S+, protocol (\d+\.\d+)", (docs / name).read_text(), re.M)
        assert shown, name
        assert set(shown) == {version}, name
