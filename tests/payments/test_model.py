"""The payment model: the transition table against the POS protocol, and the payment object it shows."""

from __future__ import annotations

import dataclasses
import datetime
import json
import re

import pytest

from readerhost.daemon.payments.model import (
    RECEIPT_FIELDS,
    TERMINAL,
    TRANSITIONS,
    Card,
    Decline,
    IllegalTransition,
    PaidBy,
    Payment,
    PaymentError,
    PaymentRequest,
    Reason,
    Receipt,
    State,
)

S = State

# The "what happens next" column of the state table in docs/payments.md, copied by hand.
PROTOCOL_NEXT: dict[State, set[State]] = {
    S.CREATING: {S.COLLECTING},
    S.COLLECTING: {S.AWAITING_CONFIRMATION, S.PROCESSING, S.QUEUED_OFFLINE, S.CANCELED},
    S.AWAITING_CONFIRMATION: {S.PROCESSING, S.CANCELED},
    S.PROCESSING: {S.AUTHORIZED, S.DECLINED, S.CAPTURED},
    S.QUEUED_OFFLINE: {S.AUTHORIZED, S.CAPTURED, S.FAILED},
    S.DECLINED: {S.COLLECTING, S.CANCELED},
    S.AUTHORIZED: {S.CAPTURING, S.CANCELED},
    S.CAPTURING: {S.CAPTURED},
    S.CAPTURED: set(),
    S.CANCELED: set(),
    S.FAILED: set(),
}

# The edges model.py adds to the protocol's, each explained there. Any other change is a protocol change.
DOCUMENTED_ADDITIONS = {
    (S.CREATING, S.CANCELED),
    (S.CREATING, S.FAILED),
    (S.PROCESSING, S.QUEUED_OFFLINE),
    (S.PROCESSING, S.FAILED),
    (S.AUTHORIZED, S.FAILED),
    (S.CAPTURING, S.FAILED),
}

T0 = 1_700_000_000.125


def payment_in(state: State) -> Payment:
    return Payment("pay_1", PaymentRequest("A-1", 1000, "usd"), state, created_at=T0, updated_at=T0)


@pytest.mark.parametrize(
    ("current", "wanted"), [(a, b) for a in State for b in State], ids=lambda state: str(state.value)
)
def test_moved_to_allows_exactly_the_table(current: State, wanted: State) -> None:
    payment = payment_in(current)
    if wanted in TRANSITIONS[current] or wanted is current:  # staying in a state is an update, not a move
        moved = payment.moved_to(wanted, T0 + 1, attempts=2)
        assert (moved.state, moved.updated_at, moved.attempts) == (wanted, T0 + 1, 2)
        assert (payment.state, payment.updated_at, payment.attempts) == (current, T0, 0)
    else:
        with pytest.raises(IllegalTransition) as refused:
            payment.moved_to(wanted, T0 + 1)
        assert (refused.value.current, refused.value.wanted) == (current, wanted)
        assert "pay_1" in str(refused.value)


def test_the_table_is_the_protocols_plus_the_documented_additions() -> None:
    assert set(TRANSITIONS) == set(State)
    edges = {(a, b) for a, nexts in TRANSITIONS.items() for b in nexts}
    protocol = {(a, b) for a, nexts in PROTOCOL_NEXT.items() for b in nexts}
    assert protocol <= edges
    assert edges - protocol == DOCUMENTED_ADDITIONS
    assert all(a is not b for a, b in edges)


def test_captured_canceled_and_failed_are_terminal_with_no_exits() -> None:
    assert {S.CAPTURED, S.CANCELED, S.FAILED} == TERMINAL
    assert {state for state, nexts in TRANSITIONS.items() if not nexts} == TERMINAL
    for terminal in TERMINAL:
        for other in set(State) - {terminal}:
            with pytest.raises(IllegalTransition):
                payment_in(terminal).moved_to(other, T0 + 1)


