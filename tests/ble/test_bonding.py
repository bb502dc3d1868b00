"""Bluetooth bonding (docs/reader-link-protocol.md § 5.1): readerhostd takes only a bonded reader at
its configured address. Real bleak through its public API on the bumble-backed backend, whose
pairing is bumble's SMP (LE Secure Connections, bonding) with the keys in a keystore file; the
reference device as a peripheral whose link characteristic takes writes only over an encrypted link;
`readerhostctl reader pair` as a process against the daemon."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import pytest
from bleak import BleakClient
from conftest import EmulatorHandle
from support.ble_bonding import ctl, refused_reader
from support.daemon import daemon_process, of_type, running_daemon
from support.log_waiter import attached
from support.other_user import NOBODY, open_to_all

from readerhost.daemon.journal import MessageId
from readerhost.drivers.reader import ReaderSettings
from readerhost.drivers.reader import ble as ble_driver
from readerhost.drivers.reader.base import ReaderContext
from readerhost.drivers.reader.ble import BleSettings
from readerhost.drivers.reader.link.backend import SdkBackend
from readerhost.sim.ble_radio import VirtualRadio
from readerhost.sim.reader_device.ble import peripheral_on
from readerhost.sim.reader_device.device import DeviceIdentity, DeviceScript, ReaderDevice
from readerhost.sim.reader_device.sdk import SdkClient


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 90))


def config(url: str, address: str) -> str:
    # require_bond is left at its default (true): bonding is asked for with a test key too.
    return f"""
