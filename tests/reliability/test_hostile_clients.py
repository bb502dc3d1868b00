"""Hostile and heavy clients around a well-behaved one: 50 clients polling, clients that never
read what they asked for, clients that connect and never speak, and a peer of another uid. The
well-behaved POS must complete its payments all the same; each hostile kind gets what it deserves.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from support.other_user import NOBODY, drop_to_nobody, open_to_all

from bench.support import JsonLines, daemon_config, pay, readerhostd, workdir
from reliability.fuzz import mutated_frames

CONFIG = daemon_config(
    extra="\n[api]\nmax_clients = 100\nmax_queued_messages = 16\nslow_client_timeout_s = 1.0\n"
)  # fmt: skip


async def poller(path: Path, orders: list[str], until: asyncio.Event, answered: list[int]) -> None:
    client = await JsonLines.connect(path)
    count = 0
    while not until.is_set():
        status = await client.call("status.get")
        assert status["mode"] == "emulator"
        refused = ""
        try:
            await client.call("payment.get", {"order_id": orders[count % len(orders)]})
        except RuntimeError as error:  # not started yet
            refused = str(error)
        assert not refused or "NOT_FOUND" in refused, refused
        count += 1
    answered.append(count)
    await client.close()


async def slow_reader(path: Path) -> bool:
    """Asks and asks, never reads: True once the daemon cut it off."""
    reader, writer = await asyncio.open_unix_connection(str(path))
    request = b'{"jsonrpc":"2.0","id":1,"method":"status.get"}\n'
    try:
        for _ in range(200):
            writer.write(request * 100)
            await asyncio.wait_for(writer.drain(), 15.0)
    except (ConnectionError, TimeoutError):
        pass
    # The daemon aborted the connection: what is left to read ends in a reset or an end of file.
    try:
        while await asyncio.wait_for(reader.read(1 << 20), 15.0):
            pass
    except ConnectionError:
        pass
    writer.close()
    return True


@pytest.mark.timeout(120)
def test_a_well_behaved_pos_pays_among_hostile_and_heavy_clients() -> None:
    if os.geteuid() != 0 or shutil.which("socat") is None:
        pytest.skip("the peer of another uid needs root to switch user, and socat")
    with workdir("rel-host-") as folder, readerhostd(CONFIG, folder=folder) as daemon:
        open_to_all(daemon.socket_path)
        orders = [f"H-{n}" for n in range(1, 6)]

        async def scenario() -> tuple[list[int], float]:
            silent = [await asyncio.open_unix_connection(str(daemon.socket_path)) for _ in range(20)]
            stop = asyncio.Event()
            answered: list[int] = []
            pollers = [asyncio.create_task(poller(daemon.socket_path, orders, stop, answered)) for _ in range(50)]
            slow = [asyncio.create_task(slow_reader(daemon.socket_path)) for _ in range(3)]
            good = await JsonLines.connect(daemon.socket_path, ("payment", "reader"))
            started = time.monotonic()
            for order in orders:
                await pay(good, order)
            took = time.monotonic() - started
            stop.set()
            await asyncio.gather(*pollers)
            assert all(await asyncio.gather(*slow))
            # The silent ones are still connected, and the daemon still greets newcomers.
            late = await JsonLines.connect(daemon.socket_path)
            await late.call("status.get")
            await late.close()
            for _, writer in silent:
                writer.close()
            await good.close()
            return answered, took

        answered, took = asyncio.run(scenario())
        assert len(answered) == 50
        assert min(answered) >= 5, answered  # every poller was served throughout
        assert took < 30, f"5 payments took {took:.1f} s among the hostile clients"
        daemon.log.until(lambda line: "dropped: it does not read what it is sent" in line, 10)

        # A peer that dropped to another uid is refused with FORBIDDEN and closed.
        # (socat, not Python: the interpreter may sit where that user cannot read, like /root.)
        probe = subprocess.run(
            ["socat", "-u", f"UNIX-CONNECT:{daemon.socket_path}", "-"],  # it only listens: the daemon speaks first
            preexec_fn=drop_to_nobody, capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert probe.stdout, probe.stderr
        messages = [json.loads(line) for line in probe.stdout.splitlines()]
        assert [m["error"]["data"]["reason"] for m in messages] == ["FORBIDDEN"]
        daemon.log.until(lambda line: "refused client" in line and f"uid {NOBODY}" in line, 10)


def test_mutated_frames_are_answered_and_change_nothing() -> None:
    """A short fuzz over one connection: answers only, and the store has no payment afterwards."""
    import random

    with workdir("rel-mut-") as folder, readerhostd(daemon_config(), folder=folder) as daemon:

        async def scenario() -> list[dict[str, Any]]:
            reader, writer = await asyncio.open_unix_connection(str(daemon.socket_path), limit=2**20)
            await reader.readline()  # hello
            for frame in mutated_frames(500, random.Random(5)):
                writer.write(frame)
            writer.write(b'{"jsonrpc":"2.0","id":"end","method":"payment.list"}\n')
            await writer.drain()
            answers = []
            while True:
                message = json.loads(await asyncio.wait_for(reader.readline(), 30))
                if message.get("id") == "end":
                    break
                answers.append(message)
            writer.close()
            assert message["result"]["payments"] == []
            return answers

        answers = asyncio.run(scenario())
        assert answers, "the damaged frames got no answer at all"
        assert not [a for a in answers if (a.get("error") or {}).get("code") == -32603]
