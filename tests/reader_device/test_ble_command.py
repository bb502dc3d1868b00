"""`readerhost-reader-emulator --ble TRANSPORT` in its own process, on a controller of a VirtualRadio
exposed over bumble's TCP transport (as a USB dongle would be): real bleak, and readerhostd, find it
and speak the link protocol with it across the two processes."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from support.ble_host import BleHost
from support.daemon import of_type, running_daemon, subscribed_when_connected
from support.link_host import MODULE

from readerhost.drivers.reader.link.codec import MessageType
from readerhost.sim.ble_radio import VirtualRadio
from readerhost.sim.reader_device.ble import DEFAULT_NAME, LINK_SERVICE_UUID

from .conftest import BleEmulatorProcess

StartBleEmulator = Callable[..., BleEmulatorProcess]
WAIT_S = 5.0
CONFIG = '[reader]\ndriver = "ble"\n[reader.ble]\nrequire_bond = false\n'


def run(coroutine: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coroutine, 30))


async def find(radio: VirtualRadio) -> BLEDevice:
    _client, scanner_backend = radio.bleak_backends()
    device = await BleakScanner.find_device_by_filter(
        lambda _d, _adv: True, timeout=WAIT_S, service_uuids=[LINK_SERVICE_UUID], backend=scanner_backend
    )
    assert device is not None, "nothing advertises the link service"
    return device


async def started(start: StartBleEmulator, *args: str) -> BleEmulatorProcess:
    return await asyncio.to_thread(start, *args)


async def control(emulator: BleEmulatorProcess, command: dict[str, Any]) -> dict[str, Any]:
    return await asyncio.to_thread(emulator.control, command)


async def stopped(emulator: BleEmulatorProcess, signum: int = signal.SIGTERM) -> tuple[int, str]:
    """Stop it while the radio still runs: it says goodbye to its controller on the way out."""
    return await asyncio.to_thread(emulator.stop, signum)


def test_bleak_finds_the_emulator_process_talks_the_link_protocol_and_sees_unplug_and_replug(
    start_ble_emulator: StartBleEmulator,
) -> None:
    async def scenario() -> None:
        async with VirtualRadio() as radio:
            spec = await radio.expose_controller("emulator")
            emulator = await started(start_ble_emulator, "--ble", spec, "--card", "visa", "--present-after", "0")
            assert emulator.name == DEFAULT_NAME
            found = await find(radio)
            assert found.address == emulator.address
            # Shortened: the whole name is in the scan response, which the virtual controller leaves out.
            assert found.name
            assert DEFAULT_NAME.startswith(found.name)

            client_backend, _scanner = radio.bleak_backends()
            disconnected = asyncio.Event()
            client = BleakClient(found, disconnected_callback=lambda _c: disconnected.set(), backend=client_backend)
            await client.connect()
            host = BleHost(client)
            await host.start()
            await host.send(MessageType.HELLO, {"versions": [1]})
            assert (await host.until(MessageType.WELCOME)).body["serial"] == "EMU-0001"
            await host.send(MessageType.COLLECT, {"collection": 1, "amount": 1250, "currency": "eur", "wait_s": 30})
            collected = await host.until(MessageType.COLLECTED)
            assert (collected.body["collection"], collected.body["brand"]) == (1, "visa")
            status = await control(emulator, {"status": True})
            assert status == {
                "ok": True,
                "ble": emulator.address,
                "plugged": True,
                "connected": True,
                "collecting": None,
                "received": status["received"],
            }

            # Unplugged: a remote disconnect, and the reader stays away until replugged.
            assert await control(emulator, {"unplug": True}) == {"ok": True}
            await asyncio.wait_for(disconnected.wait(), WAIT_S)
            assert await control(emulator, {"unplug": True}) == {"error": "not plugged in"}
            status = await control(emulator, {"status": True})
            assert (status["plugged"], status["connected"]) == (False, False)
            assert await control(emulator, {"replug": True}) == {"ok": True, "ble": emulator.address}
            await client.connect()
            host = BleHost(client)
            await host.start()
            await host.send(MessageType.HELLO, {"versions": [1]})
            await host.until(MessageType.WELCOME)
            await client.disconnect()

            code, stderr = await stopped(emulator)
            assert code == 0, stderr
            assert "Traceback" not in stderr
            assert {"welcome", "collecting", "collected"} <= {e["event"] for e in emulator.events}

    run(scenario())


def test_readerhostd_takes_a_payment_through_the_emulator_process(
    start_ble_emulator: StartBleEmulator, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with VirtualRadio() as radio:
            spec = await radio.expose_controller("emulator")
            emulator = await started(start_ble_emulator, "--ble", spec, "--card", "visa", "--present-after", "0")
            async with running_daemon(tmp_path, CONFIG, ble_backends=radio.bleak_backends()) as daemon:
                pos = await subscribed_when_connected(daemon.socket_path)
                reader = (await pos.call("status.get"))["result"]["reader"]
                assert (reader["state"], reader["serial"], reader["link"]["transport"]) == ("ready", "EMU-0001", "ble")
                await pos.call("payment.start", {"order_id": "E-1", "amount": 1250, "currency": "eur"})
                authorised = await pos.event(of_type("payment.state", state="authorized"))
                assert authorised["params"]["data"]["card"]["last4"] == "4242"
                await pos.close()
            collected = await asyncio.to_thread(emulator.event, "collected")
            assert collected["brand"] == "visa"
            code, stderr = await stopped(emulator, signal.SIGINT)
            assert code == 0, stderr
            assert "Traceback" not in stderr

    run(scenario())


def test_the_emulator_exits_1_when_its_controller_goes_away(start_ble_emulator: StartBleEmulator) -> None:
    async def scenario() -> None:
        async with VirtualRadio() as radio:
            emulator = await started(start_ble_emulator, "--ble", await radio.expose_controller("emulator"))
        await asyncio.to_thread(emulator.process.wait, 10)  # the radio closing is what stops it
        code, stderr = emulator.stop()
        assert code == 1
        assert "the Bluetooth transport" in stderr
        assert "closed" in stderr

    run(scenario())


@pytest.mark.parametrize("transport", ["nosuch:thing", "tcp-client:127.0.0.1:1"])
def test_a_transport_that_cannot_be_opened_exits_1_with_one_line(transport: str) -> None:
    finished = subprocess.run([*MODULE, "--ble", transport], capture_output=True, text=True, timeout=30, check=False)

    assert finished.returncode == 1
    assert finished.stdout == ""
    assert finished.stderr.count("\n") == 1
    assert finished.stderr.startswith(f"readerhost-reader-emulator: cannot open the Bluetooth transport '{transport}'")
