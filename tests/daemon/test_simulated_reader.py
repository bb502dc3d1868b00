"""The simulated reader through the socket: its prompts, its timed card, and cards presented on command."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from support.daemon import LineClient, running_daemon


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 60))


async def subscribed(path: Path) -> LineClient:
    client = await LineClient.connect(path)
    await client.receive()  # the banner
    await client.call("events.subscribe", {"topics": ["payment", "reader"]})
    return client


def test_retry_card_once_then_the_configured_card_after_its_delay(tmp_path: Path) -> None:
    config = "[reader.simulated]\ncard = 'mastercard'\npresent_after_s = 0.05\nretry_card_once = true\n"

    async def scenario() -> None:
        async with running_daemon(tmp_path, config) as daemon:
            pos = await subscribed(daemon.socket_path)
            await pos.call("payment.start", {"order_id": "R-1", "amount": 1000, "currency": "usd"})
            authorised = await pos.event(lambda e: e["type"] == "payment.state" and e["data"]["state"] == "authorized")
            assert authorised["params"]["data"]["card"]["brand"] == "mastercard"
            reader_events = [(e["type"], e["data"].get("message") or e["data"].get("event")) for e in pos.seen_events
                             if e["topic"] == "reader"]  # fmt: skip
            assert reader_events == [
                ("reader.input_options", None),
                ("reader.card", "card_inserted"),
                ("reader.display_message", "retry_card"),
                ("reader.card", "card_removed"),
            ]
            retry = next(e for e in pos.seen_events if e["type"] == "reader.display_message")
            assert retry["data"]["text"] == "Retry card"

    run(scenario())


def test_a_card_presented_while_nobody_waits_is_refused_and_not_kept(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_daemon(tmp_path) as daemon:
            pos = await subscribed(daemon.socket_path)
            idle = await pos.call("reader.present", {"card": "visa"})
            assert idle["error"]["data"]["reason"] == "INVALID_STATE"
            await pos.call("payment.start", {"order_id": "R-2", "amount": 1000, "currency": "usd"})
            await pos.event(lambda e: e["type"] == "reader.input_options")
            status = (await pos.call("status.get"))["result"]
            assert status["reader"]["state"] == "collecting"  # still waiting: the refused card was not kept
            assert (await pos.call("reader.present", {"card": "amex"}))["result"] == {}
            done = await pos.event(lambda e: e["type"] == "payment.state" and e["data"]["state"] == "authorized")
            assert done["params"]["data"]["card"]["brand"] == "amex"

    run(scenario())
