"""The Stripe OpenAPI helper must both accept valid bodies and reject invalid ones."""

from __future__ import annotations

from typing import Any

import pytest
from support.openapi import assert_matches_stripe_schema, stripe_schema_names

PAYMENT_INTENT_REQUIRED = [
    "amount",
    "capture_method",
    "confirmation_method",
    "created",
    "currency",
    "id",
    "livemode",
    "object",
    "payment_method_types",
    "status",
]


def payment_intent() -> dict[str, Any]:
    """A minimal valid PaymentIntent: every required field (per the 2023 spec), nothing else."""
    return {
        "amount": 1250,
        "capture_method": "automatic",
        "confirmation_method": "automatic",
        "created": 1_700_000_000,
        "currency": "usd",
        "id": "pi_3Nq1Rd2eZvKYlo2C0aBcDeFg",
        "livemode": False,
        "object": "payment_intent",
        "payment_method_types": ["card_present"],
        "status": "requires_payment_method",
    }


def test_minimal_payment_intent_passes() -> None:
    assert sorted(payment_intent()) == PAYMENT_INTENT_REQUIRED
    assert_matches_stripe_schema(payment_intent(), "payment_intent")


@pytest.mark.parametrize("field", PAYMENT_INTENT_REQUIRED)
def test_missing_required_field_fails(field: str) -> None:
    body = payment_intent()
    del body[field]
    with pytest.raises(AssertionError, match=f"'{field}' is a required property"):
        assert_matches_stripe_schema(body, "payment_intent")


def test_wrong_type_fails_and_names_the_path() -> None:
    body = payment_intent() | {"amount": "1250"}
    with pytest.raises(AssertionError, match=r"\$\.amount: '1250' is not of type 'integer'"):
        assert_matches_stripe_schema(body, "payment_intent")


def test_null_rejected_for_non_nullable_field() -> None:
    with pytest.raises(AssertionError, match=r"\$\.amount"):
        assert_matches_stripe_schema(payment_intent() | {"amount": None}, "payment_intent")


def test_null_accepted_for_nullable_ref() -> None:
    # last_payment_error is `nullable: true` beside `anyOf: [$ref api_errors]`.
    assert_matches_stripe_schema(payment_intent() | {"last_payment_error": None}, "payment_intent")


def test_nullable_ref_still_checks_non_null_values() -> None:
    error = {
        "type": "card_error",
        "code": "card_declined",
        "message": "Your card was declined.",
    }
    assert_matches_stripe_schema(payment_intent() | {"last_payment_error": error}, "payment_intent")
    with pytest.raises(AssertionError, match=r"\$\.last_payment_error"):
        assert_matches_stripe_schema(payment_intent() | {"last_payment_error": "card_declined"}, "payment_intent")


def test_null_accepted_for_nullable_enum() -> None:
    assert_matches_stripe_schema(payment_intent() | {"cancellation_reason": None}, "payment_intent")


def test_enum_values_are_not_enforced_but_types_are() -> None:
    # `expired` is newer than the 2023 spec; the installed stripe package is the truth.
    assert_matches_stripe_schema(payment_intent() | {"cancellation_reason": "expired"}, "payment_intent")
    with pytest.raises(AssertionError, match=r"\$\.cancellation_reason"):
        assert_matches_stripe_schema(payment_intent() | {"cancellation_reason": 3}, "payment_intent")


def test_expandable_field_accepts_an_id() -> None:
    assert_matches_stripe_schema(payment_intent() | {"customer": "cus_OdZ1"}, "payment_intent")
    with pytest.raises(AssertionError, match=r"\$\.customer"):
        assert_matches_stripe_schema(payment_intent() | {"customer": 42}, "payment_intent")


def test_error_envelope_passes() -> None:
    body = {
        "error": {
            "type": "invalid_request_error",
            "message": "No such payment_intent: 'pi_x'",
        }
    }
    assert_matches_stripe_schema(body, "error")


def test_error_envelope_without_type_fails() -> None:
    with pytest.raises(AssertionError, match=r"\$\.error: 'type' is a required property"):
        assert_matches_stripe_schema({"error": {"message": "boom"}}, "error")
    with pytest.raises(AssertionError, match="'error' is a required property"):
        assert_matches_stripe_schema({"type": "api_error", "message": "boom"}, "error")


def test_list_and_search_envelopes() -> None:
    listed = {
        "object": "list",
        "data": [payment_intent()],
        "has_more": False,
        "url": "/v1/payment_intents",
    }
    assert_matches_stripe_schema(listed, "payment_intent_list")
    found = {
        "object": "search_result",
        "data": [payment_intent()],
        "has_more": False,
        "next_page": None,
        "url": "/v1/payment_intents/search",
    }
    assert_matches_stripe_schema(found, "payment_intent_search_result")
    # Items of `data` are checked as PaymentIntents, with their index in the path.
    listed["data"] = [payment_intent(), {"id": "pi_2"}]
    with pytest.raises(AssertionError, match=r"\$\.data\[1\]"):
        assert_matches_stripe_schema(listed, "payment_intent_list")


def test_terminal_reader() -> None:
    reader: dict[str, Any] = {
        "action": None,
        "device_type": "simulated_wisepos_e",
        "id": "tmr_FDOt2wlRZEdpd7",
        "label": "Kiosk 1",
        "livemode": False,
        "metadata": {},
        "object": "terminal.reader",
        "serial_number": "259cd19c-b902-4730-96a1-09183be6e7f7",
    }
    assert_matches_stripe_schema(reader, "terminal.reader")
    with pytest.raises(AssertionError, match=r"\$\.metadata\.kiosk: 7 is not of type 'string'"):
        assert_matches_stripe_schema(reader | {"metadata": {"kiosk": 7}}, "terminal.reader")


def test_schema_names() -> None:
    names = stripe_schema_names()
    expected = {
        "payment_intent",
        "charge",
        "error",
        "api_errors",
        "terminal.reader",
        "payment_intent_list",
        "payment_intent_search_result",
    }
    assert expected <= set(names)
    assert names == sorted(names)


def test_unknown_schema_name_raises_clear_error() -> None:
    with pytest.raises(ValueError, match=r"unknown Stripe schema 'payment_intents'.*'payment_intent'"):
        assert_matches_stripe_schema({}, "payment_intents")
