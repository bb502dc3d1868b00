"""Refunds: server-side (POST /v1/refunds) for card payments, in person on a reader (refund_payment) for
Interac, through the real stripe library over real HTTP."""

from __future__ import annotations

from typing import Any

import pytest
import stripe
from support.emulator_fidelity import (
    INTERAC_PAYMENT,
    authorise,
    body_of,
    control,
    create_intent,
    error_body,
    journal_for,
    replayed,
    settled,
    simulated_reader,
)

from readerhost.sim.stripe_emulator import StripeEmulator

INTERAC = "4506445006931933"


def captured(client: stripe.StripeClient, amount: int = 3000, **params: Any) -> stripe.PaymentIntent:
    body: Any = params
    return client.v1.payment_intents.capture(authorise(client, amount).id, params=body)


def refund(client: stripe.StripeClient, *, key: str | None = None, **params: Any) -> stripe.Refund:
    options: Any = {"idempotency_key": key} if key is not None else {}
    body: Any = params
    return client.v1.refunds.create(params=body, options=options)


def charge_of(client: stripe.StripeClient, intent_id: str) -> dict[str, Any]:
    body = body_of(client.v1.payment_intents.retrieve(intent_id, params={"expand": ["latest_charge"]}))
    charge = body["latest_charge"]
    assert isinstance(charge, dict)
    return charge


def refused(call: Any) -> stripe.InvalidRequestError:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        call()
    assert raised.value.http_status == 400
    return raised.value


def interac_payment(client: stripe.StripeClient, emulator: StripeEmulator, reader_id: str) -> stripe.PaymentIntent:
    """A CAD payment made with Stripe's Interac test card on the reader: captured as it is authorised."""
    intent = create_intent(client, 4000, currency="cad", **INTERAC_PAYMENT)
    client.v1.terminal.readers.process_payment_intent(reader_id, params={"payment_intent": intent.id})
    client.v1.test_helpers.terminal.readers.present_payment_method(
        reader_id, params={"type": "interac_present", "interac_present": {"number": INTERAC}}
    )
    settled(client, emulator, reader_id)
    paid = client.v1.payment_intents.retrieve(intent.id)
    assert paid.status == "succeeded"
    return paid


# -- server-side refunds --------------------------------------------------------------------------


