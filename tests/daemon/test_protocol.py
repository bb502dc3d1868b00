"""POS protocol conformance over a real Unix socket, against readerhostd running in this process."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from support.daemon import LineClient, running_daemon

from readerhost.daemon.api.methods import METHODS
from readerhost.daemon.api.protocol import REASON_CODES


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 60))


async def hello(client: LineClient) -> dict[str, Any]:
    banner = await client.receive()
    assert banner["method"] == "hello"
    return banner


async def connected(path: Path) -> LineClient:
    client = await LineClient.connect(path)
    await hello(client)
    return client


def error_reason(reply: dict[str, Any]) -> str:
    return str(reply["error"]["data"]["reason"])


def test_banner_then_status(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_daemon(tmp_path) as daemon:
            client = await LineClient.connect(daemon.socket_path)
            banner = await hello(client)
            assert banner["params"]["protocol"]["major"] == 1
            assert banner["params"]["mode"] == "emulator"
            assert banner["params"]["boot_id"] == daemon.boot_id
            status = (await client.call("status.get"))["result"]
            assert set(status) == {
                "daemon", "protocol", "boot_id", "mode", "uptime_s", "reader", "stripe", "queue", "offline", "store",
                "deadline", "unattended",
            }  # fmt: skip
            assert status["deadline"] is None  # no payment waits for a capture
            assert status["store"]["path"] == str(daemon.store_path)
            assert status["store"]["bytes"] > 0
            assert status["mode"] == "emulator"
            assert status["reader"]["state"] == "ready"
            assert status["queue"] == {"pending": 0, "oldest_age_s": None}
            await client.close()

    run(scenario())


def test_a_payment_over_the_socket_with_events_in_seq_order(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_daemon(tmp_path) as daemon:
            pos = await connected(daemon.socket_path)
            snapshot = (await pos.call("events.subscribe", {"topics": ["payment", "reader", "queue"]}))["result"]
            assert snapshot["snapshot"]["payments"] == []
            started = (await pos.call("payment.start", {"order_id": "S-1", "amount": 1250, "currency": "usd"}))[
                "result"
            ]
            assert started["state"] == "creating"
            options = await pos.event(lambda e: e["type"] == "reader.input_options")
            assert options["params"]["data"]["payment_id"] == started["payment_id"]
            assert (await pos.call("reader.present", {"card": "visa"}))["result"] == {}
            authorised = await pos.event(lambda e: e["type"] == "payment.state" and e["data"]["state"] == "authorized")
            assert authorised["params"]["data"]["card"] == {
                "brand": "visa",
                "last4": "4242",
                "read_method": "contactless_emv",
                "wallet": None,
                "network": "visa",
            }
            captured = await pos.call("payment.capture", {"payment_id": started["payment_id"], "amount": 1000})
            assert captured["result"]["state"] in ("capturing", "captured")
            await pos.event(lambda e: e["type"] == "payment.state" and e["data"]["state"] == "captured")
            events = pos.seen_events
            seqs = [e["seq"] for e in events]
            assert seqs == list(range(1, len(seqs) + 1))  # numbered per connection, no gaps
            assert {e["boot_id"] for e in events} == {daemon.boot_id}
            got = (await pos.call("payment.get", {"order_id": "S-1"}))["result"]
            assert got["state"] == "captured"
            assert got["captured_amount"] == 1000
            listed = (await pos.call("payment.list", {"states": ["captured"]}))["result"]["payments"]
            assert [p["order_id"] for p in listed] == ["S-1"]
            await pos.close()

    run(scenario())


def test_busy_same_order_and_conflict(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_daemon(tmp_path) as daemon:
            first = await connected(daemon.socket_path)
            second = await connected(daemon.socket_path)
            params = {"order_id": "B-1", "amount": 1000, "currency": "usd"}
            a = (await first.call("payment.start", params))["result"]
            b = (await second.call("payment.start", params))["result"]
            assert a["payment_id"] == b["payment_id"]
            conflict = await second.call("payment.start", {**params, "amount": 2000})
            assert error_reason(conflict) == "IDEMPOTENCY_CONFLICT"
            assert conflict["error"]["code"] == REASON_CODES["IDEMPOTENCY_CONFLICT"]
            busy = await second.call("payment.start", {**params, "order_id": "B-2"})
            assert error_reason(busy) == "BUSY"
            assert busy["error"]["data"]["retryable"] is True
            await first.close()
            await second.close()

    run(scenario())


@pytest.mark.parametrize(
    ("line", "code", "reason"),
    [
        (b"{not json\n", -32700, "PARSE_ERROR"),
        (b"\xff\xfe\n", -32700, "PARSE_ERROR"),
        (b"[1, 2]\n", -32600, "INVALID_REQUEST"),
        (b'"hello"\n', -32600, "INVALID_REQUEST"),
        (b'{"jsonrpc": "1.0", "id": 1, "method": "status.get"}\n', -32600, "INVALID_REQUEST"),
        (b'{"jsonrpc": "2.0", "id": 1}\n', -32600, "INVALID_REQUEST"),
        (b'{"jsonrpc": "2.0", "id": true, "method": "status.get"}\n', -32600, "INVALID_REQUEST"),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "no.such"}\n', -32601, "METHOD_NOT_FOUND"),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "status.get", "params": [1]}\n', -32602, "INVALID_PARAMS"),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "payment.start", "params": {"amount": "10"}}\n', -32602,
         "INVALID_PARAMS"),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "payment.get", "params": {"payment_id": 5}}\n', -32602,
         "INVALID_PARAMS"),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "payment.get", "params": {"payment_id": "pay_x"}}\n', 1003,
         "NOT_FOUND"),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "payment.capture", "params": {"payment_id": "pay_x", "x": 1}}\n',
         -32602, "INVALID_PARAMS"),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "events.subscribe", "params": {"topics": ["nope"]}}\n', -32602,
         "INVALID_PARAMS"),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "display.show", "params": {"lines": ["a", "b", "c", "d", "e"]}}\n',
         -32602, "INVALID_PARAMS"),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "reader.present", "params": {"card": "4242424242424242"}}\n', 1003,
         "NOT_FOUND"),
    ],
)  # fmt: skip
def test_bad_requests_get_a_clear_error_and_the_connection_stays_usable(
    tmp_path: Path, line: bytes, code: int, reason: str
) -> None:
    async def scenario() -> None:
        async with running_daemon(tmp_path) as daemon:
            client = await connected(daemon.socket_path)
            await client.send_raw(line)
            reply = await client.receive()
            assert reply["error"]["code"] == code
            assert reply["error"]["data"]["reason"] == reason
            assert "Traceback" not in json.dumps(reply)
            still = await client.call("status.get")
            assert "result" in still
            assert (await client.call("payment.list"))["result"]["payments"] == []
            await client.close()

    run(scenario())


def test_every_method_refuses_parameters_its_table_entry_lacks_and_asks_for_its_required_ones(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with running_daemon(tmp_path) as daemon:
            client = await connected(daemon.socket_path)
            for method in METHODS:
                reply = await client.call(method.name, {"colour": "blue"})
                assert reply["error"] == {
                    "code": -32602,
                    "message": "unknown parameter 'colour'",
                    "data": {"reason": "INVALID_PARAMS", "field": "colour", "retryable": False},
                }, method.name
                required = {param.name for param in method.params if param.required}
                if required:
                    reply = await client.call(method.name, {})
                    assert reply["error"]["data"]["field"] in required, method.name
            assert (await client.call("payment.list"))["result"]["payments"] == []  # nothing was started
            await client.close()

    run(scenario())


def test_a_notification_gets_no_reply(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_daemon(tmp_path) as daemon:
            client = await connected(daemon.socket_path)
            await client.send_raw(b'{"jsonrpc": "2.0", "method": "display.show", "params": {"lines": ["hi"]}}\n')
            reply = await client.call("status.get")
            assert reply["id"] == client.next_id
            assert client.events == []
            await client.close()

    run(scenario())


def test_an_oversized_line_is_refused_and_the_connection_closed(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_daemon(tmp_path) as daemon:
            hostile = await connected(daemon.socket_path)
            bystander = await connected(daemon.socket_path)
            await hostile.send_raw(b'{"jsonrpc": "2.0", "id": 1, "method": "' + b"x" * (1 << 20) + b'"}\n')
            reply = await hostile.receive()
            assert reply["error"]["code"] == -32600
            assert reply["error"]["data"]["reason"] == "FRAME_TOO_LARGE"
            with pytest.raises(ConnectionError):
                await hostile.receive()
            assert "result" in await bystander.call("status.get")
            await bystander.close()

    run(scenario())


def test_a_client_that_leaves_mid_collection_cancels_its_payment(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_daemon(tmp_path) as daemon:
            watcher = await connected(daemon.socket_path)
            await watcher.call("events.subscribe", {"topics": ["payment"]})
            pos = await connected(daemon.socket_path)
            started = (await pos.call("payment.start", {"order_id": "L-1", "amount": 1000, "currency": "usd"}))[
                "result"
            ]
            await watcher.event(lambda e: e["type"] == "payment.state" and e["data"]["state"] == "collecting")
            await pos.close()
            canceled = await watcher.event(lambda e: e["type"] == "payment.state" and e["data"]["state"] == "canceled")
            assert canceled["params"]["data"]["payment_id"] == started["payment_id"]
            # The reader is free for the next customer.
            assert "result" in await watcher.call(
                "payment.start", {"order_id": "L-2", "amount": 1000, "currency": "usd"}
            )
            await watcher.close()

    run(scenario())


def test_the_client_that_collects_again_owns_the_new_collection(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_daemon(tmp_path) as daemon:
            watcher = await connected(daemon.socket_path)
            await watcher.call("events.subscribe", {"topics": ["payment"]})
            first = await connected(daemon.socket_path)
            payment_id = (await first.call("payment.start", {"order_id": "O-1", "amount": 1000, "currency": "usd"}))[
                "result"
            ]["payment_id"]
            await watcher.event(lambda e: e["type"] == "payment.state" and e["data"]["state"] == "collecting")
            assert (await first.call("reader.present", {"card": "charge_declined"}))["result"] == {}
            await watcher.event(lambda e: e["type"] == "payment.state" and e["data"]["state"] == "declined")
            second = await connected(daemon.socket_path)
            again = await second.call("payment.collect_again", {"payment_id": payment_id})
            assert again["result"]["state"] == "collecting"
            await second.close()  # the second client asked for this card: its leaving abandons the payment
            canceled = await watcher.event(lambda e: e["type"] == "payment.state" and e["data"]["state"] == "canceled")
            assert canceled["params"]["data"]["payment_id"] == payment_id
            await first.close()
            await watcher.close()

    run(scenario())


SLOW = """
[api]
max_queued_messages = 4
slow_client_timeout_s = 1.0

