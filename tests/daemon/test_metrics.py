"""The node_exporter textfile: written by readerhostd as a process while payments and refunds go through,
accepted by Prometheus' own `promtool check metrics`, and holding the values status.get gives."""

from __future__ import annotations

import datetime
import json
import logging
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.daemon import daemon_env, daemon_process

from readerhost.client import Client
from readerhost.daemon.metrics import MetricsTextfile, exposition, families, family, sample
from readerhost.daemon.payments.model import Payment, PaymentRequest, State, rfc3339
from readerhost.daemon.payments.store import Store
from readerhost.daemon.payments.worker import StripeHealth

CTL = [sys.executable, "-m", "readerhost.daemon.ctl"]
needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool is not installed (apt install prometheus; .ci/run does)"
)


def values(text: str) -> dict[str, float]:
    """'name{labels}' -> value, for every sample in an exposition."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            found[name] = float(value)
    return found


def promtool(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", "check", "metrics"], input=path.read_text(), capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip


def wait_for(path: Path, done: object, timeout: float = 30.0) -> dict[str, float]:
    """The file's samples once `done(samples)` holds. The daemon rewrites it after every change within
    interval_s: this polls the file, which has nothing to wait on."""
    deadline = time.monotonic() + timeout
    while True:
        seen = values(path.read_text()) if path.exists() else {}
        if callable(done) and done(seen):
            return seen
        assert time.monotonic() < deadline, f"the metrics never got there: {seen}"
        time.sleep(0.05)


@needs_promtool
def test_the_daemon_keeps_a_textfile_promtool_accepts_with_the_values_status_gives(tmp_path: Path) -> None:
    textfile = tmp_path / "node-exporter" / "readerhost.prom"
    textfile.parent.mkdir()
    config = f'[metrics]\ntextfile = "{textfile}"\ninterval_s = 0.1\n'
    with daemon_process(tmp_path, config) as daemon:
        env = {**daemon_env(tmp_path), "READERHOST_SOCKET": str(daemon.socket_path)}

        def ctl(*args: str) -> dict[str, object]:
            done = subprocess.run([*CTL, "--json", *args], capture_output=True, text=True, env=env, timeout=60,
                                  check=False)  # fmt: skip
            assert "Traceback" not in done.stderr
            last: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
            return last

        captured = ctl("pay", "1250", "--order", "M-1", "--card", "visa", "--capture", "auto")
        ctl("pay", "1205", "--order", "M-2", "--card", "visa")  # declined, then left open
        ctl("pay", "700", "--order", "M-3", "--card", "visa")  # authorised: a capture deadline
        payment = captured["payment"]
        assert isinstance(payment, dict)
        ctl("refund", str(payment["payment_id"]), "--amount", "250")

        seen = wait_for(textfile, lambda s: s.get('readerhost_refunds_finished_total{state="succeeded"}') == 1)
        with Client.connect(daemon.socket_path) as client:
            status = client.status()
        checked = promtool(textfile)

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert seen['readerhost_payments_finished_total{state="captured"}'] == 1
    assert seen['readerhost_payments{state="declined"}'] == 1
    assert seen['readerhost_payments{state="authorized"}'] == 1
    assert seen['readerhost_stripe_state{state="reachable"}'] == 1
    assert seen['readerhost_stripe_state{state="unknown"}'] == 0
    assert seen["readerhost_reader_connected"] == 1
    assert seen["readerhost_requests_pending"] == status["queue"]["pending"] == 0
    assert seen["readerhost_offline_payments"] == status["offline"]["count"] == 0
    deadline = datetime.datetime.fromisoformat(status["deadline"]["capture_before"].replace("Z", "+00:00"))
    assert seen["readerhost_capture_deadline_timestamp_seconds"] == deadline.timestamp()
    build = next(name for name in seen if name.startswith("readerhost_build_info"))
    assert f'version="{status["daemon"]}"' in build
    assert f'protocol="{status["protocol"]["major"]}.{status["protocol"]["minor"]}"' in build
    assert seen["readerhost_store_size_bytes"] > 0
    assert not [name for name in textfile.parent.iterdir() if name != textfile]  # no partial file left


@needs_promtool
def test_every_family_passes_promtool_and_an_empty_one_is_left_out(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store.db")
    try:
        health = StripeHealth(last_ok_at=1_796_000_000.5, rate_limited=2)
        status = {
            "daemon": "0.1.0", "mode": "test", "protocol": {"major": 1, "minor": 6},
            "reader": {"state": "ready", "battery": 80},
            "queue": {"pending": 2, "oldest_age_s": 12.5},
            "offline": {"count": 1, "amount_by_currency": {"eur": 500, "jpy": 1500}},
            "store": {"path": "x", "bytes": 4096},
            "deadline": {"payment_id": "pay_1", "capture_before": rfc3339(1_796_086_400)},
        }  # fmt: skip
        text = exposition(families(status, store, health, 1_796_000_000.0))
    finally:
        store.close()
    path = tmp_path / "all.prom"
    path.write_text(text)

    checked = promtool(path)

    assert checked.returncode == 0, checked.stdout + checked.stderr
    seen = values(text)
    assert seen['readerhost_offline_amount{currency="jpy"}'] == 1500
    assert seen["readerhost_reader_battery_ratio"] == 0.8
    assert seen["readerhost_stripe_rate_limited_total"] == 2
    assert seen["readerhost_stripe_last_answer_timestamp_seconds"] == 1_796_000_000.5
    assert seen["readerhost_capture_deadline_timestamp_seconds"] == 1_796_086_400
    assert exposition([family("readerhost_nothing", "gauge", "Never shown.")]) == "\n"

    broken = tmp_path / "broken.prom"  # what promtool refuses: a counter named like a gauge
    broken.write_text(exposition([family("readerhost_things", "counter", "Things.", sample(1))]))
    assert promtool(broken).returncode != 0


def test_a_label_value_is_escaped() -> None:
    text = exposition([family("readerhost_x", "gauge", "X.", sample(1, version='a"b\\c\nd'))])
    assert 'readerhost_x{version="a\\"b\\\\c\\nd"} 1' in text


def test_a_file_that_cannot_be_written_is_said_once_and_written_when_it_can(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "node-exporter"  # not there yet
    textfile = MetricsTextfile(folder / "readerhost.prom", lambda: "readerhost_up 1\n", interval_s=1)
    caplog.set_level(logging.INFO, "readerhost.daemon.metrics")

    textfile.write()
    textfile.write()
    folder.mkdir()
    textfile.write()

    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert re.search(r"cannot write the metrics file .*readerhost\.prom: No such file or directory", warnings[0])
    assert (folder / "readerhost.prom").read_text() == "readerhost_up 1\n"
    assert (folder / "readerhost.prom").stat().st_mode & 0o777 == 0o644
    assert any("written again" in record.getMessage() for record in caplog.records)
    assert [path.name for path in folder.iterdir()] == ["readerhost.prom"]


@needs_promtool
def test_the_documented_alert_rules_are_valid_and_name_only_metrics_the_daemon_writes(tmp_path: Path) -> None:
    operations = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    section = operations[operations.index("## Metrics") :]
    rules = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert rules is not None
    path = tmp_path / "readerhost.rules.yml"
    path.write_text(rules.group(1))

    checked = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60,
                             check=False)  # fmt: skip

    assert checked.returncode == 0, checked.stdout + checked.stderr
    named = set(re.findall(r"\breaderhost_[a-z_]+", rules.group(1)))
    store = Store.open(tmp_path / "store.db")
    try:
        request = PaymentRequest(order_id="M-1", amount=100, currency="usd")
        with store.transaction():
            store.insert_payment(Payment("pay_1", request, State.CAPTURING, created_at=1.0, updated_at=1.0), "test")
            store.add_operation("pay_1", "capture", "pay_1:capture", {}, 1.0)
        written = exposition(families({"reader": {"battery": 50}, "store": {"bytes": 1}, "queue": {"oldest_age_s": 1},
                                       "deadline": {"capture_before": rfc3339(1.0)}}, store,
                                      StripeHealth(last_ok_at=1.0), 0.0))  # fmt: skip
    finally:
        store.close()
    assert named <= set(re.findall(r"^# TYPE (\S+)", written, re.M))
