"""readerhostd with a Stripe smart reader in the two-step flow: collect_payment_method, the kiosk's
confirmation, then confirm_payment_intent; the real stripe library over HTTP to the emulator's
simulated WisePOS E, the POS on the real socket. The test plays the customer with Stripe's test
helper (present_payment_method) and the reader's knobs, and reads the emulator's journal to count
what reached Stripe."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from conftest import EmulatorHandle, make_client
from support.daemon import LineClient, of_type, running_daemon, subscribed_when_connected
from support.smart_reader import (
    CONFIG,
    DECLINED_INSUFFICIENT_FUNDS,
    Customer,
    at_the_counter,
    run,
    waiting_for_card,
)


async def start(pos: LineClient, order_id: str, amount: int = 1250, **options: Any) -> str:
    params = {"order_id": order_id, "amount": amount, "currency": "usd", **options}
    started = await pos.call("payment.start", params)
    assert "result" in started, started
    payment_id: str = started["result"]["payment_id"]
    await waiting_for_card(pos, payment_id)
    return payment_id


async def present(customer: Customer, **given: Any) -> None:
    params: Any = given or {"card_present": {"number": "4242424242424242"}}
    await asyncio.to_thread(
        customer.stripe.v1.test_helpers.terminal.readers.present_payment_method,
        customer.reader_id,
        params,
    )


def intent_of(customer: Customer, intent_id: str) -> Any:
    return customer.stripe.v1.payment_intents.retrieve(intent_id)


def test_a_two_step_payment_waits_for_the_kiosks_confirmation_showing_the_card(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with at_the_counter(tmp_path) as (pos, customer):
            payment_id = await start(pos, "2S-1", confirm=True)
            await customer.presents()
            waiting = await pos.event(of_type("payment.state", payment_id=payment_id, state="awaiting_confirmation"))
            card = waiting["params"]["data"]["card"]
            assert (card["brand"], card["last4"], card["network"], card["wallet"]) == ("visa", "4242", "visa", None)
            assert card["read_method"]
            intent_id = waiting["params"]["data"]["payment_intent"]
            # The card is on the PaymentIntent, nothing is authorised before the kiosk says go.
            assert intent_of(customer, intent_id).status == "requires_confirmation"
            assert customer.journal("payment_intent.confirm") == []
            assert customer.journal("reader.confirm_payment_intent") == []

            confirmed = await pos.call("payment.confirm", {"payment_id": payment_id})
            assert confirmed["result"]["state"] == "processing"
            authorised = await pos.event(of_type("payment.state", payment_id=payment_id, state="authorized"))
            assert authorised["params"]["data"]["card"]["last4"] == "4242"
            await pos.call("payment.capture", {"payment_id": payment_id})
            await pos.event(of_type("payment.state", payment_id=payment_id, state="captured"))

            assert len(customer.journal("reader.collect_payment_method")) == 1
            assert len(customer.journal("reader.confirm_payment_intent")) == 1
            confirms = customer.journal("payment_intent.confirm")
            assert [(c.object, c.idempotency_key) for c in confirms] == [(intent_id, None)]  # the reader's own
            assert [c.amount for c in customer.journal("payment_intent.capture")] == [1250]

    run(scenario())


def test_a_decline_is_collected_again_on_the_same_payment_intent(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with at_the_counter(tmp_path) as (pos, customer):
            payment_id = await start(pos, "2S-D", 2000)
            await customer.presents(DECLINED_INSUFFICIENT_FUNDS)
            declined = await pos.event(of_type("payment.state", payment_id=payment_id, state="declined"))
            assert declined["params"]["data"]["decline"]["decline_code"] == "insufficient_funds"
            intent_id = declined["params"]["data"]["payment_intent"]

            again = await pos.call("payment.collect_again", {"payment_id": payment_id})
            assert again["result"]["state"] == "collecting"
            await waiting_for_card(pos, payment_id)
            await customer.presents("5555555555554444")
            authorised = await pos.event(of_type("payment.state", payment_id=payment_id, state="authorized"))
            assert authorised["params"]["data"]["payment_intent"] == intent_id
            assert authorised["params"]["data"]["card"]["brand"] == "mastercard"
            assert authorised["params"]["data"]["attempts"] == 2

            assert len(customer.journal("payment_intent.create")) == 1
            collects = customer.journal("reader.collect_payment_method")
            assert len(collects) == 2
            assert [c.status for c in customer.journal("payment_intent.confirm")] == [
                "requires_payment_method",
                "requires_capture",
            ]
            assert {c.object for c in customer.journal("payment_intent.confirm")} == {intent_id}

    run(scenario())


def test_a_confirm_whose_answer_is_lost_ends_authorised_with_one_confirm(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with at_the_counter(tmp_path) as (pos, customer):
            payment_id = await start(pos, "2S-L", confirm=True)
            await customer.presents()
            await pos.event(of_type("payment.state", payment_id=payment_id, state="awaiting_confirmation"))
            # The reader applies the confirm_payment_intent, but its answer is lost (a timeout); the
            # confirm takes a second, so asking again would find the reader busy with it.
            customer.emulator.configure_reader(customer.reader_id, {"timeout": "after_apply", "processing_s": 1.0})
            await pos.call("payment.confirm", {"payment_id": payment_id})
            await pos.event(of_type("payment.state", payment_id=payment_id, state="authorized"))
            assert len(customer.journal("reader.confirm_payment_intent")) == 1
            assert len(customer.journal("payment_intent.confirm")) == 1
            customer.emulator.configure_reader(customer.reader_id, {"processing_s": 0.05})

            # Lost before it applied: the reader is looked at, then asked again; one confirm still.
            payment_id = await start(pos, "2S-L2", confirm=True)
            await customer.presents()
            await pos.event(of_type("payment.state", payment_id=payment_id, state="awaiting_confirmation"))
            customer.emulator.configure_reader(customer.reader_id, {"timeout": "before_apply"})
            await pos.call("payment.confirm", {"payment_id": payment_id})
            await pos.event(of_type("payment.state", payment_id=payment_id, state="authorized"))
            assert len(customer.journal("reader.confirm_payment_intent")) == 2
            assert len(customer.journal("payment_intent.confirm")) == 2

            # Applied, then the connection reset, every time stripe-python retries under its key: no
            # answer at all; the reader is read, its confirm followed.
            payment_id = await start(pos, "2S-L3", confirm=True)
            await customer.presents()
            await pos.event(of_type("payment.state", payment_id=payment_id, state="awaiting_confirmation"))
            customer.emulator.configure_reader(customer.reader_id, {"processing_s": 1.0})
            reset = {"method": "POST", "path": "/confirm_payment_intent$", "action": "reset_after", "times": 3}
            rule = customer.emulator.add_fault(reset)
            await pos.call("payment.confirm", {"payment_id": payment_id})
            await pos.event(of_type("payment.state", payment_id=payment_id, state="authorized"))
            assert rule.fired >= 1
            assert len(customer.journal("reader.confirm_payment_intent")) == 3
            assert len(customer.journal("payment_intent.confirm")) == 3

    run(scenario())


def test_cancel_at_each_step(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with at_the_counter(tmp_path) as (pos, customer):
            # While the reader waits for the card: its action is canceled, and the PaymentIntent.
            payment_id = await start(pos, "2S-C1", confirm=True)
            canceled = await pos.call("payment.cancel", {"payment_id": payment_id})
            assert canceled["result"]["state"] == "canceled"
            assert await asyncio.to_thread(customer.emulator.wait_reader_action, customer.reader_id, 10)

            # With the card read, awaiting the kiosk's confirmation: nothing was authorised.
            payment_id = await start(pos, "2S-C2", confirm=True)
            await customer.presents()
            waiting = await pos.event(of_type("payment.state", payment_id=payment_id, state="awaiting_confirmation"))
            await pos.call("payment.cancel", {"payment_id": payment_id})
            await pos.event(of_type("payment.state", payment_id=payment_id, state="canceled"))
            intent_id = waiting["params"]["data"]["payment_intent"]
            assert await until(lambda: intent_of(customer, intent_id).status == "canceled")
            assert customer.journal("payment_intent.confirm") == []
            assert customer.journal("reader.confirm_payment_intent") == []

            # While the reader confirms: refused (the outcome is Stripe's); once authorised, the
            # cancel releases the authorisation.
            payment_id = await start(pos, "2S-C3", confirm=True)
            await customer.presents()
            await pos.event(of_type("payment.state", payment_id=payment_id, state="awaiting_confirmation"))
            customer.emulator.configure_reader(customer.reader_id, {"processing_s": 1.0})
            await pos.call("payment.confirm", {"payment_id": payment_id})
            refused = await pos.call("payment.cancel", {"payment_id": payment_id})
            assert refused["error"]["data"]["reason"] == "INVALID_STATE"
            authorised = await pos.event(of_type("payment.state", payment_id=payment_id, state="authorized"))
            await pos.call("payment.cancel", {"payment_id": payment_id})
            await pos.event(of_type("payment.state", payment_id=payment_id, state="canceled"))
            intent_id = authorised["params"]["data"]["payment_intent"]
            assert await until(lambda: intent_of(customer, intent_id).status == "canceled")
            assert customer.journal("payment_intent.capture") == []

    run(scenario())


def test_a_reader_offline_at_the_confirm_fails_the_payment_and_cancels_its_payment_intent(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with at_the_counter(tmp_path) as (pos, customer):
            payment_id = await start(pos, "2S-O", confirm=True)
            await customer.presents()
            waiting = await pos.event(of_type("payment.state", payment_id=payment_id, state="awaiting_confirmation"))
            customer.emulator.configure_reader(customer.reader_id, {"online": False})
            await pos.call("payment.confirm", {"payment_id": payment_id})
            failed = await pos.event(of_type("payment.state", payment_id=payment_id, state="failed"))
            error = failed["params"]["data"]["error"]
            assert error["reason"] == "READER_UNAVAILABLE"
            assert "asked twice" in error["message"]
            intent_id = waiting["params"]["data"]["payment_intent"]
            assert await until(lambda: intent_of(customer, intent_id).status == "canceled")
            assert customer.journal("payment_intent.confirm") == []

    run(scenario())


def test_a_card_collected_while_stripe_could_not_be_reached_is_taken_up_by_collect_again(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with at_the_counter(tmp_path) as (pos, customer):
            payment_id = await start(pos, "2S-U")
            down = customer.emulator.add_fault({"method": "GET", "path": "^/v1/terminal/readers/", "action": "down"})
            failed = await pos.event(lambda e: e["type"] == "payment.state" and e["data"].get("error"))
            assert "Stripe cannot be reached" in failed["params"]["data"]["error"]["message"]
            await customer.presents()  # the reader collects the card all the same
            assert await asyncio.to_thread(customer.emulator.wait_reader_action, customer.reader_id, 10)
            customer.emulator.faults.remove(down.id)
            await pos.call("payment.collect_again", {"payment_id": payment_id})
            authorised = await pos.event(of_type("payment.state", payment_id=payment_id, state="authorized"))
            assert authorised["params"]["data"]["card"]["last4"] == "4242"
            assert len(customer.journal("reader.collect_payment_method")) == 1  # not asked for another card
            assert len(customer.journal("payment_intent.confirm")) == 1

    run(scenario())


def test_a_tip_chosen_on_the_reader_is_authorised_and_captured_with_the_amount(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with at_the_counter(tmp_path) as (pos, customer):
            payment_id = await start(pos, "2S-T", 1250, tipping={"amount_eligible": 1000})
            collect = customer.journal("reader.collect_payment_method")
            assert len(collect) == 1
            reader = customer.stripe.v1.terminal.readers.retrieve(customer.reader_id)
            assert reader.action is not None
            assert reader.action.collect_payment_method is not None
            config = reader.action.collect_payment_method.collect_config
            assert config is not None
            assert config.tipping is not None
            assert (config.tipping.amount_eligible, config.enable_customer_cancellation) == (1000, True)
            await present(customer, card_present={"number": "4242424242424242"}, amount_tip=200)
            authorised = await pos.event(of_type("payment.state", payment_id=payment_id, state="authorized"))
            assert (authorised["params"]["data"]["amount"], authorised["params"]["data"]["tip"]) == (1250, 200)
            await pos.call("payment.capture", {"payment_id": payment_id})
            captured = await pos.event(of_type("payment.state", payment_id=payment_id, state="captured"))
            assert captured["params"]["data"]["captured_amount"] == 1450
            assert [c.amount for c in customer.journal("payment_intent.capture")] == [1450]

            # Without tipping the reader is told to skip it: a tip cannot be presented.
            payment_id = await start(pos, "2S-NT")
            reader = customer.stripe.v1.terminal.readers.retrieve(customer.reader_id)
            assert reader.action is not None
            assert reader.action.collect_payment_method is not None
            config = reader.action.collect_payment_method.collect_config
            assert config is not None
            assert config.skip_tipping is True

            bad = await pos.call(
                "payment.start",
                {"order_id": "2S-BT", "amount": 500, "currency": "usd", "tipping": {"amount_eligible": 501}},
            )
            assert bad["error"]["data"]["field"] == "tipping.amount_eligible"
            await pos.call("payment.cancel", {"payment_id": payment_id})

    run(scenario())


def test_tipping_on_a_reader_without_a_screen_for_it_is_unsupported(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_daemon(tmp_path) as daemon:  # the simulated reader
            pos = await LineClient.connect(daemon.socket_path)
            await pos.receive()
            refused = await pos.call(
                "payment.start",
                {"order_id": "NT-1", "amount": 500, "currency": "usd", "tipping": {"amount_eligible": 500}},
            )
            assert refused["error"]["data"]["reason"] == "UNSUPPORTED"
            assert "tip" in refused["error"]["message"]
            await pos.close()

    run(scenario())


def test_interac_on_a_canadian_account_is_captured_at_authorisation_cards_are_held(tmp_path: Path) -> None:
    config = CONFIG + '[stripe]\ncountry = "CA"\n'

    async def scenario() -> None:
        async with at_the_counter(tmp_path, config) as (pos, customer):
            payment_id = await start(pos, "CA-1", 1500, currency="cad")
            await present(customer, type="interac_present")
            captured = await pos.event(of_type("payment.state", payment_id=payment_id, state="captured"))
            data = captured["params"]["data"]
            assert (data["captured_amount"], data["card"]["network"]) == (1500, "interac")
            intent = intent_of(customer, data["payment_intent"])
            assert intent.capture_method == "automatic"
            assert intent.payment_method_options is not None
            assert intent.payment_method_options.card_present is not None
            assert intent.payment_method_options.card_present.capture_method == "manual_preferred"
            assert customer.journal("payment_intent.capture") == []  # captured by Stripe as it authorised
            again = await pos.call("payment.capture", {"payment_id": payment_id})
            assert again["result"]["state"] == "captured"
            partial = await pos.call("payment.capture", {"payment_id": payment_id, "amount": 1000})
            assert partial["error"]["data"]["reason"] == "INVALID_STATE"

            # A credit card on the same kind of PaymentIntent is held for the POS's capture.
            payment_id = await start(pos, "CA-2", 1500, currency="cad")
            await customer.presents()
            await pos.event(of_type("payment.state", payment_id=payment_id, state="authorized"))
            await pos.call("payment.capture", {"payment_id": payment_id})
            await pos.event(of_type("payment.state", payment_id=payment_id, state="captured"))
            assert [c.amount for c in customer.journal("payment_intent.capture")] == [1500]

    run(scenario())


def test_a_restart_while_the_reader_confirms_reads_the_truth_first(
    tmp_path: Path, stripe_emulator: EmulatorHandle
) -> None:
    stripe = make_client(stripe_emulator.url)
    reader_id = stripe.v1.terminal.readers.create({"registration_code": "simulated-wpe"}).id
    config = (
        f'[stripe]\napi_base = "{stripe_emulator.url}"\n'
        f'[reader]\ndriver = "stripe_terminal"\n[reader.stripe_terminal]\nreader_id = "{reader_id}"\n'
    )
    emulator = stripe_emulator.emulator

    def journal(op: str) -> list[Any]:
        return [e for e in emulator.journal_entries() if e.op == op]

    async def until_the_reader_confirms(pos: LineClient, order_id: str, processing_s: float) -> tuple[str, str]:
        emulator.configure_reader(reader_id, {"processing_s": 0.05})
        payment_id = await start(pos, order_id, confirm=True)
        await asyncio.to_thread(
            stripe.v1.test_helpers.terminal.readers.present_payment_method,
            reader_id,
            {"card_present": {"number": "4242424242424242"}},
        )
        await pos.event(of_type("payment.state", payment_id=payment_id, state="awaiting_confirmation"))
        emulator.configure_reader(reader_id, {"processing_s": processing_s})  # the confirm takes that long
        confirms_before = len(journal("reader.confirm_payment_intent"))
        processing = await pos.call("payment.confirm", {"payment_id": payment_id})
        assert processing["result"]["state"] == "processing"
        await until(lambda: len(journal("reader.confirm_payment_intent")) > confirms_before)
        return payment_id, processing["result"]["payment_intent"]

    async def scenario() -> None:
        # The daemon stops while the reader confirms, and the reader has not finished when it is back:
        # the PaymentIntent is canceled, never confirmed blind.
        async with running_daemon(tmp_path, config) as daemon:
            pos = await subscribed_when_connected(daemon.socket_path)
            payment_id, intent_id = await until_the_reader_confirms(pos, "RS-1", 30)
            await pos.close()
        async with running_daemon(tmp_path, config) as daemon:
            pos = await subscribed_when_connected(daemon.socket_path)
            failed = await pos.call("payment.get", {"payment_id": payment_id})
            if failed["result"]["state"] != "failed":
                await pos.event(of_type("payment.state", payment_id=payment_id, state="failed"))
            failed = await pos.call("payment.get", {"payment_id": payment_id})
            assert failed["result"]["error"]["reason"] == "READER_UNAVAILABLE"
            assert "restarted" in failed["result"]["error"]["message"]
            assert await until(lambda: stripe.v1.payment_intents.retrieve(intent_id).status == "canceled")
            emulator.configure_reader(reader_id, {"processing_s": 0})  # the reader finishes: too late
            assert await asyncio.to_thread(emulator.wait_reader_action, reader_id, 10)
            assert stripe.v1.payment_intents.retrieve(intent_id).status == "canceled"
            assert journal("payment_intent.confirm") == []

            # This time the reader confirms while the daemon is down: it comes back authorised.
            payment_id, intent_id = await until_the_reader_confirms(pos, "RS-2", 1.5)
            await pos.close()
        assert await asyncio.to_thread(emulator.wait_reader_action, reader_id, 10)
        async with running_daemon(tmp_path, config) as daemon:
            pos = await subscribed_when_connected(daemon.socket_path)
            got = await pos.call("payment.get", {"payment_id": payment_id})
            if got["result"]["state"] != "authorized":
                await pos.event(of_type("payment.state", payment_id=payment_id, state="authorized"))
            assert [(c.object, c.status) for c in journal("payment_intent.confirm")] == [
                (intent_id, "requires_capture")
            ]
            await pos.close()

    run(scenario())


async def until(predicate: Any, timeout: float = 10.0) -> bool:
    """Wait (polling Stripe's state, which sends no events here) until `predicate()` holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await asyncio.to_thread(predicate):
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True
