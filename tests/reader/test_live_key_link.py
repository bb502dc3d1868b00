"""A daemon holding a live-mode key (readerhostd as a process, against a Stripe emulator that accepts
live keys and refuses what live mode refuses): a protocol 1 device cannot take real cards and is
refused, saying why, once in the log (and a configuration asking for protocol 1 is refused at start,
as a configuration error); a protocol 2 device (a Terminal SDK bridge) takes the payment."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import EmulatorHandle
from support.daemon import LineClient, daemon_env, daemon_process, of_type
from support.reader_emulator import reader_emulator

from readerhost.sim.stripe_emulator.server import running_emulator

LIVE_KEY = "sk_live_51Hreaderhostlivekeyfortests"
REFUSED = "protocol 1 devices cannot take real cards"


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 60))


@pytest.fixture
def live_emulator() -> Iterator[EmulatorHandle]:
    with running_emulator(search_lag_s=0, accept_live_keys=True) as (url, emulator):
        yield EmulatorHandle(url, emulator)


def config(tmp_path: Path, url: str, link: Path, protocol: int) -> str:
    key_file = tmp_path / "stripe-key"
    key_file.write_text(LIVE_KEY + "\n")
    key_file.chmod(0o600)
    return f"""
[stripe]
api_base = "{url}"
api_key_file = "{key_file}"
[reader]
driver = "serial"
reconnect_max_s = 0.2
[reader.serial]
device = "{link}"
protocol = {protocol}
"""


async def reader_status(path: Path) -> dict[str, Any]:
    pos = await LineClient.connect(path)
    try:
        await pos.receive()  # the banner
        return dict((await pos.call("status.get"))["result"]["reader"])
    finally:
        await pos.close()


def test_a_protocol_1_device_is_refused_with_its_reason_logged_once(
    tmp_path: Path, live_emulator: EmulatorHandle
) -> None:
    async def scenario() -> str:
        async with reader_emulator(tmp_path, "--versions", "1", "--card", "none") as device:
            with daemon_process(tmp_path, config(tmp_path, live_emulator.url, device.link, 2)) as daemon:
                for _ in range(3):  # the daemon keeps trying, and the device keeps saying no
                    await device.event("unsupported_version")
                status = await reader_status(daemon.socket_path)
                assert status["state"] != "ready"
                assert status["link"]["last_error"].startswith(f"{REFUSED}; the device does not speak protocol 2")
                pos = await LineClient.connect(daemon.socket_path)
                await pos.receive()
                refused = await pos.call("payment.start", {"order_id": "L-1", "amount": 100, "currency": "eur"})
                assert refused["error"]["data"]["reason"] == "READER_UNAVAILABLE"
                assert REFUSED in refused["error"]["message"]
                await pos.close()
            return daemon.log.rest()

    log = run(scenario())
    assert sum(REFUSED in line for line in log.splitlines()) == 1, log
    assert LIVE_KEY not in log


@pytest.mark.parametrize("driver", ["serial", "ble"])
def test_a_live_key_with_protocol_1_configured_is_a_configuration_error(tmp_path: Path, driver: str) -> None:
    text = config(tmp_path, "http://127.0.0.1:9", tmp_path / "no-such-tty", 1)  # refused before Stripe is called
    if driver == "ble":
        text = text.replace('driver = "serial"', 'driver = "ble"').replace(
            f'[reader.serial]\ndevice = "{tmp_path / "no-such-tty"}"', '[reader.ble]\naddress = "C0:DE:00:00:00:01"'
        )
    (tmp_path / "live.toml").write_text(text)
    done = subprocess.run(
        [sys.executable, "-m", "readerhost.daemon.app", "--config", str(tmp_path / "live.toml")],
        env=daemon_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr  # one clear line, no traceback
    assert f"[reader.{driver}] protocol: {REFUSED}" in lines[0]
    assert "protocol = 2" in lines[0]
    assert str(tmp_path / "live.toml") in lines[0]
    assert LIVE_KEY not in done.stderr
    assert not (tmp_path / "state").exists()  # refused before the store was opened


def test_a_protocol_2_device_takes_the_payment_with_a_live_key(tmp_path: Path, live_emulator: EmulatorHandle) -> None:
    async def scenario() -> None:
        async with reader_emulator(
            tmp_path, "--version", "2", "--stripe-api-base", live_emulator.url, "--card", "visa", "--present-after", "0"
        ) as device:
            with daemon_process(tmp_path, config(tmp_path, live_emulator.url, device.link, 2)) as daemon:
                pos = await LineClient.connect(daemon.socket_path)
                await pos.receive()
                await pos.call("events.subscribe", {"topics": ["payment", "reader"]})
                status = await reader_status(daemon.socket_path)
                if status["state"] != "ready":
                    await pos.event(of_type("reader.connected"))
                await pos.call("payment.start", {"order_id": "L-2", "amount": 1250, "currency": "eur"})
                authorised = await pos.event(of_type("payment.state", state="authorized"), timeout=20)
                intent = live_emulator.emulator.payment_intents.get(authorised["params"]["data"]["payment_intent"])
                assert intent.status == "requires_capture"
                assert intent.collected_by_reader
                await pos.close()

    run(scenario())
