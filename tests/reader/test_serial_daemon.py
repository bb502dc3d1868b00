"""readerhostd with a serial reader: pyserial's real POSIX code on a real pty, the reader emulator
in another process on the other end, the POS on the real socket."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from pathlib import Path
from typing import Any

import pytest
from support.daemon import daemon_process, of_type, running_daemon, subscribed_when_connected
from support.reader_emulator import reader_emulator


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 60))


def config(link: Path, cancel_confirm_s: float = 2.0) -> str:
    return f"""
[reader]
driver = "serial"
reconnect_max_s = 0.5
cancel_confirm_s = {cancel_confirm_s}
[reader.serial]
device = "{link}"
"""


def test_a_payment_with_prompts_then_an_unplug_mid_collection_and_a_replug(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with (
            reader_emulator(tmp_path, "--card", "none", "--prompt", "insert_card", "--serial", "SER-7") as emulator,
            running_daemon(tmp_path, config(emulator.link)) as daemon,
        ):
            pos = await subscribed_when_connected(daemon.socket_path)
            reader = (await pos.call("status.get"))["result"]["reader"]
            assert (reader["state"], reader["id"], reader["model"]) == ("ready", "SER-7", "readerhost-emulator")
            assert reader["link"] == {
                "transport": "serial", "device": str(emulator.link), "connected": True,
                "connected_since": reader["link"]["connected_since"], "connections": 1, "last_error": None,
                "refused": None,
            }  # fmt: skip
            refused = await pos.call("reader.present", {"card": "visa"})
            assert refused["error"]["data"]["reason"] == "UNSUPPORTED"

            # A whole payment: the reader's options and prompt reach the POS as events.
            await pos.call("payment.start", {"order_id": "S-1", "amount": 1250, "currency": "eur"})
            collecting = await emulator.event("collecting")
            assert (collecting["amount"], collecting["currency"]) == (1250, "eur")
            options = await pos.event(of_type("reader.input_options"))
            assert options["params"]["data"]["options"] == ["tap", "insert", "swipe"]
            prompt = await pos.event(of_type("reader.display_message", message="insert_card"))
            assert prompt["params"]["data"]["text"] == "Insert card"
            assert (await emulator.command(present="visa")) == {"ok": True}
            authorised = await pos.event(of_type("payment.state", state="authorized"))
            assert authorised["params"]["data"]["card"] == {
                "brand": "visa",
                "last4": "4242",
                "read_method": "contactless_emv",
                "wallet": None,
                "network": "visa",
            }

            # Unplugged while the reader waits for a card: the payment waits to be collected again.
            started = await pos.call("payment.start", {"order_id": "S-2", "amount": 990, "currency": "eur"})
            payment_id = started["result"]["payment_id"]
            await emulator.event("collecting")
            assert (await emulator.command(unplug=True)) == {"ok": True}
            failed = await pos.event(lambda e: e["type"] == "payment.state" and e["data"].get("error"))
            assert failed["params"]["data"]["state"] == "collecting"
            assert failed["params"]["data"]["error"]["reason"] == "READER_UNAVAILABLE"
            lost = await pos.event(of_type("reader.disconnected", id="SER-7"))
            assert "disconnected" in lost["params"]["data"]["reason"]
            assert not emulator.link.exists()
            # Still unplugged: said so at once, and no new payment is started meanwhile.
            again = await pos.call("payment.collect_again", {"payment_id": payment_id})
            assert again["error"]["data"]["reason"] == "READER_UNAVAILABLE"
            assert again["error"]["data"]["retryable"] is True
            other = await pos.call("payment.start", {"order_id": "S-3", "amount": 990, "currency": "eur"})
            assert other["error"]["data"]["reason"] == "BUSY"  # S-2 still holds the reader

            # Plugged back in: the daemon finds it by itself, and the same payment completes.
            await emulator.command(replug=True)
            await pos.event(of_type("reader.connected", reason="reconnected"))
            await pos.call("payment.collect_again", {"payment_id": payment_id})
            await emulator.event("collecting")
            await emulator.command(present="mastercard")
            done = await pos.event(of_type("payment.state", payment_id=payment_id, state="authorized"))
            assert done["params"]["data"]["card"]["brand"] == "mastercard"
            await pos.close()

    run(scenario())


def test_garbled_frames_are_logged_and_the_payment_completes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async with (
            reader_emulator(tmp_path, "--card", "amex", "--present-after", "0") as emulator,
            running_daemon(tmp_path, config(emulator.link)) as daemon,
        ):
            pos = await subscribed_when_connected(daemon.socket_path)
            assert (await emulator.command(garble_next=3)) == {"ok": True}
            await pos.call("payment.start", {"order_id": "G-1", "amount": 1250, "currency": "eur"})
            authorised = await pos.event(of_type("payment.state", state="authorized"))
            assert authorised["params"]["data"]["card"]["brand"] == "amex"
            await pos.close()

    with caplog.at_level(logging.WARNING, logger="readerhost.reader"):
        run(scenario())
    assert sum("dropped a damaged frame" in message for message in caplog.messages) == 3


def test_a_second_daemon_on_the_same_port_is_refused_and_says_so(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with (
            reader_emulator(tmp_path, "--card", "none") as emulator,
            running_daemon(tmp_path / "first", config(emulator.link)) as first,
        ):
            pos = await subscribed_when_connected(first.socket_path)
            second_dir = tmp_path / "second"
            second_dir.mkdir()
            with daemon_process(second_dir, config(emulator.link)) as second:
                refused = "in use by another process"
                if not any(refused in line for line in second.log.seen):  # it may come before " ready on "
                    await asyncio.to_thread(second.log.until, lambda line: refused in line)
                status = await asyncio.to_thread(status_of, second.socket_path)
                reader = status["reader"]
                assert reader["state"] == "connecting"
                assert reader["link"]["connected"] is False
                assert "in use by another process" in reader["link"]["last_error"]
            # The first keeps its reader.
            await pos.call("payment.start", {"order_id": "X-1", "amount": 1250, "currency": "eur"})
            await emulator.event("collecting")
            await pos.close()

    (tmp_path / "first").mkdir()
    run(scenario())


def status_of(path: Path) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX) as connection:
        connection.connect(str(path))
        lines = connection.makefile("rwb")
        lines.readline()  # the banner
        lines.write(b'{"jsonrpc": "2.0", "id": 1, "method": "status.get"}\n')
        lines.flush()
        result: dict[str, Any] = json.loads(lines.readline())["result"]
        return result


def test_a_cancel_completes_when_the_reader_stops_answering_and_the_reset_link_comes_back(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with (
            reader_emulator(tmp_path, "--card", "none") as emulator,
            running_daemon(tmp_path, config(emulator.link, cancel_confirm_s=0.5)) as daemon,
        ):
            pos = await subscribed_when_connected(daemon.socket_path)
            started = await pos.call("payment.start", {"order_id": "H-1", "amount": 1250, "currency": "eur"})
            await emulator.event("collecting")
            assert (await emulator.command(stop_answering=True)) == {"ok": True}
            canceled = await pos.call("payment.cancel", {"payment_id": started["result"]["payment_id"]})
            assert canceled["result"]["state"] == "canceled"  # the POS is never kept waiting for the reader
            lost = await pos.event(of_type("reader.disconnected"))
            # The link was reset: the CANCEL, or a keepalive PING ahead of it, went unanswered.
            reason = lost["params"]["data"]["reason"]
            assert "cancel" in reason.lower() or "no acknowledgement" in reason
            await emulator.command(stop_answering=False)
            await pos.event(of_type("reader.connected", reason="reconnected"))
            await pos.call("payment.start", {"order_id": "H-2", "amount": 1250, "currency": "eur"})
            await emulator.event("collecting")
            await emulator.command(present="visa")
            await pos.event(of_type("payment.state", state="authorized"))
            await pos.close()

    run(scenario())
