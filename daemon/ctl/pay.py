"""`readerhostctl pay`: start a payment and follow it on the reader until it is settled."""

from __future__ import annotations

import argparse
import contextlib
import secrets
import sys
import time
from typing import Any

from readerhost.client import Client, Event, ReaderhostError
from readerhost.daemon.payments.model import HOLDS_READER, SETTLED, Reason, State

from .exit_codes import EXIT_DECLINED, EXIT_NOT_PAID, EXIT_OK
from .formatting import card_text, decline_text, error_text, money
from .output import SPIN_INTERVAL_S, Output

# The payment was accepted: `pay` exits 0.
PAID = frozenset({State.AUTHORIZED, State.CAPTURING, State.CAPTURED, State.QUEUED_OFFLINE})

# What `pay` says it waits for, in each state it waits in.
WAITING_FOR = {
    State.CREATING: "waiting for Stripe to create the PaymentIntent",
    State.COLLECTING: "waiting for a card",
    State.AWAITING_CONFIRMATION: "waiting for the customer to confirm",
    State.PROCESSING: "waiting for Stripe to authorise the card",
    State.AUTHORIZED: "waiting for the capture",
    State.CAPTURING: "waiting for Stripe to capture",
}
# The waits for Stripe that a line says as they begin (on a terminal the spinner says it too).
STRIPE_WAITS = frozenset({State.CREATING, State.PROCESSING})


def settled(state: State | None, automatic: bool) -> bool:
    """Where `pay` stops: the payment no longer needs this terminal (with automatic capture, once captured)."""
    if automatic and state in (State.AUTHORIZED, State.CAPTURING):
        return False
    return state in SETTLED


def exit_code_for(state: State | None) -> int:
    if state in PAID:
        return EXIT_OK
    if state is State.DECLINED:
        return EXIT_DECLINED
    return EXIT_NOT_PAID


def cmd_pay(client: Client, args: argparse.Namespace, out: Output) -> int:
    automatic = args.capture == "auto"
    order_id = args.order or generated_order_id()
    currency = args.currency.lower()
    options: dict[str, Any] = {"capture": "automatic" if automatic else "manual"}
    if args.confirm:
        options["confirm"] = True
    if args.offline:
        options["offline"] = "prefer_online"
    if args.description:
        options["description"] = args.description
    client.subscribe(["payment", "reader"])  # before starting: no event of this payment is missed
    payment = client.start_payment(order_id, args.amount, currency, **options)
    run = PayRun(client, args, out, payment)
    try:
        return run.follow(automatic)
    except KeyboardInterrupt:
        run.abandon()
        raise