@pytest.mark.parametrize(
    ("current", "wanted"),
    [
        (S.DECLINED, S.COLLECTING),  # another card on the same PaymentIntent
        (S.COLLECTING, S.CANCELED),
        (S.AWAITING_CONFIRMATION, S.CANCELED),
        (S.AUTHORIZED, S.CANCELED),
        (S.AUTHORIZED, S.CAPTURING),
        (S.PROCESSING, S.CAPTURED),  # capture: automatic
        (S.QUEUED_OFFLINE, S.FAILED),  # declined when forwarded
        (S.CAPTURING, S.CAPTURED),
    ],
)
def test_protocol_moves_are_allowed(current: State, wanted: State) -> None:
    assert payment_in(current).moved_to(wanted, T0 + 1).state is wanted


@pytest.mark.parametrize(
    ("current", "wanted"),
    [
        (S.AUTHORIZED, S.CAPTURED),  # a capture is queued (capturing) before it is sent
        (S.CAPTURING, S.CANCELED),  # a capture asked for is carried out
        (S.QUEUED_OFFLINE, S.CANCELED),  # an authorisation queued offline is forwarded, not dropped
        (S.CANCELED, S.CAPTURED),  # nothing canceled is captured
        (S.CANCELED, S.CAPTURING),
        (S.FAILED, S.COLLECTING),
        (S.CAPTURED, S.CANCELED),
        (S.DECLINED, S.AUTHORIZED),  # a declined card is not authorised later
        (S.DECLINED, S.PROCESSING),  # another card must be read first
        (S.COLLECTING, S.AUTHORIZED),  # authorisation is requested (processing) first
        (S.CREATING, S.PROCESSING),
        (S.COLLECTING, S.CAPTURED),
    ],
)
def test_moves_outside_the_protocol_are_refused(current: State, wanted: State) -> None:
    with pytest.raises(IllegalTransition):
        payment_in(current).moved_to(wanted, T0 + 1)


def test_only_the_states_before_authorisation_hold_the_reader() -> None:
    holding = {state for state in State if payment_in(state).holds_reader}
    assert holding == {S.CREATING, S.COLLECTING, S.AWAITING_CONFIRMATION}


# -- the payment object ---------------------------------------------------------------------

PROTOCOL_KEYS = {
    "payment_id", "order_id", "amount", "currency", "state", "payment_intent", "card", "decline",
    "captured_amount", "refunded_amount", "refunds", "offline", "attempts", "created_at", "updated_at", "error",
    "receipt", "tip", "capture_before", "order_attempt", "closed_by", "incremental", "extended", "card_support",
    "authorized_amount", "increments",
}  # fmt: skip
RFC3339_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z")


def test_to_json_is_the_protocols_payment_object() -> None:
    payment = Payment(
        payment_id="pay_9",
        request=PaymentRequest("A-9", 2_500, "eur", description="locker", metadata={"locker": "12"}),
        state=S.DECLINED,
        created_at=T0,
        updated_at=T0 + 61.5,
        payment_intent="pi_9",
        card=Card("mastercard", "4444", "contact_emv", wallet="apple_pay", network="mastercard"),
        decline=Decline("card_declined", "insufficient_funds", "Your card has insufficient funds."),
        error=PaymentError(Reason.STRIPE_REFUSED, "declined"),
        captured_amount=0,
        capture_amount=2_000,
        capture_before=1_700_172_800,
        offline=True,
        attempts=2,
        tip=150,
        order_attempt=3,
        closed_by=PaidBy.OTHER,
    )
    data = payment.to_json()
    assert set(data) == PROTOCOL_KEYS
    assert data == {
        "payment_id": "pay_9",
        "order_id": "A-9",
        "amount": 2_500,
        "currency": "eur",
        "state": "declined",
        "payment_intent": "pi_9",
        "card": {
            "brand": "mastercard",
            "last4": "4444",
            "read_method": "contact_emv",
            "wallet": "apple_pay",
            "network": "mastercard",
        },
        "decline": {
            "code": "card_declined",
            "decline_code": "insufficient_funds",
            "message": "Your card has insufficient funds.",
        },
        "captured_amount": 0,
        "refunded_amount": 0,
        "refunds": [],
        "offline": True,
        "attempts": 2,
        "order_attempt": 3,  # the order's third attempt (1.4)
        "closed_by": "other",  # the order was closed as paid another way (payment.close, 1.4)
        "receipt": None,
        "tip": 150,
        "incremental": False,
        "extended": False,
        "card_support": None,
        "authorized_amount": None,  # only while the authorisation holds
        "increments": [],
        "capture_before": "2023-11-16T22:13:20.000Z",  # RFC 3339, as every time in the protocol
        "created_at": "2023-11-14T22:13:20.125Z",
        "updated_at": "2023-11-14T22:14:21.625Z",
        "error": {"reason": "STRIPE_REFUSED", "message": "declined"},
    }
    assert json.loads(json.dumps(data)) == data


