"""Connection tokens: created with a secret key, accepted as the bearer of a Terminal SDK's calls on a
PaymentIntent whose client secret comes with them, refused for anything else; and a live-mode
account refuses a server-side card-present confirm with a payment method no reader made."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import stripe
from conftest import make_client
from support.emulator_fidelity import api, create_intent

from readerhost.sim.reader_device.sdk import SdkClient
from readerhost.sim.stripe_emulator import StripeEmulator
from readerhost.sim.stripe_emulator.server import running_emulator

VISA = "pm_card_present_visa"
LIVE_KEY = "sk_live_51Hreaderhostlivekey"


def with_key(url: str, key: str) -> stripe.StripeClient:
    return stripe.StripeClient(
        key, base_addresses={"api": url}, http_client=stripe.RequestsClient(timeout=(2.0, 5.0)), max_network_retries=0
    )


def token(client: stripe.StripeClient, **params: str) -> str:
    secret = client.v1.terminal.connection_tokens.create(params).secret  # type: ignore[arg-type]
    assert isinstance(secret, str)
    return secret


def test_a_token_is_created_with_its_location_and_a_bad_location_is_refused(url: str) -> None:
    client = make_client(url)
    created = client.v1.terminal.connection_tokens.create({"location": "tml_FrontDesk1"})
    assert created.object == "terminal.connection_token"
    assert created.secret.startswith("pst_test_")
    assert len(created.secret) > 40
    assert created.location == "tml_FrontDesk1"
    assert "location" not in client.v1.terminal.connection_tokens.create()
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.terminal.connection_tokens.create({"location": "front desk"})
    assert refused.value.param == "location"


def test_the_sdk_collects_and_confirms_with_the_token_and_the_client_secret(url: str, emulator: StripeEmulator) -> None:
    client = make_client(url)
    intent = create_intent(client, 1250)
    sdk = SdkClient(url)
    secret = token(client)

    collected = sdk.collect(secret, intent.id, intent.client_secret or "", VISA)
    assert collected.status == "requires_confirmation"
    assert client.v1.payment_intents.retrieve(intent.id).payment_method == VISA

    confirmed = sdk.confirm(secret, intent.id, intent.client_secret or "")
    assert (confirmed.status, confirmed.code, confirmed.payment_intent) == ("requires_capture", None, intent.id)
    assert client.v1.payment_intents.retrieve(intent.id).status == "requires_capture"
    assert not any("pst_" in repr(entry) for entry in emulator.journal_entries())


def test_a_decline_answers_the_payment_intent_status_with_the_code(url: str) -> None:
    client = make_client(url)
    intent = create_intent(client, 1250)
    sdk = SdkClient(url)
    secret = token(client)
    sdk.collect(secret, intent.id, intent.client_secret or "", "pm_card_present_charge_declined")
    declined = sdk.confirm(secret, intent.id, intent.client_secret or "")
    assert (declined.status, declined.code) == ("requires_payment_method", "card_declined")


def test_a_token_without_the_right_client_secret_or_for_anything_else_is_refused(url: str) -> None:
    client = make_client(url)
    intent = create_intent(client, 1250)
    other = create_intent(client, 990)
    secret = token(client)
    sdk = SdkClient(url)

    wrong = sdk.collect(secret, intent.id, other.client_secret or "", VISA)
    assert (wrong.status, wrong.code) == (None, "stripe_error")
    assert client.v1.payment_intents.retrieve(intent.id).status == "requires_payment_method"
    missing = api(url, "POST", f"/v1/payment_intents/{intent.id}/confirm", key=secret, data={})
    assert missing.status_code == 400
    assert missing.json()["error"]["param"] == "client_secret"

    for method, path in [
        ("POST", "/v1/payment_intents"),
        ("GET", "/v1/payment_intents"),
        ("POST", f"/v1/payment_intents/{intent.id}/capture"),
        ("POST", f"/v1/payment_intents/{intent.id}/cancel"),
        ("POST", "/v1/terminal/connection_tokens"),
        ("POST", "/v1/refunds"),
    ]:
        answer = api(url, method, path, key=secret, data={"client_secret": intent.client_secret})
        assert answer.status_code == 403, (method, path)
        assert "connection token" in answer.json()["error"]["message"]

    unknown = api(url, "POST", f"/v1/payment_intents/{intent.id}/confirm", key="pst_test_forged", data={})
    assert unknown.status_code == 401
    by_secret_key = api(
        url,
        "POST",
        f"/v1/terminal/sdk/payment_intents/{intent.id}/collect",
        data={"client_secret": intent.client_secret, "payment_method": VISA},
    )
    assert by_secret_key.status_code == 401
    assert client.v1.payment_intents.retrieve(intent.id).status == "requires_payment_method"


@pytest.fixture
def live_url() -> Iterator[str]:
    with running_emulator(search_lag_s=0, accept_live_keys=True) as (url, _emulator):
        yield url


def test_a_live_key_cannot_confirm_a_card_present_payment_with_a_method_no_reader_made(live_url: str) -> None:
    live = with_key(live_url, LIVE_KEY)
    intent = create_intent(live, 1250)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        live.v1.payment_intents.confirm(intent.id, {"payment_method": VISA})
    assert refused.value.param == "payment_method"
    assert "not collected by a Stripe Terminal reader" in str(refused.value.user_message)
    with pytest.raises(stripe.InvalidRequestError):
        create_intent(live, 990, payment_method=VISA, confirm=True)
    assert live.v1.payment_intents.retrieve(intent.id).status == "requires_payment_method"

    # The SDK's way works in live mode: its token is a live one.
    secret = token(live)
    assert secret.startswith("pst_live_")
    sdk = SdkClient(live_url)
    assert sdk.collect(secret, intent.id, intent.client_secret or "", VISA).status == "requires_confirmation"
    assert sdk.confirm(secret, intent.id, intent.client_secret or "").status == "requires_capture"


def test_a_test_key_still_confirms_server_side_and_live_keys_are_refused_unless_accepted(url: str) -> None:
    client = make_client(url)
    intent = create_intent(client, 1250)
    assert client.v1.payment_intents.confirm(intent.id, {"payment_method": VISA}).status == "requires_capture"
    with pytest.raises(stripe.AuthenticationError):
        create_intent(with_key(url, LIVE_KEY), 1000)
