"""jsonrpcclient, a mainstream Python JSON-RPC 2.0 library that leaves the transport to its caller,
against a real readerhostd: the library builds every request and reads every answer; the transport
below is the few lines any integrator writes (a Unix stream socket, one JSON text per line)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from jsonrpcclient import Error, Ok, parse, request
from support.daemon import LineClient, of_type, running_daemon
from support.log_waiter import attached

PLAIN = "[api]\njsonrpc_socket = 'jsonrpc.sock'\n[reader.simulated]\npresent_after_s = -1\n"


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 60))


class LineTransport:
    """A request out, the next line in: all a JSON-RPC library needs from a newline-framed socket."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def connect(cls, path: Path) -> LineTransport:
        return cls(*await asyncio.open_unix_connection(str(path)))

    async def send(self, message: dict[str, Any]) -> Ok | Error:
        self._writer.write(json.dumps(message).encode() + b"\n")
        await self._writer.drain()
        answer = parse(json.loads(await asyncio.wait_for(self._reader.readline(), 10)))
        assert isinstance(answer, (Ok, Error))  # one answer, not a batch
        return answer

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        answer = await self.send(request(method, params=params))
        assert isinstance(answer, Ok), answer
        return answer.result

    async def close(self) -> None:
        self._writer.close()
        await self._writer.wait_closed()


async def watching(path: Path) -> LineClient:
    """A banner-reading POS on the POS socket, subscribed: its events say when to take the next step."""
    watcher = await LineClient.connect(path)
    await watcher.receive()  # the banner
    await watcher.call("events.subscribe", {"topics": ["payment", "reader"]})
    return watcher


def test_jsonrpcclient_takes_a_payment_through_to_capture_on_the_plain_socket(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_daemon(tmp_path, PLAIN) as daemon:
            assert daemon.jsonrpc_socket_path is not None
            watcher = await watching(daemon.socket_path)
            rpc = await LineTransport.connect(daemon.jsonrpc_socket_path)
            assert await rpc.call("session.hello") == daemon.parts.status.banner()
            started = await rpc.call("payment.start", {"order_id": "PY-1", "amount": 900, "currency": "usd"})
            payment_id = started["payment_id"]
            await watcher.event(of_type("reader.input_options"))
            assert await rpc.call("reader.present", {"card": "mastercard"}) == {}
            await watcher.event(of_type("payment.state", payment_id=payment_id, state="authorized"))
            assert (await rpc.call("payment.get", {"payment_id": payment_id}))["card"]["brand"] == "mastercard"
            await rpc.call("payment.capture", {"payment_id": payment_id})
            await watcher.event(of_type("payment.state", payment_id=payment_id, state="captured"))
            assert (await rpc.call("payment.get", {"order_id": "PY-1"}))["captured_amount"] == 900
            unknown = await rpc.send(request("payment.get", params={"payment_id": "pay_unknown"}))
            assert isinstance(unknown, Error)
            assert unknown.data["reason"] == "NOT_FOUND"
            await rpc.close()
            await watcher.close()

    run(scenario())


def test_leaving_the_plain_socket_abandons_no_payment_while_leaving_the_pos_socket_does(tmp_path: Path) -> None:
    # A generic library may connect once per request: on the plain socket a connection owns nothing.
    async def scenario() -> None:
        async with running_daemon(tmp_path, PLAIN) as daemon:
            assert daemon.jsonrpc_socket_path is not None
            watcher = await watching(daemon.socket_path)

            plain = await LineTransport.connect(daemon.jsonrpc_socket_path)
            kept = await plain.call("payment.start", {"order_id": "PY-2", "amount": 500, "currency": "usd"})
            await watcher.event(of_type("reader.input_options"))
            with attached("readerhost.daemon.api.owners") as log:
                await plain.close()
                await log.wait_for(lambda line: line.endswith("left: no payment of its waited for a card"))
            # Still collecting after its client left: the same card then pays it.
            assert (await watcher.call("reader.present", {"card": "visa"}))["result"] == {}
            await watcher.event(of_type("payment.state", payment_id=kept["payment_id"], state="authorized"))

            pos = await LineClient.connect(daemon.socket_path)
            await pos.receive()  # the banner
            left = (await pos.call("payment.start", {"order_id": "PY-3", "amount": 500, "currency": "usd"}))["result"]
            await watcher.event(of_type("reader.input_options"))
            await pos.close()
            # Abandoned: its client left while the reader waited for a card.
            await watcher.event(of_type("payment.state", payment_id=left["payment_id"], state="canceled"))
            await watcher.close()

    run(scenario())


def test_session_hello_answers_what_the_pos_socket_greets_with_and_the_plain_socket_file_goes_at_stop(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with running_daemon(tmp_path, PLAIN) as daemon:
            assert daemon.jsonrpc_socket_path is not None
            assert daemon.jsonrpc_socket_path.is_socket()
            assert oct(daemon.jsonrpc_socket_path.stat().st_mode & 0o777) == "0o660"  # as the POS socket
            pos = await LineClient.connect(daemon.socket_path)
            greeting = await pos.receive()
            assert greeting["method"] == "hello"
            assert (await pos.call("session.hello"))["result"] == greeting["params"]
            await pos.close()
        assert not (tmp_path / "jsonrpc.sock").exists()
        assert not (tmp_path / "api.sock").exists()

    run(scenario())
