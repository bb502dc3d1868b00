"""What a reader reports (`notify`) and the prompts it relays (a ReaderListener), kept for a test
to wait on: for tests that drive a reader driver directly."""

from __future__ import annotations

import asyncio
from typing import Any

WAIT_S = 10.0


class Notices:
    """What the reader reports through `notify`, with a way to wait for the next of a kind."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []
        self._changed = asyncio.Condition()

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        self.seen.append((kind, data))
        asyncio.get_running_loop().create_task(self._wake())

    async def _wake(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def count(self, kind: str) -> int:
        return sum(1 for k, _ in self.seen if k == kind)

    async def wait_for(self, kind: str, count: int = 1) -> dict[str, Any]:
        async with asyncio.timeout(WAIT_S), self._changed:
            await self._changed.wait_for(lambda: self.count(kind) >= count)
        return [d for k, d in self.seen if k == kind][count - 1]


class Prompts:
    def __init__(self) -> None:
        self.seen: list[tuple[str, object]] = []

    def input_options(self, options: list[str]) -> None:
        self.seen.append(("options", options))

    def display_message(self, message: str) -> None:
        self.seen.append(("message", message))

    def card_event(self, event: str) -> None:
        self.seen.append(("card", event))
