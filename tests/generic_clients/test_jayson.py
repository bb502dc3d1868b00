"""jayson's stream (TCP) client for Node.js, unmodified, against a real readerhostd over its Unix sockets.

On the POS socket jayson takes the banner for its answer (why protocol 1.5 has the plain socket); on
the plain JSON-RPC socket it takes a payment through to capture, one connection per request. The npm
packages come from tests/generic_clients/node/package-lock.json, installed by `./dev setup` (npm ci):
never downloaded here. jayson 5 declares Node.js 20 or newer, yet it is what npm installs on Debian 12
too (its nodejs is 18; npm only warns, EBADENGINE), and these tests pass there with it.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from support.daemon import LineClient, running_daemon

NODE_PACKAGE = Path(__file__).parent / "node"
NODE = shutil.which("node")
PLAIN = "[api]\njsonrpc_socket = 'jsonrpc.sock'\n[reader.simulated]\npresent_after_s = -1\n"

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not installed (Debian's nodejs package; .ci/run installs it)"),
    pytest.mark.skipif(
        not (NODE_PACKAGE / "node_modules" / "jayson").is_dir(),
        reason="jayson is not installed: run ./dev setup (npm ci in tests/generic_clients/node)",
    ),
]


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 90))


async def node(*args: str) -> dict[str, Any]:
    """pay.js's steps, by name; its failure fails the test with what it said."""
    assert NODE is not None
    process = await asyncio.create_subprocess_exec(
        NODE, str(NODE_PACKAGE / "pay.js"), *args,
        cwd=NODE_PACKAGE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    steps = [json.loads(line) for line in out.decode().splitlines()]
    return {step["step"]: step["value"] for step in steps}


def test_on_the_pos_socket_jayson_takes_the_banner_for_its_first_answer(tmp_path: Path) -> None:
    # The reason for the plain socket: this is what a POS maker got before 1.5, with no error.
    async def scenario() -> None:
        async with running_daemon(tmp_path) as daemon:
            answer = (await node("greet", str(daemon.socket_path)))["first_answer"]
            assert answer["method"] == "hello"
            assert "result" not in answer

    run(scenario())


def test_on_the_plain_socket_jayson_gets_its_answers(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_daemon(tmp_path, PLAIN) as daemon:
            assert daemon.jsonrpc_socket_path == tmp_path / "jsonrpc.sock"
            answer = (await node("greet", str(daemon.jsonrpc_socket_path)))["first_answer"]
            assert answer["result"]["daemon"] == daemon.version
            assert answer["result"]["boot_id"] == daemon.boot_id

    run(scenario())


def test_jayson_takes_a_payment_through_to_capture_on_the_plain_socket(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_daemon(tmp_path, PLAIN) as daemon:
            assert daemon.jsonrpc_socket_path is not None
            steps = await node("pay", str(daemon.jsonrpc_socket_path), "JAYSON-1")
            banner = daemon.parts.status.banner()
            assert steps["hello"] == banner
            assert steps["started"]["order_id"] == "JAYSON-1"
            assert steps["presented"] == {}
            assert steps["authorized"]["card"]["brand"] == "visa"
            assert steps["captured"]["state"] == "captured"
            assert steps["captured"]["captured_amount"] == 1250
            assert steps["unknown"]["data"]["reason"] == "NOT_FOUND"
            # The POS socket's clients see the same payment: one daemon behind both sockets.
            pos = await LineClient.connect(daemon.socket_path)
            assert (await pos.receive())["params"] == banner
            seen = (await pos.call("payment.get", {"order_id": "JAYSON-1"}))["result"]
            assert seen["state"] == "captured"
            assert seen["payment_id"] == steps["started"]["payment_id"]
            await pos.close()

    run(scenario())
