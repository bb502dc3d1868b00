"""The card-present, manual-capture life cycle, through stripe-python, as Stripe answers it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import stripe
from support.emulator_fidelity import VISA, authorise, body_of, create_intent, journal_for, journal_ops

from readerhost.sim.stripe_emulator import StripeEmulator

HOUR = 3600
DAY = 24 * HOUR


def charge_of(intents: stripe.PaymentIntentService, intent_id: str) -> stripe.Charge:
    """The PaymentIntent's latest charge, through `expand[]=latest_charge` on retrieve."""
    retrieved = intents.retrieve(intent_id, params={"expand": ["latest_charge"]})
    charge = retrieved.latest_charge
    assert isinstance(charge, stripe.Charge), f"latest_charge was not expanded: {charge!r}"
    return charge


# -- create, confirm, retrieve ------------------------------------------------------------------


def test_create_gives_requires_payment_method(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    intent = create_intent(client, 1250, key="order-1", metadata={"order_id": "1"})

    assert intent.id.startswith("pi_")
    assert intent.object == "payment_intent"
    assert intent.status == "requires_payment_method"
    assert (intent.amount, intent.currency, intent.capture_method) == (1250, "usd", "manual")
    assert intent.payment_method_types == ["card_present"]
    assert intent.latest_charge is None
    assert intent.amount_capturable == 0
    assert intent.client_secret is not None
    assert intent.client_secret.startswith(f"{intent.id}_secret_")
    # The emulator's clock is real time plus an offset: a second may tick between two readings.
    assert emulator.clock.timestamp() - 1 <= intent.created <= emulator.clock.timestamp()
    [entry] = emulator.journal_entries()
    assert (entry.op, entry.object, entry.idempotency_key, entry.status, entry.amount, entry.metadata) == (
        "payment_intent.create",
        intent.id,
        "order-1",
        "requires_payment_method",
        1250,
        {"order_id": "1"},
    )


def test_a_secret_key_retrieve_returns_the_client_secret_and_an_update_merges_metadata(
    client: stripe.StripeClient,
) -> None:
    """As Stripe does: the client secret comes back on every retrieve with a secret key (readerhost
    checks a handed-over one against it), and metadata sent on an update is merged key by key."""
    intent = create_intent(client, 1250, key="order-cs", metadata={"cart": "42", "note": "backend"})

    again = client.v1.payment_intents.retrieve(intent.id)
    updated = client.v1.payment_intents.update(intent.id, params={"metadata": {"order_id": "A-1"}})

    assert again.client_secret == intent.client_secret
    assert updated.metadata.to_dict() == {"cart": "42", "note": "backend", "order_id": "A-1"}


def test_confirm_authorises_to_requires_capture(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    created = create_intent(client, 2500)

    confirmed = client.v1.payment_intents.confirm(created.id, params={"payment_method": VISA})

    assert confirmed.id == created.id
    assert confirmed.status == "requires_capture"
    assert confirmed.payment_method == VISA
    assert confirmed.amount_capturable == 2500
    assert confirmed.amount_received == 0
    assert confirmed.last_payment_error is None
    assert isinstance(confirmed.latest_charge, str)
    assert confirmed.latest_charge.startswith("ch_")
    assert journal_ops(emulator) == ["payment_intent.create", "payment_intent.confirm"]
    assert journal_for(emulator, "payment_intent.confirm")[0].status == "requires_capture"


def test_create_with_payment_method_then_confirm_without_one(client: stripe.StripeClient) -> None:
    created = create_intent(client, 1000, payment_method=VISA)
    assert created.status == "requires_confirmation"
    assert created.payment_method == VISA

    confirmed = client.v1.payment_intents.confirm(created.id)

    assert confirmed.status == "requires_capture"


def test_create_and_confirm_in_one_request(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    intent = create_intent(client, 1000, payment_method=VISA, confirm=True)

    assert intent.status == "requires_capture"
    assert journal_ops(emulator) == ["payment_intent.create", "payment_intent.confirm"]


@pytest.mark.parametrize(
    ("card", "brand", "last4", "window_s"),
    [
        ("visa", "visa", "4242", 4 * DAY + 18 * HOUR),
        ("visa_debit", "visa", "5556", 4 * DAY + 18 * HOUR),
        ("mastercard", "mastercard", "4444", 2 * DAY),
        ("amex", "amex", "0005", 2 * DAY),
        ("discover", "discover", "1117", 2 * DAY),
    ],
)
def test_expanded_charge_describes_the_card_present_authorisation(
    client: stripe.StripeClient, emulator: StripeEmulator, card: str, brand: str, last4: str, window_s: int
) -> None:
    intents = client.v1.payment_intents
    created = create_intent(client, 1800)
    emulator.advance_clock(HOUR)  # the window runs from the authorisation, not from the creation
    intents.confirm(created.id, params={"payment_method": f"pm_card_present_{card}"})

    charge = charge_of(intents, created.id)

    assert charge.object == "charge"
    assert charge.payment_intent == created.id
    assert (charge.amount, charge.currency, charge.status, charge.paid, charge.captured) == (
        1800,
        "usd",
        "succeeded",
        True,
        False,
    )
    assert created.created + HOUR <= charge.created <= created.created + HOUR + 1
    details = charge.payment_method_details
    assert details is not None
    assert details.type == "card_present"
    present = details.card_present
    assert present is not None
    assert (present.brand, present.last4, present.read_method) == (brand, last4, "contactless_emv")
    assert present.capture_before == charge.created + window_s
    assert present.amount_authorized == 1800
    assert charge.outcome is not None
    assert charge.outcome.type == "authorized"


@pytest.mark.parametrize(
    "read_method",
    [
        "contact_emv",
        "contactless_emv",
        "contactless_magstripe_mode",
        "magnetic_stripe_fallback",
        "magnetic_stripe_track2",
    ],
)
def test_read_method_suffix_sets_read_method(client: stripe.StripeClient, read_method: str) -> None:
    intent = authorise(client, 1000, f"{VISA}__{read_method}")

    charge = charge_of(client.v1.payment_intents, intent.id)

    assert charge.payment_method_details is not None
    assert charge.payment_method_details.card_present is not None
    assert charge.payment_method_details.card_present.read_method == read_method
    assert intent.payment_method == f"{VISA}__{read_method}"


@pytest.mark.parametrize("payment_method", ["pm_card_present_unicorn", f"{VISA}__telepathy", "pm_card_visa", "card"])
def test_unknown_payment_method_is_refused(
    client: stripe.StripeClient, emulator: StripeEmulator, payment_method: str
) -> None:
    intent = create_intent(client)

    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.payment_intents.confirm(intent.id, params={"payment_method": payment_method})

    assert raised.value.http_status == 400
    assert raised.value.code == "resource_missing"
    assert raised.value.param == "payment_method"
    assert payment_method in str(raised.value.user_message)
    assert client.v1.payment_intents.retrieve(intent.id).status == "requires_payment_method"
    assert journal_ops(emulator) == ["payment_intent.create"]


# -- capture ------------------------------------------------------------------------------------


def test_capture_in_full(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    intents = client.v1.payment_intents
    intent = authorise(client, 3000)

    captured = intents.capture(intent.id)

    assert captured.status == "succeeded"
    assert (captured.amount_received, captured.amount_capturable) == (3000, 0)
    charge = charge_of(intents, intent.id)
    assert (charge.captured, charge.amount_captured, charge.amount_refunded, charge.refunded) == (
        True,
        3000,
        0,
        False,
    )
    assert charge.balance_transaction is not None
    [entry] = journal_for(emulator, "payment_intent.capture")
    assert (entry.object, entry.amount, entry.status) == (intent.id, 3000, "succeeded")


def test_partial_capture_releases_the_rest(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    intents = client.v1.payment_intents
    intent = authorise(client, 3000)

    captured = intents.capture(intent.id, params={"amount_to_capture": 1850})

    assert captured.status == "succeeded"
    assert (captured.amount, captured.amount_received, captured.amount_capturable) == (3000, 1850, 0)
    charge = charge_of(intents, intent.id)
    assert (charge.amount, charge.amount_captured, charge.amount_refunded) == (3000, 1850, 1150)
    assert charge.captured is True
    assert charge.refunded is False
    assert [entry.amount for entry in journal_for(emulator, "payment_intent.capture")] == [1850]


def test_capture_above_capturable_is_refused_and_changes_nothing(
    client: stripe.StripeClient, emulator: StripeEmulator
) -> None:
    intents = client.v1.payment_intents
    intent = authorise(client, 3000)
    before = body_of(intents.retrieve(intent.id))

    with pytest.raises(stripe.InvalidRequestError) as raised:
        intents.capture(intent.id, params={"amount_to_capture": 3001})

    assert raised.value.http_status == 400
    assert raised.value.code == "amount_too_large"
    assert raised.value.param == "amount_to_capture"
    assert body_of(intents.retrieve(intent.id)) == before
    assert journal_for(emulator, "payment_intent.capture") == []
    assert intents.capture(intent.id, params={"amount_to_capture": 3000}).status == "succeeded"


@pytest.mark.parametrize("operation", ["capture", "cancel", "confirm", "update"])
def test_an_expansion_it_cannot_make_is_refused_before_anything_changes(
    client: stripe.StripeClient, emulator: StripeEmulator, operation: str
) -> None:
    # The emulator once applied the capture, journaled it, and only then refused the expansion.
    intents = client.v1.payment_intents
    intent = authorise(client, 3000) if operation in ("capture", "cancel") else create_intent(client, 3000)
    before = body_of(intents.retrieve(intent.id))
    journaled = journal_ops(emulator)
    call: dict[str, Callable[[], Any]] = {
        "capture": lambda: intents.capture(intent.id, params={"amount_to_capture": 1000, "expand": ["latest_cha"]}),
        "cancel": lambda: intents.cancel(intent.id, params={"expand": ["latest_cha"]}),
        "confirm": lambda: intents.confirm(intent.id, params={"payment_method": VISA, "expand": ["latest_cha"]}),
        "update": lambda: intents.update(intent.id, params={"metadata": {"a": "b"}, "expand": ["latest_cha"]}),
    }

    with pytest.raises(stripe.InvalidRequestError) as raised:
        call[operation]()

    assert (raised.value.http_status, raised.value.param) == (400, "expand")
    assert "latest_cha" in str(raised.value.user_message)
    assert body_of(intents.retrieve(intent.id)) == before
    assert journal_ops(emulator) == journaled


def test_create_with_an_expansion_it_cannot_make_creates_nothing(
    client: stripe.StripeClient, emulator: StripeEmulator
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        create_intent(client, 3000, expand=["latest_cha"])

    assert raised.value.param == "expand"
    assert journal_ops(emulator) == []
    assert client.v1.payment_intents.list().data == []


# -- cancel -------------------------------------------------------------------------------------


def test_cancel_from_requires_payment_method(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    intent = create_intent(client)
    emulator.advance_clock(120)

    canceled = client.v1.payment_intents.cancel(intent.id, params={"cancellation_reason": "requested_by_customer"})

    assert canceled.status == "canceled"
    assert canceled.cancellation_reason == "requested_by_customer"
    assert canceled.canceled_at is not None
    assert intent.created + 120 <= canceled.canceled_at <= intent.created + 121
    assert canceled.latest_charge is None
    assert journal_ops(emulator, "payment_intent.cancel") == ["payment_intent.cancel"]


def test_cancel_without_a_reason(client: stripe.StripeClient) -> None:
    canceled = client.v1.payment_intents.cancel(create_intent(client).id)

    assert canceled.status == "canceled"
    assert canceled.cancellation_reason is None
    assert canceled.canceled_at is not None


def test_cancel_from_requires_capture_releases_the_charge(
    client: stripe.StripeClient, emulator: StripeEmulator
) -> None:
    intents = client.v1.payment_intents
    intent = authorise(client, 4200)

    canceled = intents.cancel(intent.id, params={"cancellation_reason": "abandoned"})

    assert canceled.status == "canceled"
    assert canceled.cancellation_reason == "abandoned"
    assert canceled.canceled_at is not None
    assert emulator.clock.timestamp() - 1 <= canceled.canceled_at <= emulator.clock.timestamp()
    assert (canceled.amount_capturable, canceled.amount_received) == (0, 0)
    charge = charge_of(intents, intent.id)
    assert (charge.captured, charge.amount_captured, charge.amount_refunded, charge.refunded) == (
        False,
        0,
        4200,
        True,
    )


def test_cancel_with_a_reason_stripe_keeps_for_itself_is_refused(client: stripe.StripeClient) -> None:
    intent = create_intent(client)

    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.payment_intents.cancel(intent.id, params={"cancellation_reason": "automatic"})

    assert raised.value.param == "cancellation_reason"
    assert client.v1.payment_intents.retrieve(intent.id).status == "requires_payment_method"


# -- the wrong state ----------------------------------------------------------------------------


def _new(client: stripe.StripeClient) -> stripe.PaymentIntent:
    return create_intent(client)


def _captured(client: stripe.StripeClient) -> stripe.PaymentIntent:
    return client.v1.payment_intents.capture(authorise(client).id)


def _canceled(client: stripe.StripeClient) -> stripe.PaymentIntent:
    return client.v1.payment_intents.cancel(create_intent(client).id)


def _canceled_after_authorisation(client: stripe.StripeClient) -> stripe.PaymentIntent:
    return client.v1.payment_intents.cancel(authorise(client).id)


Setup = Callable[[stripe.StripeClient], stripe.PaymentIntent]
Action = Callable[[stripe.PaymentIntentService, str], Any]


def _capture(intents: stripe.PaymentIntentService, intent_id: str) -> Any:
    return intents.capture(intent_id)


def _cancel(intents: stripe.PaymentIntentService, intent_id: str) -> Any:
    return intents.cancel(intent_id)


def _confirm(intents: stripe.PaymentIntentService, intent_id: str) -> Any:
    return intents.confirm(intent_id, params={"payment_method": VISA})


@pytest.mark.parametrize(
    ("setup", "action", "status"),
    [
        pytest.param(_new, _capture, "requires_payment_method", id="capture-before-confirm"),
        pytest.param(_captured, _capture, "succeeded", id="capture-twice"),
        pytest.param(_captured, _cancel, "succeeded", id="cancel-after-capture"),
        pytest.param(_canceled, _confirm, "canceled", id="confirm-after-cancel"),
        pytest.param(_canceled_after_authorisation, _capture, "canceled", id="capture-after-cancel"),
        pytest.param(_canceled, _cancel, "canceled", id="cancel-twice"),
        pytest.param(_captured, _confirm, "succeeded", id="confirm-after-capture"),
    ],
)
def test_wrong_state_is_refused_with_the_payment_intent_embedded(
    client: stripe.StripeClient, emulator: StripeEmulator, setup: Setup, action: Action, status: str
) -> None:
    intent = setup(client)
    journal_before = emulator.journal_entries()

    with pytest.raises(stripe.InvalidRequestError) as raised:
        action(client.v1.payment_intents, intent.id)

    error = raised.value
    assert error.http_status == 400
    assert error.code == "payment_intent_unexpected_state"
    assert error.error is not None
    assert error.error.type == "invalid_request_error"
    embedded = error.error.payment_intent
    assert isinstance(embedded, stripe.PaymentIntent)
    assert (embedded.id, embedded.status) == (intent.id, status)
    assert client.v1.payment_intents.retrieve(intent.id).status == status
    assert emulator.journal_entries() == journal_before


# -- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", ["retrieve", "update", "confirm", "capture", "cancel"])
def test_unknown_id_is_404_resource_missing(client: stripe.StripeClient, operation: str) -> None:
    method = getattr(client.v1.payment_intents, operation)

    with pytest.raises(stripe.InvalidRequestError) as raised:
        method("pi_doesnotexist")

    assert raised.value.http_status == 404
    assert raised.value.code == "resource_missing"
    assert raised.value.param == "intent"
    assert "pi_doesnotexist" in str(raised.value.user_message)


@pytest.mark.parametrize("name", ["colour", "amount_in_cents"])
def test_unknown_parameter_is_refused_by_name(client: stripe.StripeClient, emulator: StripeEmulator, name: str) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        create_intent(client, 1000, **{name: "1"})

    assert raised.value.http_status == 400
    assert (raised.value.code, raised.value.param) == ("parameter_unknown", name)
    assert name in str(raised.value.user_message)
    assert emulator.journal_entries() == []


def test_unknown_parameter_on_confirm(client: stripe.StripeClient) -> None:
    intent = create_intent(client)
    params: Any = {"payment_method": VISA, "tip": "100"}

    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.payment_intents.confirm(intent.id, params=params)

    assert (raised.value.code, raised.value.param) == ("parameter_unknown", "tip")


@pytest.mark.parametrize("missing", ["amount", "currency"])
def test_missing_required_parameter(client: stripe.StripeClient, emulator: StripeEmulator, missing: str) -> None:
    params: Any = {"amount": 1000, "currency": "usd", "allowed_payment_method_types": ["card_present"]}
    params["capture_method"] = "manual"
    del params[missing]

    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.payment_intents.create(params=params)

    assert raised.value.http_status == 400
    assert (raised.value.code, raised.value.param) == ("parameter_missing", missing)
    assert emulator.journal_entries() == []


@pytest.mark.parametrize(("currency", "minimum"), [("usd", 50), ("eur", 50), ("gbp", 30)])
def test_amount_below_the_currency_minimum(client: stripe.StripeClient, currency: str, minimum: int) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        create_intent(client, minimum - 1, currency=currency)

    assert (raised.value.code, raised.value.param) == ("amount_too_small", "amount")
    assert create_intent(client, minimum, currency=currency).amount == minimum


@pytest.mark.parametrize("amount", ["ten", "10.5"])
def test_amount_must_be_an_integer(client: stripe.StripeClient, amount: str) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        create_intent(client, amount)  # type: ignore[arg-type]

    assert (raised.value.code, raised.value.param) == ("parameter_invalid_integer", "amount")


@pytest.mark.parametrize("currency", ["zzz", "us", "dollars"])
def test_bad_currency(client: stripe.StripeClient, emulator: StripeEmulator, currency: str) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        create_intent(client, 1000, currency=currency)

    assert raised.value.http_status == 400
    assert raised.value.param == "currency"
    assert emulator.journal_entries() == []


def test_currency_is_case_insensitive(client: stripe.StripeClient) -> None:
    assert create_intent(client, 1000, currency="EUR").currency == "eur"


@pytest.mark.parametrize(
    ("metadata", "param"),
    [
        ({f"k{n}": "v" for n in range(51)}, "metadata"),
        ({"k" * 41: "v"}, "metadata[" + "k" * 41 + "]"),
        ({"order_id": "v" * 501}, "metadata[order_id]"),
    ],
    ids=["51-keys", "key-41-chars", "value-501-chars"],
)
def test_metadata_over_the_limits_is_refused(
    client: stripe.StripeClient, emulator: StripeEmulator, metadata: dict[str, str], param: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        create_intent(client, 1000, metadata=metadata)

    assert raised.value.http_status == 400
    assert raised.value.param == param
    assert emulator.journal_entries() == []


def test_metadata_at_the_limits_is_accepted(client: stripe.StripeClient) -> None:
    metadata = {f"k{n:02d}": "v" for n in range(49)} | {"k" * 40: "v" * 500}

    intent = create_intent(client, 1000, metadata=metadata)

    assert intent.metadata.to_dict() == metadata


@pytest.mark.parametrize("capture_method", ["automatic", "automatic_async", None])
def test_card_present_needs_manual_capture(
    client: stripe.StripeClient, emulator: StripeEmulator, capture_method: str | None
) -> None:
    params: Any = {"amount": 1000, "currency": "usd", "allowed_payment_method_types": ["card_present"]}
    if capture_method is not None:
        params["capture_method"] = capture_method

    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.payment_intents.create(params=params)

    assert raised.value.http_status == 400
    assert raised.value.param == "capture_method"
    assert emulator.journal_entries() == []


# -- update -------------------------------------------------------------------------------------


def test_update_merges_metadata_and_unsets_with_an_empty_string(
    client: stripe.StripeClient, emulator: StripeEmulator
) -> None:
    intent = create_intent(client, 1000, metadata={"order_id": "A1", "lane": "3", "note": "x"})

    updated = client.v1.payment_intents.update(intent.id, params={"metadata": {"lane": "", "shift": "late"}})

    assert updated.metadata.to_dict() == {"order_id": "A1", "note": "x", "shift": "late"}
    assert client.v1.payment_intents.retrieve(intent.id).metadata.to_dict() == updated.metadata.to_dict()
    [entry] = journal_for(emulator, "payment_intent.update")
    assert entry.metadata == {"order_id": "A1", "note": "x", "shift": "late"}


def test_update_amount_before_confirmation_only(client: stripe.StripeClient) -> None:
    intents = client.v1.payment_intents
    intent = create_intent(client, 1000)
    assert intents.update(intent.id, params={"amount": 1500}).amount == 1500

    authorised = intents.confirm(intent.id, params={"payment_method": VISA})
    assert authorised.amount_capturable == 1500
    with pytest.raises(stripe.InvalidRequestError) as raised:
        intents.update(intent.id, params={"amount": 2000})

    assert raised.value.code == "payment_intent_unexpected_state"
    assert intents.retrieve(intent.id).amount == 1500


def test_update_refuses_metadata_over_the_limits(client: stripe.StripeClient) -> None:
    intent = create_intent(client, 1000, metadata={f"k{n}": "v" for n in range(50)})

    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.payment_intents.update(intent.id, params={"metadata": {"one_more": "v"}})

    assert raised.value.param == "metadata"
    assert len(client.v1.payment_intents.retrieve(intent.id).metadata.to_dict()) == 50


def test_update_may_swap_a_key_at_the_limit(client: stripe.StripeClient) -> None:
    intent = create_intent(client, 1000, metadata={f"k{n}": "v" for n in range(50)})

    updated = client.v1.payment_intents.update(intent.id, params={"metadata": {"k0": "", "new": "v"}})

    assert len(updated.metadata.to_dict()) == 50
    assert "k0" not in updated.metadata.to_dict()
    assert updated.metadata["new"] == "v"