[stripe]
api_base = "{url}"
max_network_retries = 0
[reader]
driver = "ble"
reconnect_max_s = 0.3
[reader.ble]
address = "{address}"
scan_timeout_s = 2
connect_timeout_s = 5
protocol = 2
"""


def refusals(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "journal", {}).get("MESSAGE_ID") == MessageId.READER_REFUSED]


def test_an_unbonded_reader_is_refused_then_paired_with_readerhostctl_pays_and_stays_bonded(
    tmp_path: Path, stripe_emulator: EmulatorHandle, caplog: pytest.LogCaptureFixture
) -> None:
    keystore = tmp_path / "bonds.json"

    async def scenario() -> None:
        async with VirtualRadio(keystore=keystore) as radio:
            device = ReaderDevice(
                DeviceIdentity(versions=(2,)), DeviceScript(card=None), sdk=SdkClient(stripe_emulator.url)
            )
            async with peripheral_on(radio, device, require_encryption=True) as peripheral:
                address = peripheral.address
                async with running_daemon(
                    tmp_path, config(stripe_emulator.url, address), ble_backends=radio.bleak_backends()
                ) as daemon:
                    # Not bonded: refused, said why (journal, status, technician screen), never talked to.
                    pos, status = await refused_reader(daemon.socket_path)
                    assert status["link"]["refused"] == "not bonded"
                    assert status["link"]["last_error"] == (
                        f"the Bluetooth device {address} is not bonded with this host: "
                        "pair it once with `sudo readerhostctl reader pair`"
                    )
                    assert daemon.parts.status.technician_info()["reader"] == "refused: not bonded"
                    assert peripheral.connections == 0
                    code, out, _ = await ctl(daemon.socket_path, "status")
                    assert f"ble {address}: {status['link']['last_error']}" in out
                    [refused] = refusals(caplog)  # once, not at every attempt
                    assert refused.levelno == logging.ERROR
                    assert refused.getMessage() == f"reader ble {address} refused: {status['link']['last_error']}"
                    # The technician pairs: bumble's SMP bonds, the keys land in the keystore file.
                    code, out, err = await ctl(daemon.socket_path, "reader", "pair")
                    assert code == 0, err
                    assert out.splitlines()[0] == (
                        f"bonded with the reader at {address} (LE Secure Connections); the bond is kept across restarts"
                    )
                    assert address in keystore.read_text()
                    await pos.event(of_type("reader.connected", reason="connected"))
                    assert daemon.parts.reader.status()["link"]["refused"] is None
                    assert peripheral.refused_writes == 0  # every write went over the encrypted link

                    # A protocol 2 payment end to end over the bonded, encrypted link.
                    started = await pos.call("payment.start", {"order_id": "BOND-1", "amount": 1250, "currency": "eur"})
                    payment_id = started["result"]["payment_id"]
                    await device.wait_collecting()
                    busy = await pos.call("reader.pair")  # never under a payment
                    assert busy["error"]["data"]["reason"] == "BUSY"
                    device.present("visa")
                    authorised = await pos.event(of_type("payment.state", payment_id=payment_id, state="authorized"))
                    intent = authorised["params"]["data"]["payment_intent"]
                    assert stripe_emulator.emulator.payment_intents.get(intent).status == "requires_capture"

                    # The host restarts its adapter (a reboot): the bond comes back from the keystore file.
                    await radio.restart_adapter()
                    await pos.event(of_type("reader.connected", reason="reconnected"))
                    assert peripheral.refused_writes == 0
                    code, out, _ = await ctl(daemon.socket_path, "reader", "pair")
                    assert code == 0
                    assert out.splitlines()[0] == f"already bonded with the reader at {address}: nothing done"
                    await pos.close()

    with caplog.at_level(logging.INFO, logger="readerhostd"):
        run(scenario())


def test_a_bonded_device_at_another_address_is_never_taken(tmp_path: Path, stripe_emulator: EmulatorHandle) -> None:
    async def scenario() -> None:
        async with VirtualRadio() as radio:
            client_backend, _ = radio.bleak_backends()
            device = ReaderDevice(DeviceIdentity(versions=(2,)), DeviceScript(card=None))
            async with peripheral_on(radio, device, require_encryption=True) as configured:
                configured_address = configured.address
                async with BleakClient(configured_address, backend=client_backend) as client:
                    await client.pair()
            other_device = ReaderDevice(DeviceIdentity(versions=(2,)), DeviceScript(card=None))
            async with peripheral_on(radio, other_device, require_encryption=True) as other:
                async with BleakClient(other.address, backend=client_backend) as client:
                    await client.pair()
                assert await radio.bonded(configured_address)
                assert await radio.bonded(other.address)
                before = other.connections
                with attached("readerhost.reader") as log:
                    async with running_daemon(
                        tmp_path, config(stripe_emulator.url, configured_address), ble_backends=radio.bleak_backends()
                    ) as daemon:
                        # The configured reader is away: the other one, bonded and advertising, is not taken.
                        said = await log.wait_for(lambda message: "unavailable" in message)
                        status = daemon.parts.reader.status()
                        timed_out = "connecting timed out after 5 s"
                        assert said == f"reader ble {configured_address} unavailable: {timed_out}; retrying"
                        assert status["link"]["last_error"] == "connecting timed out after 5 s"  # looked for it only
                    assert status["link"]["address"] == configured_address
                    assert status["state"] != "ready"
                    assert other.connections == before

    run(scenario())


def test_a_live_key_requires_the_bond() -> None:
    notices: list[tuple[str, dict[str, Any]]] = []
    context = ReaderContext(
        ReaderSettings(driver="ble"),
        lambda kind, data: notices.append((kind, data)),
        sdk_backend=lambda location: cast(SdkBackend, object()),  # never reached: the reader never connects
        live=True,
    )

    async def scenario() -> None:
        settings = BleSettings(address="C0:FF:EE:12:34:56", require_bond=False, protocol=2)
        reader = ble_driver.open_reader(settings, context)
        await reader.start()
        try:
            assert reader.status()["link"]["last_error"] == ble_driver.BOND_REQUIRED
            assert reader.status()["link"]["refused"] == "live key"
        finally:
            await reader.stop()

    run(scenario())
    assert [(kind, data["reason"]) for kind, data in notices] == [("reader.refused", ble_driver.BOND_REQUIRED)]


ASK_AS_POS = """
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rwb")
f.readline()  # the banner
f.write(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "reader.pair", "params": {}}).encode() + b"\\n")
f.flush()
print(f.readline().decode())
"""


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="switching to another user needs root and setpriv"
)
def test_only_root_and_the_daemons_user_may_pair(tmp_path: Path) -> None:
    with daemon_process(tmp_path, f"[api]\nallowed_gids = [{NOBODY}]\n") as daemon:
        open_to_all(daemon.daemon_socket_path)
        done = subprocess.run(
            ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", sys.executable, "-c", ASK_AS_POS,
             str(daemon.daemon_socket_path)],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        answer = json.loads(done.stdout)
        assert answer["error"]["data"]["reason"] == "FORBIDDEN"
        assert answer["error"]["message"] == (
            "only root and the daemon's own user may pair a reader (sudo readerhostctl ...)"
        )


def test_pairing_refused_for_a_reader_that_does_not_pair_and_failing_for_one_not_there(tmp_path: Path) -> None:
    for name in ("simulated", "ble"):
        (tmp_path / name).mkdir()

    async def scenario() -> None:
        async with running_daemon(tmp_path / "simulated") as simulated:
            code, out, err = await ctl(simulated.socket_path, "reader", "pair")
            assert (code, out) == (1, "")
            assert err == "readerhostctl: the simulated reader is not paired: it is no Bluetooth reader (UNSUPPORTED)\n"
        async with VirtualRadio() as radio:
            absent = """
[reader]
driver = "ble"
[reader.ble]
address = "C0:DE:00:00:EE:EE"
connect_timeout_s = 1
"""
            async with running_daemon(tmp_path / "ble", absent, ble_backends=radio.bleak_backends()) as daemon:
                pos, _ = await refused_reader(daemon.socket_path)
                code, out, err = await ctl(daemon.socket_path, "reader", "pair")
                assert (code, out) == (1, "")
                assert err.startswith("readerhostctl: pairing failed: ")
                assert err.endswith(" (READER_UNAVAILABLE)\n")
                assert len(err.splitlines()) == 1
                assert not await radio.bonded("C0:DE:00:00:EE:EE")
                # The link is tried again after the failed pairing: still refused, still said once.
                assert daemon.parts.reader.status()["link"]["refused"] == "not bonded"
                await pos.close()

    run(scenario())
