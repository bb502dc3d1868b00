"""The store's second schema: a payment's receipt data, the reader a driver registered at Stripe, and
a store of the first schema (payments in it) migrated in place."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path

from readerhost.daemon.payments.model import RECEIPT_FIELDS, Card, Payment, PaymentRequest, Receipt, State
from readerhost.daemon.payments.store import MIGRATIONS, RegisteredReader, Store

T0 = 1_700_000_000.0
RECEIPT = Receipt(
    brand="visa",
    last4="4242",
    read_method="contact_emv",
    wallet=None,
    account_type="credit",
    application_preferred_name="Visa Credit",
    dedicated_file_name="A0000000031010",
    authorization_code="123456",
    authorization_response_code="3030",
    application_cryptogram="0123456789ABCDEF",
    terminal_verification_results="0000000000",
    transaction_status_information="E800",
    cardholder_verification_method="online_pin",
    receipt_url="https://pay.stripe.com/receipts/payment/ch_1",
)


def authorised(payment_id: str = "pay_1", receipt: Receipt | None = RECEIPT) -> Payment:
    request = PaymentRequest(order_id=f"order-{payment_id}", amount=1250, currency="usd")
    return Payment(
        payment_id,
        request,
        State.AUTHORIZED,
        created_at=T0,
        updated_at=T0,
        payment_intent="pi_1",
        card=Card("visa", "4242", "contact_emv"),
        receipt=receipt,
    )


def test_a_receipt_is_kept_whole_and_its_absence_as_none(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    store = Store.open(path)
    with store.transaction():
        store.insert_payment(authorised("pay_1"), "start")
        store.insert_payment(authorised("pay_2", receipt=None), "start")
    store.close()
    again = Store.open(path)
    try:
        kept = again.payment("pay_1")
        assert kept is not None
        assert kept.receipt == RECEIPT
        assert kept.to_json()["receipt"] == {name: getattr(RECEIPT, name) for name in RECEIPT_FIELDS}
        none = again.payment("pay_2")
        assert none is not None
        assert none.receipt is None
        assert none.to_json()["receipt"] is None
        # A later change keeps it (or replaces it).
        other = replace(RECEIPT, authorization_code="654321")
        with again.transaction():
            again.save_payment(kept, replace(kept, receipt=other, updated_at=T0 + 1), "receipt")
        assert (again.payment("pay_1") or kept).receipt == other
    finally:
        again.close()


def test_a_receipt_written_with_fields_this_readerhost_does_not_know_still_reads(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store.db")
    try:
        with store.transaction():
            store.insert_payment(authorised(), "start")
        raw = sqlite3.connect(store.path)
        raw.execute("UPDATE payments SET receipt=?", (json.dumps({"brand": "visa", "from_the_future": 1}),))
        raw.commit()
        raw.close()
        kept = store.payment("pay_1")
        assert kept is not None
        assert kept.receipt == Receipt(brand="visa")
    finally:
        store.close()


def test_the_registered_reader_is_kept_per_driver_and_replaced_by_a_new_registration(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    store = Store.open(path)
    assert store.registered_reader("stripe_terminal") is None
    store.save_registered_reader(RegisteredReader("stripe_terminal", "tmr_first", "tml_front", T0))
    store.close()
    store = Store.open(path)
    try:
        assert store.registered_reader("stripe_terminal") == RegisteredReader(
            "stripe_terminal", "tmr_first", "tml_front", T0
        )
        store.save_registered_reader(RegisteredReader("stripe_terminal", "tmr_second", None, T0 + 5))
        assert store.registered_reader("stripe_terminal") == RegisteredReader(
            "stripe_terminal", "tmr_second", None, T0 + 5
        )
        assert store.registered_reader("serial") is None
    finally:
        store.close()


def test_a_store_of_the_first_schema_is_migrated_in_place_and_keeps_its_payments(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    first = sqlite3.connect(path, isolation_level=None)
    first.execute("PRAGMA journal_mode=WAL")
    first.executescript(MIGRATIONS[0] + "\nPRAGMA user_version=1;")
    request = {
        "order_id": "old-1", "amount": 500, "currency": "usd", "description": None, "metadata": {},
        "capture": "manual", "confirm": False, "offline": "require_online", "payment_intent_client_secret": None,
    }  # fmt: skip
    first.execute(
        "INSERT INTO payments (payment_id, order_id, request, state, payment_intent, card, created_at, updated_at)"
        " VALUES ('pay_old', 'old-1', ?, 'captured', 'pi_old', ?, ?, ?)",
        (json.dumps(request), json.dumps({"brand": "visa", "last4": "4242", "read_method": "contact_emv"}), T0, T0),
    )
    first.close()

    store = Store.open(path)
    try:
        assert store.pragma("user_version") == len(MIGRATIONS) >= 2
        old = store.payment("pay_old")
        assert old is not None
        assert (old.state, old.payment_intent, old.receipt) == (State.CAPTURED, "pi_old", None)
        assert old.to_json()["receipt"] is None
        assert store.registered_reader("stripe_terminal") is None
        store.save_registered_reader(RegisteredReader("stripe_terminal", "tmr_1", None, T0))
    finally:
        store.close()
