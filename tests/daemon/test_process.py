"""readerhostd as a real process: start, pay, SIGTERM during a collection, restart; configuration errors."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support.daemon import LineClient, daemon_env, daemon_process, socket_accepts


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 60))


async def session(socket_path: Path) -> LineClient:
    client = await LineClient.connect(socket_path)
    assert (await client.receive())["method"] == "hello"
    await client.call("events.subscribe", {"topics": ["payment"]})
    return client


def state_is(state: str) -> Any:
    return lambda e: e["type"] == "payment.state" and e["data"]["state"] == state


def test_sigterm_during_a_collection_then_restart_keeps_what_was_committed(tmp_path: Path) -> None:
    async def first_life(socket_path: Path) -> tuple[str, str]:
        pos = await session(socket_path)
        paid = (await pos.call("payment.start", {"order_id": "P-1", "amount": 1250, "currency": "usd"}))["result"]
        await pos.event(state_is("collecting"))
        await pos.call("reader.present", {"card": "visa"})
        await pos.event(state_is("authorized"))
        await pos.call("payment.capture", {"payment_id": paid["payment_id"]})
        await pos.event(state_is("captured"))
        waiting = (await pos.call("payment.start", {"order_id": "P-2", "amount": 900, "currency": "usd"}))["result"]
        await pos.event(state_is("collecting"))
        return paid["payment_id"], waiting["payment_id"]

    with daemon_process(tmp_path) as daemon:
        paid_id, waiting_id = run(first_life(daemon.socket_path))
        daemon.process.send_signal(signal.SIGTERM)
        assert daemon.process.wait(timeout=20) == 0
        rest = daemon.log.rest()
        assert "Traceback" not in rest
        assert "stopped" in rest
        assert not socket_accepts(daemon.daemon_socket_path)

    async def second_life(socket_path: Path) -> None:
        pos = await session(socket_path)
        paid = (await pos.call("payment.get", {"payment_id": paid_id}))["result"]
        assert (paid["state"], paid["captured_amount"]) == ("captured", 1250)
        waiting = (await pos.call("payment.get", {"payment_id": waiting_id}))["result"]
        assert waiting["state"] == "canceled"  # the customer interaction was lost with the restart
        again = await pos.call("payment.start", {"order_id": "P-3", "amount": 500, "currency": "usd"})
        assert again["result"]["state"] == "creating"

    with daemon_process(tmp_path) as daemon:
        run(second_life(daemon.socket_path))


def readerhostd(tmp_path: Path, *args: str, config: str | None = None) -> subprocess.CompletedProcess[str]:
    if config is not None:
        (tmp_path / "bad.toml").write_text(config)
        args = ("--config", str(tmp_path / "bad.toml"), *args)
    return subprocess.run(
        [sys.executable, "-m", "readerhost.daemon.app", *args],
        env=daemon_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("[api]\nsockt = 'x'\n", "sockt"),
        ("[stripe]\napi_key = 'sk_test_123'\n", "api_key"),
        ("[stripe]\nread_timeout_s = 'fast'\n", "read_timeout_s"),
        ("[reader]\ndriver = 'magic'\n", "driver"),
        ("[reader.simulated]\ncard = '4242424242424242'\n", "card"),
        ("[api\n", "line 1"),
    ],
)
def test_configuration_errors_are_one_clear_line(tmp_path: Path, config: str, expected: str) -> None:
    done = readerhostd(tmp_path, config=config)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert expected in lines[0]
    assert str(tmp_path / "bad.toml") in lines[0]
    assert "4242424242424242" not in done.stderr.replace("card = '4242424242424242'", "")


def test_a_missing_config_file_is_named(tmp_path: Path) -> None:
    done = readerhostd(tmp_path, "--config", str(tmp_path / "nowhere.toml"))
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert "nowhere.toml" in done.stderr


def test_an_unusable_store_is_one_line_and_nothing_is_created(tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("not a directory")  # the state directory cannot be made
    done = readerhostd(tmp_path, config="")
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "store" in done.stderr
    assert "Traceback" not in done.stderr
    assert blocker.read_text() == "not a directory"


def test_a_second_daemon_on_the_same_socket_is_refused(tmp_path: Path) -> None:
    with daemon_process(tmp_path) as daemon:
        other = tmp_path / "other"
        other.mkdir()
        env = daemon_env(other)
        env["READERHOST_SOCKET"] = str(daemon.daemon_socket_path)
        done = subprocess.run(
            [sys.executable, "-m", "readerhost.daemon.app"], env=env, capture_output=True, text=True, timeout=30,
            check=False,
        )  # fmt: skip
        assert done.returncode == 1
        assert "already serving" in done.stderr
        assert "Traceback" not in done.stderr
        assert socket_accepts(daemon.daemon_socket_path)
        assert os.path.exists(daemon.daemon_socket_path)


def test_a_live_key_with_the_simulated_reader_is_refused(tmp_path: Path) -> None:
    env = daemon_env(tmp_path)
    env["STRIPE_API_KEY"] = "sk_live_" + "a" * 24
    done = subprocess.run(
        [sys.executable, "-m", "readerhost.daemon.app"], env=env, capture_output=True, text=True, timeout=30,
        check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "simulated reader" in done.stderr
    assert "sk_live_" not in done.stderr
    assert not (tmp_path / "state").exists()  # refused before anything was created
