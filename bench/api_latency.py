"""Round trips of the POS socket: `status.get` and `payment.get` against a real readerhostd.

Each client is an asyncio connection sending raw JSON lines, one request outstanding at a time,
timing each request from write to its answer. One client, then 50 at once (the daemon's default
`[api] max_clients` is 32, so the benchmark's config raises it to 64). The daemon uses its built-in
emulator; one payment is made first so that `payment.get` reads a real, captured payment.
The floor is the same JSON-lines round trip on a Unix socket to a trivial asyncio server in a
process of its own: what any local socket API in Python costs before doing anything.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.common import Result, percentile, table
from bench.support import JsonLines, daemon_config, pay, readerhostd, workdir

KEY = "api-latency"
CONCURRENT = 50

CONFIG_EXTRA = """
[api]
max_clients = 64
"""


async def timed_calls(client: JsonLines, method: str, params: dict[str, Any] | None, calls: int) -> list[float]:
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        await client.call(method, params)
        times.append(time.perf_counter() - started)
    return times


async def clients_calling(
    connect: Callable[[], Awaitable[JsonLines]], method: str, params: dict[str, Any] | None, clients: int, calls: int
) -> list[float]:
    connected = [await connect() for _ in range(clients)]
    try:
        per_client = await asyncio.gather(*(timed_calls(c, method, params, calls) for c in connected))
    finally:
        for client in connected:
            await client.close()
    return [t for times in per_client for t in times]


ECHO_SERVER = """
import asyncio, json, sys

async def serve(reader, writer):
    writer.write(b'{"jsonrpc":"2.0","method":"hello","params":{}}\\n')
    while line := await reader.readline():
        request = json.loads(line)
        writer.write(json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": {}}).encode() + b"\\n")
        await writer.drain()
    writer.close()

async def main():
    server = await asyncio.start_unix_server(serve, sys.argv[1], backlog=128)
    print("ready", flush=True)
    await server.serve_forever()

asyncio.run(main())
"""


async def echo_floor(folder: Path, clients: int, calls: int) -> list[float]:
    """The same traffic against a process whose asyncio server answers each line with `{}`."""
    path = folder / "echo.sock"
    path.unlink(missing_ok=True)
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-c", ECHO_SERVER, str(path), stdout=asyncio.subprocess.PIPE
    )
    try:
        assert server.stdout is not None
        await asyncio.wait_for(server.stdout.readline(), 30)
        return await clients_calling(lambda: JsonLines.connect(path), "status.get", None, clients, calls)
    finally:
        server.terminate()
        await server.wait()


async def measure(socket_path: Path, folder: Path, quick: bool) -> list[list[str]]:
    setup = await JsonLines.connect(socket_path, ["payment", "reader"])
    payment_id = await pay(setup, "LAT-1")
    await setup.close()

    def connect() -> Awaitable[JsonLines]:
        return JsonLines.connect(socket_path)

    rows = []
    for clients in (1, CONCURRENT):
        calls = 50 if quick else (1000 if clients == 1 else 200)
        cases: list[tuple[str, list[float]]] = [
            ("status.get", await clients_calling(connect, "status.get", None, clients, calls)),
            ("payment.get", await clients_calling(connect, "payment.get", {"payment_id": payment_id}, clients, calls)),
            ("floor: echo server", await echo_floor(folder, clients, calls)),
        ]
        for label, times in cases:
            ms = [t * 1000 for t in times]
            rows.append(
                [
                    label,
                    str(clients),
                    str(len(ms)),
                    f"{percentile(ms, 50):.2f}",
                    f"{percentile(ms, 99):.2f}",
                    f"{max(ms):.2f}",
                ]
            )
    return rows


def run(quick: bool) -> Result:
    with workdir() as folder, readerhostd(daemon_config(extra=CONFIG_EXTRA)) as daemon:
        rows = asyncio.run(measure(daemon.socket_path, folder, quick))
    notes = (
        "Each client keeps one request outstanding; with 50 clients a request's time includes "
        "waiting behind the 49 others on the daemon's single event loop, so p50 there is roughly "
        "50 times the daemon's time per request.",
        "The floor is the same clients against a trivial asyncio server in a process of its own "
        "(parse the line, answer `{}`): the cost of the socket, JSON and asyncio alone. "
        "The difference is the daemon's own work: logging each request, validating it, building "
        "the answer (`status.get` gathers reader, Stripe, queue and offline state; `payment.get` "
        "looks the payment up).",
        "No target; this is what a POS polling the daemon should expect.",
    )
    return Result(
        key=KEY,
        title="API latency",
        table=table(["request", "clients", "calls", "p50 ms", "p99 ms", "max ms"], rows),
        notes=notes,
    )
