"""`readerhost-demo`: card-present payments through the Stripe emulator with the real `stripe` library.

The stand-in for the daemon's main job until the daemon lands: it starts the emulator, runs
a scripted kiosk day through it (an approved and captured payment, a decline followed by a
second card, a capture whose response the network loses) and prints what Stripe saw.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import threading
import uuid
from collections.abc import Callable

from readerhost.sim.stripe_emulator import StripeEmulator, running_emulator

TEST_KEY = "sk_test_readerhost_demo"


def _money(amount: int, currency: str) -> str:
    return f"{amount / 100:.2f} {currency.upper()}"


def _when(unix: int) -> str:
    return datetime.datetime.fromtimestamp(unix, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def run_script(url: str, emulator: StripeEmulator, say: Callable[[str], None]) -> None:
    import stripe  # lazily: it costs ~30 MB and 0.1 s, and only the demo needs it here

    client = stripe.StripeClient(
        TEST_KEY,
        base_addresses={"api": url},
        http_client=stripe.RequestsClient(timeout=(2.0, 10.0)),
        max_network_retries=2,
    )
    run = uuid.uuid4().hex[:6]

    def create(order: str, amount: int) -> stripe.PaymentIntent:
        intent = client.v1.payment_intents.create(
            params={
                "amount": amount,
                "currency": "usd",
                "allowed_payment_method_types": ["card_present"],
                "capture_method": "manual",
                "metadata": {"order_id": order, "terminal_id": "demo-kiosk"},
            },
            options={"idempotency_key": f"create-{order}"},
        )
        say(f"  create PaymentIntent for order {order}, {_money(amount, 'usd')}: {intent.id} {intent.status}")
        return intent

    def confirm(intent: stripe.PaymentIntent, payment_method: str) -> stripe.PaymentIntent:
        return client.v1.payment_intents.confirm(
            intent.id, params={"payment_method": payment_method, "expand": ["latest_charge"]}
        )

    say("1. An approved payment, captured for less than authorised (the kiosk dispensed less)")
    intent = create(f"DEMO-{run}-1", 1250)
    intent = confirm(intent, "pm_card_present_visa")
    charge = intent.latest_charge
    assert isinstance(charge, stripe.Charge)
    card = charge.payment_method_details.card_present  # type: ignore[union-attr]
    assert card is not None
    say(
        f"  customer taps {card.brand} ****{card.last4} ({card.read_method}): {intent.status}, "
        f"capture before {_when(card.capture_before or 0)}"
    )
    intent = client.v1.payment_intents.capture(intent.id, params={"amount_to_capture": 1000})
    say(f"  capture {_money(1000, 'usd')}: {intent.status}, received {_money(intent.amount_received or 0, 'usd')}")

    say("2. A decline, then another card on the same PaymentIntent")
    intent = create(f"DEMO-{run}-2", 2000)
    try:
        confirm(intent, "pm_card_present_charge_declined_insufficient_funds")
    except stripe.CardError as declined:
        say(f"  first card declined: {declined.error.decline_code} ({declined.user_message})")  # type: ignore[union-attr]
    intent = confirm(intent, "pm_card_present_mastercard")
    say(f"  second card: {intent.status}; the customer walks away")
    intent = client.v1.payment_intents.cancel(intent.id, params={"cancellation_reason": "abandoned"})
    say(f"  cancel: {intent.status} ({intent.cancellation_reason})")

    say("3. The network loses the answer to a capture (fault: apply, then reset the connection)")
    intent = create(f"DEMO-{run}-3", 500)
    intent = confirm(intent, "pm_card_present_amex")
    emulator.add_fault({"method": "POST", "path": r"/capture$", "action": "reset_after"})
    intent = client.v1.payment_intents.capture(intent.id)
    replayed = intent.last_response is not None and intent.last_response.headers.get("Idempotent-Replayed") == "true"
    say(f"  capture: {intent.status}; stripe-python retried with the same key, answer replayed: {replayed}")

    captures = [entry for entry in emulator.journal_entries() if entry.op == "payment_intent.capture"]
    say(
        f"Stripe's journal: {len(emulator.journal_entries())} mutations, {len(captures)} captures "
        "(one for each captured payment, none for the canceled one)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="readerhost-demo",
        description="Run scripted card-present payments through the built-in Stripe emulator "
        "(the daemon itself has not landed yet).",
    )
    parser.add_argument("--serve", action="store_true", help="keep the emulator running afterwards (Ctrl-C stops)")
    parser.add_argument("--port", type=int, default=0, help="the emulator's port (default: chosen by the OS)")
    args = parser.parse_args(argv)
    print("readerhost demo: the daemon has not landed yet; this drives the built-in Stripe emulator")
    print("with the real stripe library, as the daemon will. No card data, no network beyond 127.0.0.1.")
    try:
        with running_emulator(args.port) as (url, emulator):
            print(f"Stripe emulator (test mode, in memory) listening on {url}")
            run_script(url, emulator, lambda line: print(line, flush=True))
            if args.serve:
                print(f"Serving until Ctrl-C. Try: curl -u {TEST_KEY}: {url}/v1/payment_intents")
                threading.Event().wait()
    except KeyboardInterrupt:
        return 0
    except OSError as error:
        print(f"readerhost-demo: cannot start the emulator: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
