"""Idempotency keys as Stripe keeps them (https://docs.stripe.com/api/idempotent_requests): saved first answers,
replays, conflicts, expiry."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import stripe
from support.emulator_fidelity import (
    CARD_PRESENT,
    VISA,
    api,
    authorise,
    create_intent,
    journal_for,
    journal_ops,
    replayed,
    response_of,
    wait_until,
)

from readerhost.sim.stripe_emulator import StripeEmulator

DAY = 24 * 3600


def test_same_key_same_params_replays_the_first_answer(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    first = create_intent(client, 1000, key="order-7", metadata={"order_id": "7"})
    again = create_intent(client, 1000, key="order-7", metadata={"order_id": "7"})

    assert again.id == first.id
    assert not replayed(first)
    assert replayed(again)
    assert response_of(again).headers.get("Idempotency-Key") == "order-7"
    assert response_of(again).data == response_of(first).data
    [entry] = journal_for(emulator, "payment_intent.create")
    assert (entry.object, entry.idempotency_key) == (first.id, "order-7")


def test_replay_is_the_saved_answer_not_the_current_state(client: stripe.StripeClient) -> None:
    first = create_intent(client, 1000, key="order-8")
    client.v1.payment_intents.cancel(first.id)

    again = create_intent(client, 1000, key="order-8")

    assert replayed(again)
    assert again.status == "requires_payment_method"
    assert client.v1.payment_intents.retrieve(first.id).status == "canceled"


@pytest.mark.parametrize("change", [{"amount": 1001}, {"currency": "eur"}, {"metadata": {"order_id": "9"}}])
def test_same_key_other_params_is_an_idempotency_error(
    client: stripe.StripeClient, emulator: StripeEmulator, change: dict[str, Any]
) -> None:
    create_intent(client, 1000, key="order-9")
    params: dict[str, Any] = {"amount": 1000} | change

    with pytest.raises(stripe.IdempotencyError) as raised:
        create_intent(client, key="order-9", **params)

    assert raised.value.http_status == 400
    assert raised.value.error is not None
    assert raised.value.error.type == "idempotency_error"
    assert "order-9" in str(raised.value.user_message)
    assert len(journal_for(emulator, "payment_intent.create")) == 1


def test_same_key_on_another_endpoint_is_an_idempotency_error(
    client: stripe.StripeClient, emulator: StripeEmulator
) -> None:
    intent = create_intent(client, 1000, key="shared-key")

    with pytest.raises(stripe.IdempotencyError):
        client.v1.payment_intents.confirm(
            intent.id, params={"payment_method": VISA}, options={"idempotency_key": "shared-key"}
        )

    assert client.v1.payment_intents.retrieve(intent.id).status == "requires_payment_method"
    assert journal_ops(emulator) == ["payment_intent.create"]


def test_key_in_flight_is_409(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    rule = emulator.add_fault(
        {"method": "POST", "path": "^/v1/payment_intents$", "action": "delay_during", "seconds": 1.5}
    )
    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(create_intent, client, 1000, key="order-10")
        # The rule fires when the first request arrives; it then holds the key while it waits.
        wait_until(lambda: rule.fired == 1, what="the first request to reach the emulator")

        with pytest.raises(stripe.APIError) as raised:
            create_intent(client, 1000, key="order-10")

        created = first.result(timeout=10)

    error = raised.value
    assert error.http_status == 409
    assert error.code is None  # stripe-python's APIError: the code is only on error.error
    assert error.error is not None
    assert (error.error.type, error.error.code) == ("invalid_request_error", "idempotency_key_in_use")
    assert journal_ops(emulator) == ["payment_intent.create"]
    # The 409 was not saved: the key still replays the first request's answer.
    again = create_intent(client, 1000, key="order-10")
    assert (again.id, replayed(again)) == (created.id, True)


def test_a_decline_is_saved_and_replayed(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    intents = client.v1.payment_intents
    intent = create_intent(client, 2505)

    errors = []
    for _ in range(2):
        with pytest.raises(stripe.CardError) as raised:
            intents.confirm(intent.id, params={"payment_method": VISA}, options={"idempotency_key": "confirm-1"})
        errors.append(raised.value)

    first, again = errors
    assert (first.http_status, again.http_status) == (402, 402)
    assert not replayed(first)
    assert replayed(again)
    assert first.error is not None
    assert again.error is not None
    assert again.error.charge == first.error.charge
    assert again.error.decline_code == "generic_decline"
    assert len(journal_for(emulator, "payment_intent.confirm")) == 1


def test_a_wrong_state_error_is_saved_and_replayed(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    intents = client.v1.payment_intents
    intent = create_intent(client)

    with pytest.raises(stripe.InvalidRequestError):
        intents.capture(intent.id, options={"idempotency_key": "capture-1"})
    intents.confirm(intent.id, params={"payment_method": VISA})
    with pytest.raises(stripe.InvalidRequestError) as raised:
        intents.capture(intent.id, options={"idempotency_key": "capture-1"})

    assert raised.value.code == "payment_intent_unexpected_state"
    assert replayed(raised.value)
    assert journal_for(emulator, "payment_intent.capture") == []


def test_validation_errors_are_not_saved(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    incomplete: Any = {"currency": "usd", **CARD_PRESENT}
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.payment_intents.create(params=incomplete, options={"idempotency_key": "order-11"})
    assert raised.value.code == "parameter_missing"

    created = create_intent(client, 1000, key="order-11")

    assert created.status == "requires_payment_method"
    assert not replayed(created)
    assert journal_ops(emulator) == ["payment_intent.create"]


def test_unknown_payment_method_is_not_saved(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    intents = client.v1.payment_intents
    intent = create_intent(client)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        intents.confirm(
            intent.id, params={"payment_method": "pm_card_present_nothing"}, options={"idempotency_key": "confirm-2"}
        )
    assert raised.value.code == "resource_missing"

    confirmed = intents.confirm(intent.id, params={"payment_method": VISA}, options={"idempotency_key": "confirm-2"})

    assert confirmed.status == "requires_capture"
    assert not replayed(confirmed)


def test_keys_are_kept_24_hours_of_emulator_time(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    first = create_intent(client, 1000, key="order-12")

    emulator.advance_clock(DAY - 60)
    kept = create_intent(client, 1000, key="order-12")
    emulator.advance_clock(61)  # 24 h and 1 s after the first use
    expired = create_intent(client, 1000, key="order-12")

    assert (kept.id, replayed(kept)) == (first.id, True)
    assert expired.id != first.id
    assert not replayed(expired)
    assert [entry.object for entry in journal_for(emulator, "payment_intent.create")] == [first.id, expired.id]


def test_an_expired_key_may_carry_other_params(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    create_intent(client, 1000, key="order-13")
    with pytest.raises(stripe.IdempotencyError):
        create_intent(client, 2000, key="order-13")

    emulator.advance_clock(DAY + 1)

    assert create_intent(client, 2000, key="order-13").amount == 2000


def test_get_requests_ignore_keys(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    intents = client.v1.payment_intents
    intent = create_intent(client)
    first = intents.retrieve(intent.id, options={"idempotency_key": "read-1"})
    intents.cancel(intent.id)

    again = intents.retrieve(intent.id, options={"idempotency_key": "read-1"})

    assert (first.status, again.status) == ("requires_payment_method", "canceled")
    assert not replayed(again)
    # Nor did the GETs claim the key: a POST may use it for the first time.
    created = create_intent(client, 1000, key="read-1")
    assert not replayed(created)
    assert created.id != intent.id


def test_a_key_of_255_characters_is_the_longest(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        create_intent(client, 1000, key="k" * 256)
    assert raised.value.http_status == 400
    assert journal_ops(emulator) == []

    created = create_intent(client, 1000, key="k" * 255)

    assert [entry.idempotency_key for entry in journal_for(emulator, "payment_intent.create")] == ["k" * 255]
    assert create_intent(client, 1000, key="k" * 255).id == created.id


def test_without_a_key_every_post_is_a_new_request(url: str, emulator: StripeEmulator) -> None:
    # stripe-python always sends a key with a POST; a bare HTTP client need not.
    form = {"amount": "1000", "currency": "usd", "allowed_payment_method_types[0]": "card_present"}
    form["capture_method"] = "manual"
    ids = [api(url, "POST", "/v1/payment_intents", data=form).json()["id"] for _ in range(2)]

    assert ids[0] != ids[1]
    assert [entry.idempotency_key for entry in emulator.journal_entries()] == [None, None]


def test_authorised_intent_capture_replays_under_its_key(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    intent = authorise(client, 1000)
    options: Any = {"idempotency_key": "capture-2"}

    first = client.v1.payment_intents.capture(intent.id, options=options)
    again = client.v1.payment_intents.capture(intent.id, options=options)

    assert (first.status, again.status) == ("succeeded", "succeeded")
    assert replayed(again)
    assert len(journal_for(emulator, "payment_intent.capture")) == 1
