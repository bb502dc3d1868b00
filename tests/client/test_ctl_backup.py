"""`readerhostctl backup` against readerhostd as a real process, and `readerhostd --restore` around it:
a backup while payments are taken, a restore refused while the daemon runs and over unsettled work,
and the daemon starting again on what was restored."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from support.daemon import daemon_env, daemon_process

from readerhost.daemon.payments.store import MIGRATIONS

CTL = [sys.executable, "-m", "readerhost.daemon.ctl"]
DAEMON = [sys.executable, "-m", "readerhost.daemon.app"]


def run(command: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, env=daemon_env(tmp_path), check=False)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def pay(socket: Path, order: str, tmp_path: Path) -> None:
    done = run([*CTL, "--socket", str(socket), "pay", "700", "--order", order, "--card", "visa"], tmp_path)
    assert done.returncode == 0, done.stderr


def orders(socket: Path, tmp_path: Path) -> set[str]:
    done = run([*CTL, "--socket", str(socket), "--json", "list"], tmp_path)
    assert done.returncode == 0, done.stderr
    return {payment["order_id"] for payment in json.loads(done.stdout)["payments"]}


def test_backup_while_running_then_restore_with_the_daemon_stopped(tmp_path: Path) -> None:
    copy = tmp_path / "backup.db"
    with daemon_process(tmp_path) as daemon:
        pay(daemon.socket_path, "BK-1", tmp_path)
        pay(daemon.socket_path, "BK-2", tmp_path)
        status = json.loads(run([*CTL, "--socket", str(daemon.socket_path), "--json", "status"], tmp_path).stdout)
        store = Path(status["store"]["path"])
        assert status["store"]["bytes"] > 0

        done = run([*CTL, "--socket", str(daemon.socket_path), "backup", str(copy)], tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == (
            f"backed up {store} to {copy}: 2 payments, 2 not settled, 0 operations still to reach Stripe "
            f"(schema {len(MIGRATIONS)})"
        )

        refused = run([*DAEMON, "--restore", str(copy), "--store", str(store), "--force"], tmp_path)
        assert refused.returncode == 1
        assert "in use by another process" in refused.stderr
        assert "nothing restored" in refused.stderr

        other = tmp_path / "other"
        other.mkdir()
        second = subprocess.run(
            DAEMON, env={**daemon_env(other), "READERHOST_SOCKET": str(other / "api.sock"),
                         "XDG_STATE_HOME": str(tmp_path / "state")},
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert second.returncode == 1
        assert "in use by another process" in second.stderr
        assert "Traceback" not in second.stderr

        pay(daemon.socket_path, "BK-3", tmp_path)  # after the backup

    unsettled = run([*DAEMON, "--restore", str(copy), "--store", str(store)], tmp_path)
    assert unsettled.returncode == 1
    assert "still has work for Stripe (3 payments, 3 not settled" in unsettled.stderr

    forced = run([*DAEMON, "--restore", str(copy), "--store", str(store), "--force"], tmp_path)
    assert forced.returncode == 0, forced.stderr
    first, kept = forced.stdout.strip().splitlines()
    assert first.startswith(f"restored {copy} to {store}: 2 payments")
    kept_path = Path(kept.split(" kept as ")[1].split(":")[0])
    assert kept_path.parent == store.parent
    assert kept_path.exists()

    offline_copy = tmp_path / "kept-copy.db"
    done = run([*CTL, "backup", str(offline_copy), "--store", str(kept_path)], tmp_path)  # no daemon asked
    assert done.returncode == 0, done.stderr
    assert "3 payments" in done.stdout

    with daemon_process(tmp_path) as daemon:
        assert orders(daemon.socket_path, tmp_path) == {"BK-1", "BK-2"}


def test_a_backup_that_cannot_be_made_exits_6_with_one_line(tmp_path: Path) -> None:
    done = run([*CTL, "backup", str(tmp_path / "copy.db"), "--store", str(tmp_path / "nothing.db")], tmp_path)
    assert done.returncode == 6
    assert done.stderr.strip() == f"readerhostctl: no backup made: there is no store at {tmp_path / 'nothing.db'}"
    assert not (tmp_path / "copy.db").exists()


def test_inspect_says_whether_the_store_has_work_for_stripe(tmp_path: Path) -> None:
    """`readerhostd --inspect`: what the Debian package's removal asks before a purge may delete the store."""
    with daemon_process(tmp_path) as daemon:
        socket = str(daemon.socket_path)
        store = Path(json.loads(run([*CTL, "--socket", socket, "--json", "status"], tmp_path).stdout)["store"]["path"])
        done = run(
            [*CTL, "--socket", socket, "pay", "700", "--order", "IN-1", "--capture", "auto", "--card", "visa"], tmp_path
        )
        assert done.returncode == 0, done.stderr

        settled = run([*DAEMON, "--inspect", "--store", str(store)], tmp_path)  # beside the running daemon
        assert settled.returncode == 0, settled.stderr
        assert settled.stdout.strip() == (
            f"{store}: 1 payments, 0 not settled, 0 operations still to reach Stripe (schema {len(MIGRATIONS)})"
        )

        pay(daemon.socket_path, "IN-2", tmp_path)  # manual capture: authorised, not captured

    unsettled = run([*DAEMON, "--inspect", "--store", str(store)], tmp_path)
    assert unsettled.returncode == 3
    assert unsettled.stdout.strip().startswith(f"{store}: 2 payments, 1 not settled")

    missing = run([*DAEMON, "--inspect", "--store", str(tmp_path / "nothing.db")], tmp_path)
    assert missing.returncode == 1
    assert (
        missing.stderr.strip() == f"readerhostd: cannot inspect the store: there is no file {tmp_path / 'nothing.db'}"
    )

    # A store named on the command line needs no configuration: a broken one beside it changes nothing.
    broken = tmp_path / "broken.toml"
    broken.write_text("[payments\n")
    unconfigured = run([*DAEMON, "--config", str(broken), "--inspect", "--store", str(store)], tmp_path)
    assert (unconfigured.returncode, unconfigured.stdout) == (3, unsettled.stdout)

    misused = run([*DAEMON, "--inspect", "--force"], tmp_path)
    assert misused.returncode == 2
    assert "--force goes with --restore" in misused.stderr