def test_partial_refunds_add_up_to_the_captured_amount(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    intent = captured(client, 3000, amount_to_capture=2500)  # 500 released at capture

    first = refund(client, payment_intent=intent.id, amount=1000, reason="requested_by_customer", metadata={"r": "1"})
    assert (first.object, first.status, first.amount, first.currency) == ("refund", "succeeded", 1000, "usd")
    assert (first.payment_intent, first.reason, body_of(first)["metadata"]) == (
        intent.id,
        "requested_by_customer",
        {"r": "1"},
    )
    charge = charge_of(client, intent.id)
    assert first.charge == charge["id"]
    assert (charge["amount_refunded"], charge["refunded"]) == (1500, False)  # 500 released + 1000 refunded

    too_much = refused(lambda: refund(client, charge=charge["id"], amount=1501))
    assert too_much.param == "amount"
    assert too_much.user_message == "Refund amount ($15.01) is greater than unrefunded amount on charge ($15.00)"

    rest = refund(client, charge=charge["id"])  # no amount: all that is left
    assert rest.amount == 1500
    charge = charge_of(client, intent.id)
    assert (charge["amount_refunded"], charge["refunded"]) == (3000, True)
    again = refused(lambda: refund(client, payment_intent=intent.id))
    assert again.code == "charge_already_refunded"
    assert client.v1.payment_intents.retrieve(intent.id).status == "succeeded"
    entries = journal_for(emulator, "refund.create")
    assert [(e.object, e.payment_intent, e.charge, e.amount) for e in entries] == [
        (first.id, intent.id, charge["id"], 1000),
        (rest.id, intent.id, charge["id"], 1500),
    ]
    assert sum(e.amount or 0 for e in entries) <= charge["amount_captured"]


def test_only_a_captured_successful_charge_is_refunded(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    uncaptured = authorise(client)
    error = refused(lambda: refund(client, payment_intent=uncaptured.id))
    assert "cancel" in str(error.user_message)
    fresh = create_intent(client)
    error = refused(lambda: refund(client, payment_intent=fresh.id))
    assert error.user_message == f"This PaymentIntent ({fresh.id}) does not have a successful charge to refund."
    declined = create_intent(client, 2505)
    with pytest.raises(stripe.CardError):
        client.v1.payment_intents.confirm(declined.id, params={"payment_method": "pm_card_present_visa"})
    refused(lambda: refund(client, payment_intent=declined.id))
    assert journal_for(emulator, "refund.create") == []


def test_validation(client: stripe.StripeClient) -> None:
    intent = captured(client)
    assert refused(lambda: refund(client)).param == "charge"  # neither charge nor payment_intent
    assert refused(lambda: refund(client, payment_intent="pi_nothing")).code == "resource_missing"
    assert refused(lambda: refund(client, charge="ch_nothing")).code == "resource_missing"
    assert refused(lambda: refund(client, payment_intent=intent.id, amount=0)).param == "amount"
    assert refused(lambda: refund(client, payment_intent=intent.id, reason="bored")).param == "reason"
    other = captured(client)
    mismatch = refused(lambda: refund(client, payment_intent=intent.id, charge=other.latest_charge))
    assert mismatch.param == "charge"


def test_a_refund_is_idempotent(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    intent = captured(client)

    first = refund(client, payment_intent=intent.id, amount=700, key="refund-r1")
    again = refund(client, payment_intent=intent.id, amount=700, key="refund-r1")

    assert (replayed(first), replayed(again)) == (False, True)
    assert again.id == first.id
    assert charge_of(client, intent.id)["amount_refunded"] == 700
    [entry] = journal_for(emulator, "refund.create")
    assert entry.idempotency_key == "refund-r1"
    with pytest.raises(stripe.IdempotencyError):
        refund(client, payment_intent=intent.id, amount=800, key="refund-r1")


def test_a_refused_refund_is_replayed(client: stripe.StripeClient) -> None:
    intent = captured(client, 1000)
    with pytest.raises(stripe.InvalidRequestError) as first:
        refund(client, payment_intent=intent.id, amount=5000, key="refund-r2")
    with pytest.raises(stripe.InvalidRequestError) as again:
        refund(client, payment_intent=intent.id, amount=5000, key="refund-r2")
    assert replayed(again.value)
    assert error_body(again.value) == error_body(first.value)


def test_retrieve_and_list(client: stripe.StripeClient) -> None:
    one, two = captured(client), captured(client)
    a = refund(client, payment_intent=one.id, amount=100)
    b = refund(client, payment_intent=two.id, amount=200)
    c = refund(client, payment_intent=one.id, amount=300)

    assert client.v1.refunds.retrieve(a.id).amount == 100
    assert [r.id for r in client.v1.refunds.list().data] == [c.id, b.id, a.id]
    assert [r.id for r in client.v1.refunds.list(params={"payment_intent": one.id}).data] == [c.id, a.id]
    assert [r.id for r in client.v1.refunds.list(params={"charge": str(two.latest_charge)}).data] == [b.id]
    page = client.v1.refunds.list(params={"limit": 1, "starting_after": c.id})
    assert ([r.id for r in page.data], page.has_more) == ([b.id], True)
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.refunds.retrieve("re_nothing")
    assert missing.value.http_status == 404


# -- Interac: refunded in person only -------------------------------------------------------------


def test_interac_is_refunded_in_person(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    reader = simulated_reader(client, emulator)
    paid = interac_payment(client, emulator, reader.id)
    online = refused(lambda: refund(client, payment_intent=paid.id))
    assert "in person" in str(online.user_message)

    waiting = client.v1.terminal.readers.refund_payment(
        reader.id, params={"payment_intent": paid.id, "amount": 1500, "metadata": {"why": "cold tea"}}
    )
    assert waiting.action is not None
    assert (waiting.action.type, waiting.action.status) == ("refund_payment", "in_progress")
    client.v1.test_helpers.terminal.readers.present_payment_method(
        reader.id, params={"type": "interac_present", "interac_present": {"number": INTERAC}}
    )
    done = settled(client, emulator, reader.id)

    assert done.action is not None
    assert done.action.status == "succeeded"
    action = body_of(done)["action"]["refund_payment"]
    made = client.v1.refunds.retrieve(action["refund"])
    charge = charge_of(client, paid.id)
    assert (made.amount, made.charge, made.payment_intent, body_of(made)["metadata"]) == (
        1500,
        charge["id"],
        paid.id,
        {"why": "cold tea"},
    )
    assert {k: action[k] for k in ("amount", "charge", "payment_intent")} == {
        "amount": 1500,
        "charge": charge["id"],
        "payment_intent": paid.id,
    }
    assert (charge["amount_refunded"], charge["refunded"]) == (1500, False)
    [entry] = journal_for(emulator, "refund.create")
    assert (entry.payment_intent, entry.charge, entry.amount, entry.idempotency_key) == (
        paid.id,
        charge["id"],
        1500,
        None,
    )
    assert [e.amount for e in journal_for(emulator, "reader.refund_payment")] == [1500]
    assert INTERAC not in str(body_of(done)) + str(body_of(made))


def test_card_payments_are_not_refunded_on_the_reader(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    reader = simulated_reader(client, emulator)
    intent = captured(client)

    error = refused(lambda: client.v1.terminal.readers.refund_payment(reader.id, params={"payment_intent": intent.id}))

    assert "only available for Interac" in str(error.user_message)
    assert client.v1.terminal.readers.retrieve(reader.id).action is None
    assert journal_for(emulator, "reader.refund_payment") == []


def test_the_customer_cancels_an_in_person_refund(
    url: str, client: stripe.StripeClient, emulator: StripeEmulator
) -> None:
    reader = simulated_reader(client, emulator)
    paid = interac_payment(client, emulator, reader.id)
    client.v1.terminal.readers.refund_payment(
        reader.id, params={"payment_intent": paid.id, "refund_payment_config": {"enable_customer_cancellation": True}}
    )

    assert control(url, "POST", f"terminal/readers/{reader.id}", {"customer_cancels": True}).status_code == 200

    done = client.v1.terminal.readers.retrieve(reader.id)
    assert done.action is not None
    assert (done.action.status, done.action.failure_code) == ("failed", "customer_canceled")
    assert "refund" not in body_of(done)["action"]["refund_payment"]
    assert client.v1.refunds.list().data == []


def test_a_refund_made_meanwhile_fails_the_in_person_one(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    # Two tills refund the same Interac payment: the second to finish finds nothing left to refund.
    first, second = simulated_reader(client, emulator), simulated_reader(client, emulator)
    paid = interac_payment(client, emulator, first.id)
    readers, helpers = client.v1.terminal.readers, client.v1.test_helpers.terminal.readers
    readers.refund_payment(first.id, params={"payment_intent": paid.id})
    readers.refund_payment(second.id, params={"payment_intent": paid.id})
    for reader in (first, second):
        helpers.present_payment_method(reader.id, params={"type": "interac_present"})
        settled(client, emulator, reader.id)

    done = readers.retrieve(second.id)
    assert done.action is not None
    assert (done.action.status, done.action.failure_code) == ("failed", "charge_already_refunded")
    assert charge_of(client, paid.id)["amount_refunded"] == 4000
    assert len(journal_for(emulator, "refund.create")) == 1
