"""Idempotency keys, and the checks on what a POS asks for (beyond those in test_payment_flow)."""

from __future__ import annotations

from typing import Any

import pytest

from readerhost.daemon.payments import keys
from readerhost.daemon.payments.model import CaptureMode, OfflineMode, PaymentRequest
from readerhost.daemon.payments.validation import InvalidRequest, payment_request

# -- keys -----------------------------------------------------------------------------------


def test_create_key_is_the_same_for_the_same_terminal_and_order() -> None:
    assert keys.create_key("kiosk-1", "A-1001", 1) == keys.create_key("kiosk-1", "A-1001", 1)
    assert keys.create_key("kiosk-1", "A-1001", 1) != keys.create_key("kiosk-2", "A-1001", 1)
    assert keys.create_key("kiosk-1", "A-1001", 1) != keys.create_key("kiosk-1", "A-1002", 1)
    assert len(keys.create_key("kiosk-1", "A-1001", 1)) <= keys.MAX_KEY_LENGTH


def test_each_attempt_of_an_order_has_its_own_create_key() -> None:
    first, second, third = (keys.create_key("kiosk-1", "A-1001", attempt) for attempt in (1, 2, 3))
    assert len({first, second, third}) == 3
    assert second == "readerhost:kiosk-1:A-1001:2:create"
    # An order id that spells another order's attempt cannot meet it: the order is escaped.
    assert keys.create_key("kiosk-1", "A-1001:2", 1) != second
    long = ("t" * 40, "o" * 200)
    assert keys.create_key(*long, 1) != keys.create_key(*long, 2)


def test_a_long_create_key_is_hashed_and_still_tells_terminals_and_orders_apart() -> None:
    terminal, order = "t" * 40, "o" * 200
    key = keys.create_key(terminal, order, 1)
    assert len(key) <= keys.MAX_KEY_LENGTH
    assert key == keys.create_key(terminal, order, 1)
    assert order not in key
    assert key != keys.create_key("u" * 40, order, 1)
    assert key != keys.create_key(terminal, "o" * 199 + "p", 1)
    assert key != keys.create_key(terminal[:-1], "t" + order[:-1], 1)  # the same text, split differently


@pytest.mark.parametrize("terminal", ["k", "kiosk-1", "t" * 40])
def test_every_create_key_leaves_room_for_its_generations(terminal: str) -> None:
    for length in range(1, 201):
        key = keys.create_key(terminal, "o" * length, 1)
        for _ in range(98):  # up to :r99
            key = keys.next_generation(key)
            assert len(key) <= keys.MAX_KEY_LENGTH


@pytest.mark.parametrize(
    "original",
    [
        keys.create_key("kiosk-1", "A-1", 1),
        keys.create_key("t" * 40, "o" * 200, 1),
        keys.create_key("kiosk-1", "A:r7", 1),  # an order id that looks like a generation
        keys.operation_key("pay_1", "capture"),
        keys.operation_key("pay_1", "confirm", 3),
    ],
)
def test_next_generation_counts_r2_r3_and_never_repeats_a_key(original: str) -> None:
    second = keys.next_generation(original)
    third = keys.next_generation(second)
    assert (second, third) == (f"{original}:r2", f"{original}:r3")
    generations = [original]
    for _ in range(20):
        generations.append(keys.next_generation(generations[-1]))
    assert len(set(generations)) == len(generations)


def test_a_generation_of_one_order_is_never_the_create_key_of_another() -> None:
    orders = ["A-1", "A-1:create", "A-1:create:r2", "A-1:r2", "create", "r2"]
    creates = {keys.create_key("kiosk-1", order, 1) for order in orders}
    assert len(creates) == len(orders)
    for key in creates:
        later = keys.next_generation(key)
        for _ in range(5):
            assert later not in creates
            later = keys.next_generation(later)


def test_create_keys_of_different_terminals_never_meet() -> None:
    assert keys.create_key("shop", "a:b", 1) != keys.create_key("shop:a", "b", 1)


# -- validation -----------------------------------------------------------------------------

BASE: dict[str, Any] = {"order_id": "D-1", "amount": 1000, "currency": "usd"}


