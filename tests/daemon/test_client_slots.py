"""The socket's client slots ([api] max_clients): silent connections cannot lock working clients out."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from support.daemon import DEFAULT_CONFIG, LineClient, running_daemon

CONFIG = DEFAULT_CONFIG + "[api]\nmax_clients = 3\n"


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 60))


async def banner_of(client: LineClient) -> dict[str, Any]:
    return await client.receive()


def test_when_every_slot_is_taken_the_oldest_silent_connection_makes_room(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_daemon(tmp_path, CONFIG) as daemon:
            working = await LineClient.connect(daemon.socket_path)
            await banner_of(working)
            assert "result" in await working.call("status.get")
            silent = [await LineClient.connect(daemon.socket_path) for _ in range(2)]
            for client in silent:
                await banner_of(client)

            # A fourth: the oldest silent connection goes, the newcomer is served.
            newcomer = await LineClient.connect(daemon.socket_path)
            assert (await banner_of(newcomer))["method"] == "hello"
            assert await asyncio.wait_for(silent[0].reader.read(), 10) == b""  # closed by the daemon
            assert "result" in await newcomer.call("status.get")
            assert "result" in await working.call("status.get")  # the working client kept its slot

            # Every slot now held by a client that spoke: the next one is refused, as before.
            await silent[1].call("status.get")
            refused = await LineClient.connect(daemon.socket_path)
            answer = json.loads(await asyncio.wait_for(refused.reader.readline(), 10))
            assert answer["error"]["data"]["reason"] == "BUSY"
            for client in (working, silent[1], newcomer, refused):
                await client.close()

    run(scenario())