def test_to_json_of_a_new_payment_has_nulls_and_utc_timestamps() -> None:
    data = Payment("pay_0", PaymentRequest("A-0", 50, "usd"), S.CREATING, created_at=0.0, updated_at=T0).to_json()
    assert set(data) == PROTOCOL_KEYS
    assert (data["payment_intent"], data["card"], data["decline"], data["error"]) == (None, None, None, None)
    assert (data["captured_amount"], data["offline"], data["attempts"]) == (0, False, 0)
    assert (data["order_attempt"], data["closed_by"]) == (1, None)
    assert data["created_at"] == "1970-01-01T00:00:00.000Z"
    for name, unix in (("created_at", 0.0), ("updated_at", T0)):
        assert RFC3339_UTC.fullmatch(data[name])
        parsed = datetime.datetime.fromisoformat(data[name])
        assert parsed.utcoffset() == datetime.timedelta(0)
        assert parsed.timestamp() == pytest.approx(unix, abs=0.001)


def test_nothing_in_the_model_can_hold_a_card_number() -> None:
    assert [f.name for f in dataclasses.fields(Card)] == ["brand", "last4", "read_method", "wallet", "network"]
    assert [f.name for f in dataclasses.fields(Decline)] == ["code", "decline_code", "message"]
    assert [f.name for f in dataclasses.fields(PaymentError)] == ["reason", "message"]
    card = Card("visa", "4242", "contactless_emv")
    assert set(card.to_json()) == {"brand", "last4", "read_method", "wallet", "network"}
    payment = payment_in(S.AUTHORIZED)
    assert dataclasses.replace(payment, card=card).to_json()["card"] == card.to_json()


def test_a_receipt_holds_what_a_receipt_shows_and_no_card_number() -> None:
    assert [f.name for f in dataclasses.fields(Receipt)] == [
        "brand", "last4", "read_method", "wallet", "account_type", "application_preferred_name",
        "dedicated_file_name", "authorization_code", "authorization_response_code", "application_cryptogram",
        "terminal_verification_results", "transaction_status_information", "cardholder_verification_method",
        "receipt_url",
    ]  # fmt: skip
    receipt = Receipt(brand="visa", last4="4242", dedicated_file_name="A0000000031010")
    data = dataclasses.replace(payment_in(S.AUTHORIZED), receipt=receipt).to_json()["receipt"]
    assert data is not None
    assert set(data) == set(RECEIPT_FIELDS)
    assert (data["brand"], data["last4"], data["dedicated_file_name"], data["wallet"]) == (
        "visa",
        "4242",
        "A0000000031010",
        None,
    )
    assert Receipt.from_json(data) == receipt


def test_refunded_amount_counts_only_what_stripe_refunded() -> None:
    from readerhost.daemon.payments.model import Refund, RefundRequest, RefundState

    def refund(refund_id: str, amount: int, state: RefundState) -> Refund:
        request = RefundRequest(refund_id, "pay_9", amount, None, at_reader=False)
        return Refund(request, amount, state, T0, T0, at_reader=False)

    refunds = (
        refund("R-1", 300, RefundState.SUCCEEDED),
        refund("R-2", 200, RefundState.PENDING),
        refund("R-3", 100, RefundState.FAILED),
    )
    payment = Payment("pay_9", PaymentRequest("A-9", 1000, "usd"), S.CAPTURED, T0, T0, refunds=refunds)
    data = payment.to_json()
    assert data["refunded_amount"] == 300
    assert [(r["refund_id"], r["state"], r["amount"]) for r in data["refunds"]] == [
        ("R-1", "succeeded", 300), ("R-2", "pending", 200), ("R-3", "failed", 100),
    ]  # fmt: skip
    assert data["refunds"][0]["created_at"] == "2023-11-14T22:13:20.125Z"