class PayRun:
    """One `pay`: shows what the reader and the payment do until the payment is settled."""

    def __init__(self, client: Client, args: argparse.Namespace, out: Output, payment: dict[str, Any]) -> None:
        self.client = client
        self.args = args
        self.out = out
        self.payment = payment
        self.payment_id = str(payment["payment_id"])
        self.shown_state: str | None = None
        self.presented = False
        if out.json:
            out.document({"type": "payment.started", "data": payment})
        else:
            mode = "automatic" if args.capture == "auto" else "manual"
            out.line(
                f"payment {self.payment_id} for order {payment.get('order_id')}: "
                f"{money(payment.get('amount'), payment.get('currency'))}, {mode} capture"
            )

    def follow(self, automatic: bool) -> int:
        self.on_payment(self.payment)
        if self.state is State.COLLECTING:
            self.present_card()  # a payment already collecting (the same order, started before)
        while not settled(self.state, automatic):
            if self.reader_gave_up():
                return EXIT_NOT_PAID
            try:
                event = self.client.next_event(SPIN_INTERVAL_S if self.out.tty else None)
            except TimeoutError:
                self.out.spin(self.waiting_for())
                continue
            if event.data.get("payment_id") != self.payment_id:
                continue
            if self.out.json:
                self.out.document(event.to_json())
            if event.type == "payment.state":
                self.on_payment(event.data)
            else:
                self.on_reader(event)
        return self.finish()

    @property
    def state(self) -> State | None:
        return State.of(self.payment.get("state"))

    def waiting_for(self) -> str:
        state = self.state
        return (WAITING_FOR.get(state, str(state)) if state else str(self.payment.get("state"))) + "..."

    def on_payment(self, payment: dict[str, Any]) -> None:
        self.payment = payment
        state = str(payment.get("state"))
        if state == self.shown_state:
            return
        self.shown_state = state
        if not self.out.json:
            detail = ""
            if state == State.DECLINED:
                detail = decline_text(payment.get("decline"))
            elif state in (State.FAILED, State.CANCELED) and payment.get("error"):
                detail = error_text(payment.get("error"))
            elif payment.get("card") and state in (State.AWAITING_CONFIRMATION, *PAID - {State.CAPTURING}):
                detail = card_text(payment.get("card"))
            elif State.of(state) in STRIPE_WAITS:
                detail = WAITING_FOR[State(state)]  # the daemon bounds this wait ([payments] customer_wait_s)
            self.out.line(f"state: {state}" + (f" - {detail}" if detail else ""))
        if state == State.AWAITING_CONFIRMATION:
            self.ask_to_proceed()

    def on_reader(self, event: Event) -> None:
        if event.type == "reader.input_options":
            if not self.out.json:
                options = ", ".join(str(o) for o in event.data.get("options", []))
                self.out.line(f"reader: present a card ({options})")
            self.present_card()
        elif not self.out.json and event.type == "reader.display_message":
            self.out.line(f"reader: {event.data.get('text') or event.data.get('message')}")
        elif not self.out.json and event.type == "reader.card":
            self.out.line(f"reader: {str(event.data.get('event', '')).replace('_', ' ')}")

    def present_card(self) -> None:
        if self.args.card is None or self.presented:
            return
        self.presented = True
        if not self.out.json:
            self.out.line(f"presenting test card {self.args.card}")
        try:
            self.client.present(self.args.card)
        except ReaderhostError:
            self.abandon()
            raise

    def reader_gave_up(self) -> bool:
        """A collection the reader ended without a card: cancel it rather than wait forever."""
        error = self.payment.get("error")
        if self.state is not State.COLLECTING or not isinstance(error, dict):
            return False
        if error.get("reason") != Reason.READER_UNAVAILABLE:
            return False
        if not self.out.json:
            self.out.line(f"reader: {error.get('message')}")
        self.abandon()
        self.finish()
        return True

    def ask_to_proceed(self) -> None:
        if self.args.yes:
            if not self.out.json:
                self.out.line("proceeding (--yes)")
            self.on_payment(self.client.confirm(self.payment_id))
            return
        self.out.pause()
        print(
            f"Proceed with {money(self.payment.get('amount'), self.payment.get('currency'))} "
            f"on {card_text(self.payment.get('card'))}? [y/N] ",
            end="",
            file=sys.stderr,
            flush=True,
        )
        answer = sys.stdin.readline().strip().lower()
        if answer in ("y", "yes"):
            self.on_payment(self.client.confirm(self.payment_id))
        else:
            self.on_payment(self.client.cancel(self.payment_id, "requested_by_customer"))

    def abandon(self) -> None:
        """Cancel the payment if it still waits for the customer (what the daemon would do anyway)."""
        if self.state not in HOLDS_READER or self.client.closed:
            return
        with contextlib.suppress(ReaderhostError, ConnectionError, TimeoutError):
            self.payment = self.client.cancel(self.payment_id, "abandoned")
            print(f"readerhostctl: payment {self.payment_id} canceled", file=sys.stderr)

    def finish(self) -> int:
        payment = self.payment
        state = self.state
        if self.out.json:
            self.out.document({"type": "result", "payment": payment})
            return exit_code_for(state)
        amount = money(payment.get("amount"), payment.get("currency"))
        card = card_text(payment.get("card"))
        if state is State.AUTHORIZED:
            self.out.line(f"authorized {amount} on {card}; capture with: readerhostctl capture {self.payment_id}")
        elif state in (State.CAPTURED, State.CAPTURING):
            self.out.line(f"captured {amount} on {card}")
        elif state is State.QUEUED_OFFLINE:
            self.out.line(f"accepted offline: {amount} on {card}, forwarded to Stripe when it is reachable")
        elif state is State.DECLINED:
            decline = payment.get("decline") or {}
            self.out.line(f"declined ({decline_text(decline)}); the order can be paid with another card")
        elif state is State.FAILED:
            self.out.line(f"failed: {error_text(payment.get('error'))}")
        else:
            self.out.line(f"{payment.get('state')}: nothing was charged")
        return exit_code_for(state)


def generated_order_id() -> str:
    return f"ctl-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
