"""readerhostd with a Stripe smart reader: the stripe_terminal driver, through the real stripe
library, against the built-in emulator's simulated WisePOS E; the POS on the real socket. The test
plays the customer with Stripe's test helper (present_payment_method) and the reader's knobs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from support.daemon import LineClient, of_type, running_daemon, subscribed_when_connected
from support.smart_reader import (
    CONFIG,
    DECLINED_INSUFFICIENT_FUNDS,
    FLOWS,
    Customer,
    at_the_counter,
    run,
    waiting_for_card,
)

from readerhost.client import AsyncClient


async def start(pos: LineClient, order_id: str, amount: int = 1250) -> str:
    started = await pos.call("payment.start", {"order_id": order_id, "amount": amount, "currency": "usd"})
    payment_id: str = started["result"]["payment_id"]
    await waiting_for_card(pos, payment_id)
    return payment_id


@pytest.mark.parametrize("flow", list(FLOWS))
def test_approve_decline_and_collect_again_then_capture(tmp_path: Path, flow: str) -> None:
    async def scenario() -> None:
        async with at_the_counter(tmp_path, FLOWS[flow]) as (pos, customer):
            reader = (await pos.call("status.get"))["result"]["reader"]
            assert reader["id"].startswith("tmr_")
            assert (reader["state"], reader["model"]) == ("ready", "simulated_wisepos_e")

            # Approved at the reader: the daemon reads the PaymentIntent back and captures it.
            payment_id = await start(pos, "T-1")
            await customer.presents()
            authorised = await pos.event(of_type("payment.state", payment_id=payment_id, state="authorized"))
            assert authorised["params"]["data"]["card"]["last4"] == "4242"
            await pos.call("payment.capture", {"payment_id": payment_id})
            await pos.event(of_type("payment.state", payment_id=payment_id, state="captured"))

            # Declined by the card: collected again on the same PaymentIntent, approved.
            payment_id = await start(pos, "T-2", 2000)
            await customer.presents(DECLINED_INSUFFICIENT_FUNDS)
            declined = await pos.event(of_type("payment.state", payment_id=payment_id, state="declined"))
            assert declined["params"]["data"]["decline"]["decline_code"] == "insufficient_funds"
            await pos.call("payment.collect_again", {"payment_id": payment_id})
            await waiting_for_card(pos, payment_id)
            await customer.presents("5555555555554444")
            done = await pos.event(of_type("payment.state", payment_id=payment_id, state="authorized"))
            assert done["params"]["data"]["card"]["brand"] == "mastercard"

            # Declined by the amount (ending 05).
            payment_id = await start(pos, "T-3", 1005)
            await customer.presents()
            declined = await pos.event(of_type("payment.state", payment_id=payment_id, state="declined"))
            assert declined["params"]["data"]["decline"]["decline_code"] == "generic_decline"

            # The reader confirmed every PaymentIntent itself; the daemon never did.
            confirms = customer.journal("payment_intent.confirm")
            assert len(confirms) == 4
            assert all(c.idempotency_key is None for c in confirms)
            assert [c.amount for c in customer.journal("payment_intent.capture")] == [1250]

    run(scenario())


def test_cancel_from_the_pos_and_by_the_customer_at_the_reader(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with at_the_counter(tmp_path) as (pos, customer):
            await pos.call("events.subscribe", {"topics": ["payment", "reader", "queue"]})
            payment_id = await start(pos, "C-1")
            pos.events.clear()  # from here, the queue empties only once the cancel reached Stripe
            canceled = await pos.call("payment.cancel", {"payment_id": payment_id})
            assert canceled["result"]["state"] == "canceled"
            # The reader stops waiting for the card (the driver's cancel_action, or the PaymentIntent's
            # cancel, whichever reaches Stripe first), and the PaymentIntent is canceled at Stripe.
            await pos.event(of_type("queue.changed", pending=0))
            assert [e.status for e in customer.journal("payment_intent.cancel")] == ["canceled"]
            assert await asyncio.to_thread(customer.emulator.wait_reader_action, customer.reader_id, 10)
            reader = await asyncio.to_thread(customer.stripe.v1.terminal.readers.retrieve, customer.reader_id)
            assert reader.action is None or reader.action.status != "in_progress"

            payment_id = await start(pos, "C-2")
            customer.emulator.configure_reader(customer.reader_id, {"customer_cancels": True})
            failed = await pos.event(lambda e: e["type"] == "payment.state" and e["data"].get("error"))
            assert failed["params"]["data"]["state"] == "collecting"
            assert "canceled on the reader" in failed["params"]["data"]["error"]["message"]
            await pos.call("payment.cancel", {"payment_id": payment_id})
            await pos.event(of_type("payment.state", payment_id=payment_id, state="canceled"))
            assert customer.journal("payment_intent.confirm") == []

    run(scenario())


@pytest.mark.parametrize(
    ("flow", "action"), [("two_step", "collect_payment_method"), ("process", "process_payment_intent")]
)
def test_a_reader_timeout_that_went_through_is_followed_not_sent_again(tmp_path: Path, flow: str, action: str) -> None:
    async def scenario() -> None:
        async with at_the_counter(tmp_path, FLOWS[flow]) as (pos, customer):
            customer.emulator.configure_reader(customer.reader_id, {"timeout": "after_apply"})
            payment_id = await start(pos, "TO-1")
            await customer.presents()
            await pos.event(of_type("payment.state", payment_id=payment_id, state="authorized"))
            assert len(customer.journal(f"reader.{action}")) == 1
            assert len(customer.journal("payment_intent.confirm")) == 1

    run(scenario())


def test_a_busy_reader_and_an_offline_reader(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with at_the_counter(tmp_path) as (pos, customer):
            # Something else left the reader showing a cart: the payment replaces it.
            await asyncio.to_thread(
                customer.stripe.v1.terminal.readers.set_reader_display,
                customer.reader_id,
                {
                    "type": "cart",
                    "cart": {
                        "currency": "usd",
                        "line_items": [{"amount": 100, "description": "Tea", "quantity": 1}],
                        "total": 100,
                    },
                },
            )
            payment_id = await start(pos, "B-1")
            await customer.presents()
            await pos.event(of_type("payment.state", payment_id=payment_id, state="authorized"))

            # The reader loses its connection: the payment waits, the POS and the screen are told.
            customer.emulator.configure_reader(customer.reader_id, {"online": False})
            started = await pos.call("payment.start", {"order_id": "B-2", "amount": 1250, "currency": "usd"})
            failed = await pos.event(lambda e: e["type"] == "payment.state" and e["data"].get("error"))
            assert failed["params"]["data"]["payment_id"] == started["result"]["payment_id"]
            assert failed["params"]["data"]["error"]["reason"] == "READER_UNAVAILABLE"
            assert "offline" in failed["params"]["data"]["error"]["message"]
            lost = await pos.event(of_type("reader.disconnected"))
            assert "offline" in lost["params"]["data"]["reason"]
            customer.emulator.configure_reader(customer.reader_id, {"online": True})
            await pos.call("payment.collect_again", {"payment_id": started["result"]["payment_id"]})
            await pos.event(of_type("reader.connected", reason="reconnected"))
            await customer.presents()
            await pos.event(of_type("payment.state", state="authorized"))

    run(scenario())


def test_without_stripe_a_smart_reader_takes_no_payment(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_daemon(tmp_path, CONFIG) as daemon:
            pos = await subscribed_when_connected(daemon.socket_path)
            daemon.worker.health.reachable = False  # as after failures in a row: no Stripe
            refused = await pos.call(
                "payment.start", {"order_id": "O-1", "amount": 1250, "currency": "usd", "offline": "prefer_online"}
            )
            assert refused["error"]["data"]["reason"] == "STRIPE_UNAVAILABLE"
            assert "works only online" in refused["error"]["message"]
            await pos.close()

    run(scenario())


def test_a_registration_code_stripe_refuses_leaves_the_daemon_running_and_saying_why(tmp_path: Path) -> None:
    config = CONFIG.replace('"simulated-wpe"', '"no-such-code"')

    async def scenario() -> None:
        async with running_daemon(tmp_path, config) as daemon:
            pos = await LineClient.connect(daemon.socket_path)
            await pos.receive()
            reader = (await pos.call("status.get"))["result"]["reader"]
            assert (reader["state"], reader["id"]) == ("disconnected", None)
            assert reader["link"]["last_error"].startswith("cannot register a Stripe reader: The registration code")
            refused = await pos.call("payment.start", {"order_id": "R-1", "amount": 1250, "currency": "usd"})
            assert refused["error"]["data"]["reason"] == "READER_UNAVAILABLE"
            assert "not registered" in refused["error"]["message"]
            await pos.close()

    run(scenario())


def test_stripe_going_down_while_the_reader_waits_ends_the_collection_collectable_again(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with at_the_counter(tmp_path) as (pos, customer):
            payment_id = await start(pos, "D-1")
            down = customer.emulator.add_fault({"method": "GET", "path": "^/v1/terminal/readers/", "action": "down"})
            failed = await pos.event(lambda e: e["type"] == "payment.state" and e["data"].get("error"))
            assert failed["params"]["data"]["state"] == "collecting"
            assert "Stripe cannot be reached" in failed["params"]["data"]["error"]["message"]
            customer.emulator.faults.remove(down.id)
            await pos.call("payment.collect_again", {"payment_id": payment_id})
            await waiting_for_card(pos, payment_id)
            await customer.presents()
            await pos.event(of_type("payment.state", payment_id=payment_id, state="authorized"))

    run(scenario())


def test_the_cart_on_the_readers_screen_between_payments(tmp_path: Path) -> None:
    cart = {
        "currency": "usd",
        "line_items": [{"description": "Coffee", "amount": 350, "quantity": 2}, {"description": "Cake", "amount": 450}],
        "tax": 50,
        "total": 1200,
    }

    async def scenario() -> None:
        async with at_the_counter(tmp_path) as (pos, customer):
            assert (await pos.call("reader.display_cart", cart))["result"] == {}
            shown = await asyncio.to_thread(customer.stripe.v1.terminal.readers.retrieve, customer.reader_id)
            assert shown.action is not None
            assert shown.action.type == "set_reader_display"
            assert shown.action.set_reader_display is not None
            assert shown.action.set_reader_display.cart is not None
            assert [i.description for i in shown.action.set_reader_display.cart.line_items] == ["Coffee", "Cake"]
            assert shown.action.set_reader_display.cart.total == 1200

            # While a payment holds the reader, a cart would replace its prompt: refused.
            payment_id = await start(pos, "K-1", 1200)
            busy = await pos.call("reader.display_cart", cart)
            assert busy["error"]["data"]["reason"] == "BUSY"
            await customer.presents()
            await pos.event(of_type("payment.state", payment_id=payment_id, state="authorized"))

            bad = await pos.call("reader.display_cart", {**cart, "line_items": [{"description": "", "amount": 1}]})
            assert bad["error"]["data"]["field"] == "line_items[0].description"

    run(scenario())


def test_the_clients_display_cart_shows_it_on_the_reader(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_daemon(tmp_path, CONFIG) as daemon, await AsyncClient.connect(daemon.socket_path) as pos:
            if (await pos.subscribe(["reader"]))["reader"]["state"] != "ready":
                await pos.wait_for_event(lambda event: event.type == "reader.connected", 15)
            items = [{"description": "Coffee", "amount": 350, "quantity": 2}, {"description": "Cake", "amount": 450}]
            await pos.display_cart("usd", items, total=1200, tax=50)
            customer = Customer(daemon)
            shown = await asyncio.to_thread(customer.stripe.v1.terminal.readers.retrieve, customer.reader_id)
            assert shown.action is not None
            assert shown.action.set_reader_display is not None
            cart = shown.action.set_reader_display.cart
            assert cart is not None
            assert [(i.description, i.amount, i.quantity) for i in cart.line_items] == [
                ("Coffee", 350, 2), ("Cake", 450, 1),
            ]  # fmt: skip
            assert (cart.tax, cart.total) == (50, 1200)

    run(scenario())


def test_a_cart_on_a_reader_without_a_screen_is_unsupported(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_daemon(tmp_path) as daemon:  # the simulated reader
            pos = await LineClient.connect(daemon.socket_path)
            await pos.receive()
            cart = {"currency": "usd", "line_items": [{"description": "Tea", "amount": 250}], "total": 250}
            refused = await pos.call("reader.display_cart", cart)
            assert refused["error"]["data"]["reason"] == "UNSUPPORTED"
            await pos.close()

    run(scenario())


def test_a_reader_busy_processing_another_card_is_waited_out_not_forced(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with at_the_counter(tmp_path) as (pos, customer):
            # Another PaymentIntent's card is being processed on the reader (someone else's request).
            other = await asyncio.to_thread(
                customer.stripe.v1.payment_intents.create,
                {"amount": 500, "currency": "usd", "capture_method": "manual"},
            )
            await asyncio.to_thread(
                customer.stripe.v1.terminal.readers.process_payment_intent,
                customer.reader_id,
                {"payment_intent": other.id},
            )
            customer.emulator.configure_reader(customer.reader_id, {"processing_s": 60})
            await customer.presents()
            started = await pos.call("payment.start", {"order_id": "BZ-1", "amount": 1250, "currency": "usd"})
            payment_id = started["result"]["payment_id"]
            failed = await pos.event(lambda e: e["type"] == "payment.state" and e["data"].get("error"))
            assert "busy" in failed["params"]["data"]["error"]["message"]
            customer.emulator.configure_reader(customer.reader_id, {"processing_s": 0})  # the other card is done
            assert await asyncio.to_thread(customer.emulator.wait_reader_action, customer.reader_id, 10)
            await pos.call("payment.collect_again", {"payment_id": payment_id})
            await waiting_for_card(pos, payment_id)
            await customer.presents()
            await pos.event(of_type("payment.state", payment_id=payment_id, state="authorized"))

    run(scenario())
