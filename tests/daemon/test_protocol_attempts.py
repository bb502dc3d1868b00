"""Orders paid again over the socket (protocol 1.4): payment.start after a cancel answers the order's
next attempt, payment.list's order_id shows its attempts, payment.close records the order paid another
way, and its refusals say which attempt stands in the way."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from support.daemon import LineClient, running_daemon

from readerhost.daemon.api.protocol import REASON_CODES


async def connected(path: Path) -> LineClient:
    client = await LineClient.connect(path)
    assert (await client.receive())["method"] == "hello"
    return client


def error_of(reply: dict[str, Any]) -> tuple[int, str, str]:
    error = reply["error"]
    return error["code"], error["data"]["reason"], error["message"]


def test_an_order_canceled_is_paid_again_then_closed_as_paid_another_way(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_daemon(tmp_path) as daemon:
            pos = await connected(daemon.socket_path)
            await pos.call("events.subscribe", {"topics": ["payment"]})
            order = {"order_id": "P-1", "amount": 1250, "currency": "usd"}
            first = (await pos.call("payment.start", order))["result"]
            assert (first["order_attempt"], first["closed_by"]) == (1, None)
            await pos.event(lambda e: e["type"] == "payment.state" and e["data"]["state"] == "collecting")

            refused = await pos.call("payment.close", {"order_id": "P-1", "paid_by": "other"})
            code, reason, message = error_of(refused)
            assert (code, reason) == (REASON_CODES["INVALID_STATE"], "INVALID_STATE")
            assert message == (
                f"payment {first['payment_id']} (attempt 1) of order P-1 is in progress at the reader "
                "(collecting): cancel it first"
            )
            await pos.call("payment.cancel", {"payment_id": first["payment_id"]})
            second = (await pos.call("payment.start", order))["result"]
            assert (second["order_attempt"], second["state"]) == (2, "creating")
            assert second["payment_id"] != first["payment_id"]
            await pos.call("payment.cancel", {"payment_id": second["payment_id"]})

            bad = await pos.call("payment.close", {"order_id": "P-1", "paid_by": "cash"})
            assert (bad["error"]["code"], bad["error"]["data"]["field"]) == (-32602, "paid_by")
            closed = (await pos.call("payment.close", {"order_id": "P-1", "paid_by": "other"}))["result"]
            assert (closed["order_id"], closed["closed_by"]) == ("P-1", "other")
            assert closed["closed_at"].endswith("Z")
            assert [(p["payment_id"], p["order_attempt"], p["state"], p["closed_by"]) for p in closed["payments"]] == [
                (first["payment_id"], 1, "canceled", "other"),
                (second["payment_id"], 2, "canceled", "other"),
            ]
            again = (await pos.call("payment.close", {"order_id": "P-1", "paid_by": "other"}))["result"]
            assert again == closed  # asking again is harmless

            listed = (await pos.call("payment.list", {"order_id": "P-1"}))["result"]["payments"]
            assert [p["order_attempt"] for p in listed] == [2, 1]  # newest first
            assert (await pos.call("payment.get", {"order_id": "P-1"}))["result"]["payment_id"] == second["payment_id"]
            code, reason, message = error_of(await pos.call("payment.start", order))
            assert (code, reason) == (REASON_CODES["INVALID_STATE"], "INVALID_STATE")
            assert message.startswith("order P-1 was closed as paid other at ")
            await pos.close()

    asyncio.run(scenario())