[reader.simulated]
present_after_s = -1
"""


def test_a_client_that_never_reads_is_dropped_and_others_carry_on(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_daemon(tmp_path, SLOW) as daemon:
            sleeper = await connected(daemon.socket_path)
            await sleeper.call("events.subscribe", {"topics": ["display"]})
            transport = sleeper.writer.transport
            assert isinstance(transport, asyncio.ReadTransport)
            transport.pause_reading()  # it stops reading, as a stuck POS would
            active = await connected(daemon.socket_path)
            await active.call("events.subscribe", {"topics": ["display"]})
            deadline = time.monotonic() + 20
            n = 0
            while any(c.number == 1 for c in daemon.parts.api.server.clients):  # events pile up for the sleeper
                assert time.monotonic() < deadline, "the client that never reads was not dropped"
                reply = await active.call("display.show", {"lines": [f"line {n} " + "x" * 50]})
                assert reply["result"] == {}
                active.events.clear()
                n += 1
            assert "result" in await active.call("status.get")
            await active.close()

    run(scenario())


def test_a_flood_of_requests_is_answered_in_order(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_daemon(tmp_path) as daemon:
            client = await connected(daemon.socket_path)
            burst = b"".join(
                json.dumps({"jsonrpc": "2.0", "id": n, "method": "status.get"}).encode() + b"\n" for n in range(500)
            )
            await client.send_raw(burst)
            ids = [(await client.receive())["id"] for _ in range(500)]
            assert ids == list(range(500))
            await client.close()

    run(scenario())
