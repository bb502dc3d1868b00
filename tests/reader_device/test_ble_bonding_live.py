"""The issue's "an unbonded BLE device is refused", with a live key: readerhostd (holding a live-mode
key, against a Stripe emulator that accepts live keys) and the reference device speaking version 2
in another process, as a BLE peripheral that takes the link only over an encrypted link. The daemon
refuses the unbonded reader and says why; `readerhostctl reader pair` (a process) bonds through
bumble's SMP; then a live payment goes through the device's SDK."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import EmulatorHandle
from support.ble_bonding import ctl, refused_reader
from support.daemon import of_type, running_daemon
from support.log_waiter import attached

from readerhost.daemon.journal import MessageId
from readerhost.sim.ble_radio import VirtualRadio
from readerhost.sim.stripe_emulator.server import running_emulator

from .conftest import BleEmulatorProcess

LIVE_KEY = "sk_live_51Hreaderhostlivekeyfortests"


@pytest.fixture
def live_emulator() -> Iterator[EmulatorHandle]:
    with running_emulator(search_lag_s=0, accept_live_keys=True) as (url, emulator):
        yield EmulatorHandle(url, emulator)


def config(tmp_path: Path, url: str, address: str) -> str:
    key_file = tmp_path / "stripe-key"
    key_file.write_text(LIVE_KEY + "\n")
    key_file.chmod(0o600)
    return f"""
[stripe]
api_base = "{url}"
api_key_file = "{key_file}"
max_network_retries = 0
[reader]
driver = "ble"
reconnect_max_s = 0.3
[reader.ble]
address = "{address}"
connect_timeout_s = 5
protocol = 2
"""


def test_a_live_daemon_refuses_the_unbonded_emulator_process_then_pairs_and_takes_a_live_payment(
    start_ble_emulator: Callable[..., BleEmulatorProcess],
    tmp_path: Path,
    live_emulator: EmulatorHandle,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        async with VirtualRadio(keystore=tmp_path / "bonds.json") as radio:
            spec = await radio.expose_controller("emulator")
            emulator = await asyncio.to_thread(
                start_ble_emulator,
                "--ble", spec, "--ble-require-encryption", "--version", "2",
                "--stripe-api-base", live_emulator.url, "--card", "visa", "--present-after", "0",
            )  # fmt: skip
            address = emulator.address
            async with running_daemon(
                tmp_path, config(tmp_path, live_emulator.url, address), ble_backends=radio.bleak_backends()
            ) as daemon:
                pos, status = await refused_reader(daemon.socket_path)
                assert status["link"]["last_error"].startswith(f"the Bluetooth device {address} is not bonded")
                assert "welcome" not in {e.get("event") for e in emulator.events}  # never talked to

                code, out, err = await ctl(daemon.socket_path, "reader", "pair")
                assert code == 0, err
                assert out.startswith(f"bonded with the reader at {address}")
                await pos.event(of_type("reader.connected"))
                await pos.call("payment.start", {"order_id": "LIVE-BLE-1", "amount": 1250, "currency": "eur"})
                authorised = await pos.event(of_type("payment.state", state="authorized"), timeout=20)
                intent = live_emulator.emulator.payment_intents.get(authorised["params"]["data"]["payment_intent"])
                assert intent.status == "requires_capture"
                assert intent.collected_by_reader
                await pos.close()
            code, stderr = await asyncio.to_thread(emulator.stop, signal.SIGINT)
            assert code == 0, stderr
            assert "Traceback" not in stderr

    with caplog.at_level(logging.INFO, logger="readerhostd"):
        asyncio.run(asyncio.wait_for(scenario(), 90))
    refusals = [r for r in caplog.records if getattr(r, "journal", {}).get("MESSAGE_ID") == MessageId.READER_REFUSED]
    assert len(refusals) == 1


def test_a_device_that_takes_over_the_bonded_address_without_the_key_is_never_served(
    start_ble_emulator: Callable[..., BleEmulatorProcess], tmp_path: Path, live_emulator: EmulatorHandle
) -> None:
    address = "C0:DE:00:00:AB:01"

    async def scenario() -> None:
        async with VirtualRadio(keystore=tmp_path / "bonds.json") as radio:
            genuine_spec = await radio.expose_controller("genuine")
            impostor_spec = await radio.expose_controller("impostor")
            genuine = await asyncio.to_thread(
                start_ble_emulator, "--ble", genuine_spec, "--ble-address", address, "--ble-require-encryption",
                "--version", "2", "--stripe-api-base", live_emulator.url, "--card", "none",
            )  # fmt: skip
            async with running_daemon(
                tmp_path, config(tmp_path, live_emulator.url, address), ble_backends=radio.bleak_backends()
            ) as daemon:
                pos, _ = await refused_reader(daemon.socket_path)
                code, _, err = await ctl(daemon.socket_path, "reader", "pair")
                assert code == 0, err
                await pos.event(of_type("reader.connected"))
                code, stderr = await asyncio.to_thread(genuine.stop, signal.SIGINT)
                assert code == 0, stderr
                await pos.event(of_type("reader.disconnected"))
                await radio.withdraw_controller(genuine_spec)

                # Another device at the same address, without the bond's key (the reader's
                # address copied): the bonded link cannot be encrypted, and it is dropped unserved.
                impostor = await asyncio.to_thread(
                    start_ble_emulator, "--ble", impostor_spec, "--ble-address", address, "--version", "2",
                    "--stripe-api-base", live_emulator.url, "--card", "visa", "--present-after", "0",
                )  # fmt: skip
                await log.wait_for(lambda message: "encryption" in message)
                status = daemon.parts.reader.status()
                assert status["link"]["last_error"] == (
                    "Bluetooth: Connection failed: encryption with the bonded key failed (PIN_OR_KEY_MISSING_ERROR)"
                )
                assert status["state"] == "disconnected"
                refused = await pos.call("payment.start", {"order_id": "IMP-1", "amount": 100, "currency": "eur"})
                assert refused["error"]["data"]["reason"] == "READER_UNAVAILABLE"
                await pos.close()
            code, stderr = await asyncio.to_thread(impostor.stop, signal.SIGINT)
            assert code == 0, stderr
            assert "welcome" not in {e.get("event") for e in impostor.events}  # not one HELLO reached it

    with attached("readerhost.reader") as log:
        asyncio.run(asyncio.wait_for(scenario(), 90))