def test_a_full_valid_request_gives_the_right_payment_request() -> None:
    metadata = {"k" * 40: "v" * 500, "site": "Gare du Nord", "empty": ""}
    params: dict[str, Any] = {
        "order_id": "K-7.locker_12:b",
        "amount": 99_999_999,
        "currency": "eur",
        "description": "d" * 1000,
        "metadata": metadata,
        "capture": "automatic",
        "confirm": True,
        "offline": "prefer_online",
        "payment_intent_client_secret": "pi_3Abc123_secret_XyZ789",
        "tipping": {"amount_eligible": 99_999_999},
    }
    request = payment_request(params)
    assert request == PaymentRequest(
        order_id="K-7.locker_12:b",
        amount=99_999_999,
        currency="eur",
        description="d" * 1000,
        metadata={"k" * 40: "v" * 500, "site": "Gare du Nord", "empty": ""},
        capture=CaptureMode.AUTOMATIC,
        confirm=True,
        offline=OfflineMode.PREFER_ONLINE,
        payment_intent_client_secret="pi_3Abc123_secret_XyZ789",
        tipping=99_999_999,
    )
    metadata["site"] = "changed later"
    assert request.metadata["site"] == "Gare du Nord"  # the request keeps its own copy


def test_a_minimal_request_gets_the_protocols_defaults() -> None:
    assert payment_request(dict(BASE)) == PaymentRequest(
        order_id="D-1",
        amount=1000,
        currency="usd",
        description=None,
        metadata={},
        capture=CaptureMode.MANUAL,
        confirm=False,
        offline=OfflineMode.REQUIRE_ONLINE,
        payment_intent_client_secret=None,
        tipping=None,
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"description": "d" * 1001}, "description"),
        ({"description": 42}, "description"),
        ({"confirm": "true"}, "confirm"),
        ({"confirm": 1}, "confirm"),
        ({"confirm": None}, "confirm"),
        ({"payment_intent_client_secret": "pi_3Abc123"}, "payment_intent_client_secret"),
        ({"payment_intent_client_secret": "pi_3Abc123_secret_"}, "payment_intent_client_secret"),
        ({"payment_intent_client_secret": "seti_1_secret_2"}, "payment_intent_client_secret"),
        ({"payment_intent_client_secret": "pi_1_secret_2 "}, "payment_intent_client_secret"),
        ({"payment_intent_client_secret": 7}, "payment_intent_client_secret"),
        ({"metadata": {"a[b": "v"}}, "metadata.a[b"),
        ({"metadata": {"a]": "v"}}, "metadata.a]"),
        ({"metadata": {"": "v"}}, "metadata."),
        ({"metadata": ["a", "b"]}, "metadata"),
        ({"metadata": "a=b"}, "metadata"),
        ({"metadata": None}, "metadata"),
        ({"amount": 100_000_000}, "amount"),
        ({"currency": "jpy", "amount": 49}, "amount"),
        ({"tipping": 500}, "tipping"),
        ({"tipping": {}}, "tipping"),
        ({"tipping": {"amount_eligible": "500"}}, "tipping"),
        ({"tipping": {"amount_eligible": True}}, "tipping"),
        ({"tipping": {"amount_eligible": 500, "percentages": [10]}}, "tipping"),
        ({"tipping": {"amount_eligible": 0}}, "tipping.amount_eligible"),
        ({"tipping": {"amount_eligible": 1001}}, "tipping.amount_eligible"),
    ],
    ids=repr,
)
def test_each_invalid_field_names_itself(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as invalid:
        payment_request({**BASE, **changes})
    assert invalid.value.field == field
    assert invalid.value.message
    assert str(invalid.value) == invalid.value.message


def test_metadata_may_have_47_keys_but_not_48() -> None:
    keys47 = {f"k{i}": "v" for i in range(47)}
    assert payment_request({**BASE, "metadata": keys47}).metadata == keys47
    with pytest.raises(InvalidRequest) as invalid:
        payment_request({**BASE, "metadata": {**keys47, "k47": "v"}})
    assert invalid.value.field == "metadata"
    assert "47" in invalid.value.message


def test_a_zero_decimal_currency_has_its_own_minimum() -> None:
    with pytest.raises(InvalidRequest) as invalid:
        payment_request({**BASE, "currency": "jpy", "amount": 49})
    assert invalid.value.field == "amount"
    assert "50 jpy" in invalid.value.message
    assert payment_request({**BASE, "currency": "jpy", "amount": 50}).amount == 50
