"""Authentication: a test-mode secret key, by Bearer or Basic auth; anything else is a 401."""

from __future__ import annotations

import pytest
import requests
import stripe
from conftest import TEST_KEY, make_client
from support.emulator_fidelity import api, create_intent

from readerhost.sim.stripe_emulator import StripeEmulator


def with_key(url: str, key: str) -> stripe.StripeClient:
    return stripe.StripeClient(
        key, base_addresses={"api": url}, http_client=stripe.RequestsClient(timeout=(2.0, 5.0)), max_network_retries=0
    )


def test_no_key_is_401(url: str, emulator: StripeEmulator) -> None:
    answer = api(url, "POST", "/v1/payment_intents", key=None, data={"amount": "1000", "currency": "usd"})

    assert answer.status_code == 401
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "API key" in error["message"]
    assert emulator.journal_entries() == []


@pytest.mark.parametrize(
    "key", ["sk_live_51Hreaderhostlivekey", "pk_test_51Hreaderhostpublishable", "garbage", "sk_test_", "Bearer"]
)
def test_a_key_that_is_not_a_test_secret_key_is_401(url: str, emulator: StripeEmulator, key: str) -> None:
    with pytest.raises(stripe.AuthenticationError) as raised:
        create_intent(with_key(url, key), 1000)

    assert raised.value.http_status == 401
    assert raised.value.error is not None
    assert raised.value.error.type == "invalid_request_error"
    assert emulator.journal_entries() == []
    if len(key) > 12:  # Stripe shows only the key's ends
        assert key not in str(raised.value.user_message)


def test_an_unknown_scheme_is_401(url: str) -> None:
    answer = api(url, "GET", "/v1/payment_intents", key=None, headers={"Authorization": f"Token {TEST_KEY}"})

    assert answer.status_code == 401


def test_a_restricted_test_key_is_accepted(url: str) -> None:
    assert create_intent(with_key(url, "rk_test_readerhost"), 1000).status == "requires_payment_method"


def test_basic_auth_with_the_key_as_user_name(url: str, client: stripe.StripeClient) -> None:
    intent = create_intent(client, 1000)

    answer = requests.get(f"{url}/v1/payment_intents/{intent.id}", auth=(TEST_KEY, ""), timeout=10)
    wrong = requests.get(f"{url}/v1/payment_intents/{intent.id}", auth=("sk_live_readerhost", ""), timeout=10)

    assert answer.status_code == 200
    assert answer.json()["id"] == intent.id
    assert wrong.status_code == 401


def test_every_endpoint_needs_the_key(url: str) -> None:
    anonymous = [
        api(url, "GET", "/v1/payment_intents", key=None),
        api(url, "GET", "/v1/payment_intents/search", key=None, params={"query": "status:'canceled'"}),
        api(url, "GET", "/v1/payment_intents/pi_x", key=None),
        api(url, "POST", "/v1/payment_intents/pi_x/capture", key=None),
    ]

    assert [answer.status_code for answer in anonymous] == [401] * 4


def test_the_fixture_client_authenticates(url: str) -> None:
    assert make_client(url).v1.payment_intents.list().data == []
