"""Every kind of body the emulator sends, against Stripe's OpenAPI description (structure), and every
status, type and code value in them, against the installed stripe package's type hints (values).

The OpenAPI subset drops enums (it is older than our stripe package), so values are checked against
stripe-python's `Literal` types instead, and the `object` names by equality.
"""

from __future__ import annotations

import inspect
import typing
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import stripe
from conftest import make_client
from support.emulator_fidelity import (
    INTERAC_PAYMENT,
    VISA,
    api,
    authorise,
    body_of,
    create_intent,
    error_body,
    settled,
    simulated_reader,
    wait_until,
)
from support.openapi import assert_matches_stripe_schema

from readerhost.sim.stripe_emulator import StripeEmulator, running_emulator
from readerhost.sim.stripe_emulator.testcards import READ_METHODS, TEST_CARDS

DAY = 24 * 3600
CANCELLATION_REASONS = ["abandoned", "duplicate", "fraudulent", "requested_by_customer"]
DECLINING_AMOUNTS = [2501, 2502, 2503, 2505, 2555, 2560, 2565, 2575]
# Error codes Stripe documents that are newer than the installed stripe package's `Literal` of codes.
NEWER_THAN_STRIPE_PYTHON = {
    # https://docs.stripe.com/changelog/endive/2026-09-30/removes-the-payment-method-types-parameter-from-payment-intents-and-setup-intents
    "payment_method_types_no_longer_supported",
}


@dataclass
class Exercise:
    """What one run through every feature of the emulator answered: bodies by kind, for checking."""

    url: str
    emulator: StripeEmulator
    client: stripe.StripeClient
    bodies: dict[str, list[tuple[str, dict[str, Any]]]] = field(default_factory=lambda: defaultdict(list))

    def keep(self, kind: str, schema: str, body: object) -> None:
        assert isinstance(body, dict), f"{kind}: not a JSON object: {body!r}"
        self.bodies[kind].append((schema, body))

    def intent(self, kind: str, intent: stripe.PaymentIntent, status: str) -> None:
        """Keep the PaymentIntent as the API answered it, and as retrieve answers with and without expansion."""
        assert intent.status == status, f"{kind}: {intent.status}"
        self.keep(kind, "payment_intent", body_of(intent))
        plain = api(self.url, "GET", f"/v1/payment_intents/{intent.id}")
        expanded = api(self.url, "GET", f"/v1/payment_intents/{intent.id}", params={"expand[]": "latest_charge"})
        assert (plain.status_code, expanded.status_code) == (200, 200)
        assert plain.json()["status"] == status
        self.keep(kind, "payment_intent", plain.json())
        self.keep(f"{kind}, expanded", "payment_intent", expanded.json())
        charge = expanded.json()["latest_charge"]
        if charge is not None:
            assert isinstance(charge, dict), "latest_charge was not expanded"
            self.keep(f"charge {charge['status']}", "charge", charge)

    def error(
        self, kind: str, call: Callable[..., object], status: int, *args: Any, **kwargs: Any
    ) -> stripe.StripeError:
        """Keep the error body of `call(*args, **kwargs)`, which must fail with `status`."""
        with pytest.raises(stripe.StripeError) as raised:
            call(*args, **kwargs)
        assert raised.value.http_status == status, f"{kind}: {raised.value.http_status} {raised.value}"
        self.keep(kind, "error", error_body(raised.value))
        return raised.value

    def raw_error(self, kind: str, answer: requests.Response, status: int) -> None:
        assert answer.status_code == status, f"{kind}: {answer.status_code} {answer.text}"
        self.keep(kind, "error", answer.json())

    def each(self, schema: str | None = None) -> Iterator[dict[str, Any]]:
        for bodies in self.bodies.values():
            for name, body in bodies:
                if schema is None or name == schema:
                    yield body


def exercise_everything(url: str, emulator: StripeEmulator) -> Exercise:
    client = make_client(url)
    intents = client.v1.payment_intents
    run = Exercise(url, emulator, client)

    # PaymentIntents in every status the emulator reaches, through every test card and read method.
    run.intent("requires_payment_method", create_intent(client), "requires_payment_method")
    run.intent("requires_confirmation", create_intent(client, payment_method=VISA), "requires_confirmation")
    for name, card in TEST_CARDS.items():
        if card.decline is not None:
            continue
        currency = "cad" if card.interac else "usd"
        kinds = INTERAC_PAYMENT if card.interac else {"allowed_payment_method_types": ["card_present"]}
        created = create_intent(client, 2500, currency=currency, **kinds)
        confirmed = intents.confirm(created.id, params={"payment_method": f"pm_card_present_{name}"})
        expected = "succeeded" if card.interac else "requires_capture"  # Interac is captured as it is authorised
        run.intent(expected, confirmed, expected)
    for read_method in READ_METHODS:
        run.intent("requires_capture", authorise(client, 1000, f"{VISA}__{read_method}"), "requires_capture")
    run.intent("succeeded", intents.capture(authorise(client, 3000).id), "succeeded")
    partial = intents.capture(authorise(client, 3000).id, params={"amount_to_capture": 1000})
    run.intent("succeeded", partial, "succeeded")
    for reason in CANCELLATION_REASONS:
        canceled = intents.cancel(create_intent(client).id, params={"cancellation_reason": reason})
        run.intent("canceled", canceled, "canceled")
    run.intent("canceled", intents.cancel(authorise(client).id), "canceled")
    expiring = authorise(client, 2000, "pm_card_present_mastercard")
    emulator.advance_clock(2 * DAY + 1)
    expired = intents.retrieve(expiring.id)
    assert expired.cancellation_reason == "automatic"
    run.intent("canceled", expired, "canceled")

    # Declines: by card and by amount; the PaymentIntent comes back with last_payment_error set.
    declines = [(f"pm_card_present_{name}", 2500) for name, card in TEST_CARDS.items() if card.decline]
    declines += [(VISA, amount) for amount in DECLINING_AMOUNTS]
    for payment_method, amount in declines:
        intent = create_intent(client, amount)
        run.error("402 decline", intents.confirm, 402, intent.id, params={"payment_method": payment_method})
        run.intent("requires_payment_method", intents.retrieve(intent.id), "requires_payment_method")

    # Every other error the API answers with.
    new = create_intent(client)
    run.error("400 unexpected_state", lambda: intents.capture(new.id), 400)
    run.error("400 unexpected_state", lambda: intents.confirm(intents.cancel(create_intent(client).id).id), 400)
    run.error(
        "400 invalid_request", lambda: intents.capture(authorise(client).id, params={"amount_to_capture": 5000}), 400
    )
    run.error("400 invalid_request", lambda: create_intent(client, 10), 400)
    run.error("400 invalid_request", lambda: create_intent(client, 1000, colour="red"), 400)
    run.error("400 invalid_request", lambda: create_intent(client, 1000, currency=None), 400)
    not_a_number: Any = "lots"
    run.error("400 invalid_request", lambda: create_intent(client, not_a_number), 400)
    run.error("400 invalid_request", lambda: create_intent(client, 1000, capture_method="automatic"), 400)
    run.error("400 invalid_request", lambda: create_intent(client, 1000, metadata={"k" * 41: "v"}), 400)
    run.error("400 invalid_request", lambda: intents.confirm(new.id, params={"payment_method": "pm_nothing"}), 400)
    run.error("400 invalid_request", lambda: intents.list(params={"limit": 0}), 400)
    run.error("400 invalid_request", lambda: intents.search(params={"query": "colour:'red'"}), 400)
    run.error(
        "400 invalid_request",
        lambda: intents.confirm(new.id, params={"payment_method": "pm_card_present_interac"}),
        400,
    )
    old_style: Any = {"amount": 1000, "currency": "usd", "payment_method_types": ["card_present"]}
    run.error("400 invalid_request", lambda: intents.create(params=old_style | {"capture_method": "manual"}), 400)
    create_intent(client, 1000, key="reused")
    run.error("400 idempotency_error", lambda: create_intent(client, 2000, key="reused"), 400)
    run.error("404 resource_missing", lambda: intents.retrieve("pi_nothing"), 404)
    run.raw_error("404 unrecognized URL", api(url, "GET", "/v1/disputes"), 404)
    run.raw_error("404 unrecognized URL", api(url, "PUT", "/v1/payment_intents"), 404)
    run.raw_error("401", api(url, "GET", "/v1/payment_intents", key=None), 401)
    run.raw_error("401", api(url, "GET", "/v1/payment_intents", key="sk_live_readerhost"), 401)

    rule = emulator.add_fault(
        {"method": "POST", "path": "/v1/payment_intents$", "action": "delay_during", "seconds": 1}
    )
    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(create_intent, client, 1000, key="in-flight")
        wait_until(lambda: rule.fired == 1, what="the first request to reach the emulator")
        run.error("409", lambda: create_intent(client, 1000, key="in-flight"), 409)
        first.result(timeout=10)

    emulator.add_fault({"method": "POST", "action": "rate_limit"})
    run.error("429", lambda: create_intent(client), 429)
    emulator.set_rate_limit(1)
    api(url, "GET", "/v1/payment_intents")
    run.raw_error("429", api(url, "GET", "/v1/payment_intents"), 429)
    emulator.set_rate_limit(None)
    for status in (500, 502, 503):
        emulator.add_fault({"method": "POST", "action": "error", "status": status})
        run.error(f"{status}", create_intent, status, client, key=f"fails-{status}")
    run.error("500", lambda: create_intent(client, key="fails-500"), 500)  # the saved 500, replayed

    exercise_readers(run)

    # Lists and search results, with and without expansion.
    every = api(url, "GET", "/v1/payment_intents", params={"limit": "100"})
    expanded = api(url, "GET", "/v1/payment_intents", params={"limit": "100", "expand[]": "data.latest_charge"})
    run.keep("list", "payment_intent_list", every.json())
    run.keep("list", "payment_intent_list", expanded.json())
    run.keep("list", "payment_intent_list", api(url, "GET", "/v1/payment_intents", params={"created": "1"}).json())
    assert len(every.json()["data"]) > 30
    for query in ("status:'requires_capture'", "status:'canceled' AND metadata['x']:'y'", "amount>0"):
        found = api(url, "GET", "/v1/payment_intents/search", params={"query": query, "limit": "5"})
        run.keep("search", "payment_intent_search_result", found.json())
    counted = api(url, "GET", "/v1/payment_intents/search", params={"query": "amount>0", "expand[]": "total_count"})
    run.keep("search", "payment_intent_search_result", counted.json())
    return run


def exercise_readers(run: Exercise) -> None:
    """Simulated readers in every action state, their list, a deletion, and every reader error."""
    client, emulator, url = run.client, run.emulator, run.url
    readers, helpers = client.v1.terminal.readers, client.v1.test_helpers.terminal.readers
    for code in ("simulated-wpe", "simulated-s700", "simulated-s710"):
        run.keep("reader", "terminal.reader", body_of(readers.create(params={"registration_code": code})))
    reader = simulated_reader(client, emulator)
    updated = readers.update(reader.id, params={"label": "Till", "metadata": {"lane": "1"}})
    run.keep("reader", "terminal.reader", body_of(updated))
    for number, status in (("4242424242424242", "requires_capture"), ("4000000000009995", "requires_payment_method")):
        intent = create_intent(client, 2500)
        run.keep(
            "reader",
            "terminal.reader",
            body_of(readers.process_payment_intent(reader.id, params={"payment_intent": intent.id})),
        )
        presented = helpers.present_payment_method(reader.id, params={"card_present": {"number": number}})
        run.keep("reader", "terminal.reader", body_of(presented))
        run.keep("reader", "terminal.reader", body_of(settled(client, emulator, reader.id)))
        run.intent(status, client.v1.payment_intents.retrieve(intent.id), status)
    waiting = create_intent(client)
    config: Any = {"enable_customer_cancellation": True, "skip_tipping": False, "tipping": {"amount_eligible": 900}}
    processing = readers.process_payment_intent(
        reader.id, params={"payment_intent": waiting.id, "process_config": config}
    )
    run.keep("reader", "terminal.reader", body_of(processing))
    emulator.configure_reader(reader.id, {"customer_cancels": True})
    run.keep("reader", "terminal.reader", body_of(readers.retrieve(reader.id)))
    cart: Any = {"currency": "usd", "line_items": [{"amount": 500, "description": "Tea", "quantity": 1}], "total": 500}
    run.keep(
        "reader",
        "terminal.reader",
        body_of(readers.set_reader_display(reader.id, params={"type": "cart", "cart": cart})),
    )
    run.keep("reader", "terminal.reader", body_of(readers.cancel_action(reader.id)))

    busy = simulated_reader(client, emulator, processing_s=60)
    readers.process_payment_intent(busy.id, params={"payment_intent": create_intent(client).id})
    helpers.present_payment_method(busy.id)
    run.error("400 terminal_reader", readers.cancel_action, 400, busy.id)
    run.error(
        "400 terminal_reader", readers.process_payment_intent, 400, busy.id, params={"payment_intent": waiting.id}
    )
    emulator.configure_reader(busy.id, {"processing_s": 0})
    assert emulator.wait_reader_action(busy.id)
    emulator.configure_reader(reader.id, {"online": False})
    run.keep("reader", "terminal.reader", body_of(readers.retrieve(reader.id)))
    run.error(
        "400 terminal_reader", readers.process_payment_intent, 400, reader.id, params={"payment_intent": waiting.id}
    )
    emulator.configure_reader(reader.id, {"online": True, "timeout": "after_apply"})
    run.error(
        "400 terminal_reader", readers.process_payment_intent, 400, reader.id, params={"payment_intent": waiting.id}
    )
    run.error(
        "400 terminal_reader",
        readers.process_payment_intent,
        400,
        reader.id,
        params={"payment_intent": authorise(client).id},
    )
    run.error("400 terminal_reader", helpers.present_payment_method, 400, busy.id)
    run.error("400 invalid_request", readers.create, 400, params={"registration_code": "nothing"})
    run.error("404 resource_missing", readers.retrieve, 404, "tmr_nothing")

    exercise_two_step_and_refunds(run, reader.id)
    exercise_locations(run)

    run.keep("reader list", "terminal_reader_list", api(url, "GET", "/v1/terminal/readers").json())
    run.keep(
        "reader list",
        "terminal_reader_list",
        api(url, "GET", "/v1/terminal/readers", params={"status": "offline"}).json(),
    )
    run.keep("reader deleted", "deleted_terminal.reader", api(url, "DELETE", f"/v1/terminal/readers/{busy.id}").json())


def exercise_locations(run: Exercise) -> None:
    """Terminal locations: made, read, listed, a reader registered in one, deleted, and their errors."""
    client, url = run.client, run.url
    locations = client.v1.terminal.locations
    address: Any = {"line1": "1 Main St", "city": "Springfield", "state": "IL", "postal_code": "62701", "country": "US"}
    front = locations.create(params={"display_name": "Front", "address": address, "metadata": {"site": "1"}})
    run.keep("location", "terminal.location", body_of(front))
    back = locations.create(params={"display_name": "Back", "address": {"country": "CA"}, "phone": "5550100"})
    run.keep("location", "terminal.location", body_of(back))
    run.keep("location", "terminal.location", body_of(locations.retrieve(front.id)))
    registered = client.v1.terminal.readers.create(params={"registration_code": "simulated-wpe", "location": front.id})
    run.keep("reader", "terminal.reader", body_of(registered))
    run.keep("location list", "terminal_location_list", api(url, "GET", "/v1/terminal/locations").json())
    page = api(url, "GET", "/v1/terminal/locations", params={"limit": "1", "starting_after": back.id})
    run.keep("location list", "terminal_location_list", page.json())
    run.error("400 invalid_request", locations.create, 400, params={"address": {"country": "US"}})
    run.error("400 invalid_request", locations.create, 400, params={"display_name": "No address"})
    run.error("400 invalid_request", locations.create, 400, params={"display_name": "X", "address": {"city": "Y"}})
    run.error(
        "400 invalid_request",
        client.v1.terminal.readers.create,
        400,
        params={"registration_code": "simulated-wpe", "location": "tml_nothing"},
    )
    run.error("404 resource_missing", locations.retrieve, 404, "tml_nothing")
    deleted = api(url, "DELETE", f"/v1/terminal/locations/{back.id}")
    run.keep("location deleted", "deleted_terminal.location", deleted.json())


def exercise_two_step_and_refunds(run: Exercise, reader_id: str) -> None:
    """collect_payment_method and confirm_payment_intent (approved, declined, canceled by the customer, tipped),
    refunds online and in person, and their errors."""
    client, emulator, url = run.client, run.emulator, run.url
    readers, helpers = client.v1.terminal.readers, client.v1.test_helpers.terminal.readers
    for number, tip in (("4242424242424242", 200), ("4000000000009995", 0), ("4001007020000002", 0)):
        intent = create_intent(client, 2500)
        config: Any = {"enable_customer_cancellation": True, "skip_tipping": False, "allow_redisplay": "limited"}
        run.keep(
            "reader",
            "terminal.reader",
            body_of(
                readers.collect_payment_method(
                    reader_id, params={"payment_intent": intent.id, "collect_config": config}
                )
            ),
        )
        params: Any = {"card_present": {"number": number}, "amount_tip": tip}
        run.keep("reader", "terminal.reader", body_of(helpers.present_payment_method(reader_id, params=params)))
        run.keep("reader", "terminal.reader", body_of(settled(client, emulator, reader_id)))
        confirm_config: Any = {"return_url": "https://example.com/done"}
        confirming = readers.confirm_payment_intent(
            reader_id, params={"payment_intent": intent.id, "confirm_config": confirm_config}
        )
        run.keep("reader", "terminal.reader", body_of(confirming))
        run.keep("reader", "terminal.reader", body_of(settled(client, emulator, reader_id)))
        status = "requires_payment_method" if number == "4000000000009995" else "requires_capture"
        run.intent(status, client.v1.payment_intents.retrieve(intent.id), status)
    canceling = create_intent(client)
    readers.collect_payment_method(
        reader_id, params={"payment_intent": canceling.id, "collect_config": {"enable_customer_cancellation": True}}
    )
    emulator.configure_reader(reader_id, {"customer_cancels": True})
    run.keep("reader", "terminal.reader", body_of(readers.retrieve(reader_id)))
    run.error(
        "400 terminal_reader",
        readers.confirm_payment_intent,
        400,
        reader_id,
        params={"payment_intent": canceling.id},
    )

    # Refunds online: partial, the rest, and every refusal.
    paid = client.v1.payment_intents.capture(authorise(client, 3000).id)
    run.keep("refund", "refund", body_of(client.v1.refunds.create(params={"payment_intent": paid.id, "amount": 1000})))
    rest = client.v1.refunds.create(params={"payment_intent": paid.id, "reason": "duplicate", "metadata": {"k": "v"}})
    run.keep("refund", "refund", body_of(rest))
    run.keep("refund", "refund", body_of(client.v1.refunds.retrieve(rest.id)))
    run.intent("succeeded", client.v1.payment_intents.retrieve(paid.id), "succeeded")
    refunds = client.v1.refunds
    run.error("400 refund", refunds.create, 400, params={"payment_intent": paid.id})
    other = client.v1.payment_intents.capture(authorise(client, 3000).id)
    run.error("400 refund", refunds.create, 400, params={"payment_intent": other.id, "amount": 9000})
    run.error("400 refund", refunds.create, 400, params={"payment_intent": authorise(client).id})
    run.error("400 refund", refunds.create, 400, params={"payment_intent": create_intent(client).id})
    run.error("400 refund", refunds.create, 400, params={"payment_intent": "pi_nothing"})
    run.error("404 resource_missing", refunds.retrieve, 404, "re_nothing")

    # A payment that may take Interac, its cards held through their own capture option (readerhost's).
    for method in ("manual", "manual_preferred"):
        held: Any = {"card_present": {"capture_method": method}}
        both = create_intent(
            client, 2000, currency="cad", allowed_payment_method_types=["card_present", "interac_present"],
            capture_method="automatic", payment_method_options=held,
        )  # fmt: skip
        confirmed = client.v1.payment_intents.confirm(both.id, params={"payment_method": "pm_card_present_visa"})
        run.intent("requires_capture", confirmed, "requires_capture")

    # Interac: paid and refunded in person.
    interac = create_intent(client, 4000, currency="cad", **INTERAC_PAYMENT)
    readers.process_payment_intent(reader_id, params={"payment_intent": interac.id})
    helpers.present_payment_method(reader_id, params={"type": "interac_present"})
    settled(client, emulator, reader_id)
    run.intent("succeeded", client.v1.payment_intents.retrieve(interac.id), "succeeded")
    run.error("400 refund", refunds.create, 400, params={"payment_intent": interac.id})
    run.error("400 refund", readers.refund_payment, 400, reader_id, params={"payment_intent": paid.id})
    waiting = readers.refund_payment(
        reader_id,
        params={
            "payment_intent": interac.id,
            "amount": 1000,
            "metadata": {"k": "v"},
            "refund_payment_config": {"enable_customer_cancellation": True},
        },
    )
    run.keep("reader", "terminal.reader", body_of(waiting))
    helpers.present_payment_method(reader_id, params={"type": "interac_present"})
    run.keep("reader", "terminal.reader", body_of(settled(client, emulator, reader_id)))
    run.keep("refund list", "refund_list", api(url, "GET", "/v1/refunds").json())
    run.keep("refund list", "refund_list", api(url, "GET", "/v1/refunds", params={"payment_intent": paid.id}).json())


@pytest.fixture(scope="module")
def exercised() -> Iterator[Exercise]:
    """One emulator taken through every feature, for all the checks in this module."""
    with running_emulator(search_lag_s=0) as (url, emulator):
        yield exercise_everything(url, emulator)


# -- structure: Stripe's OpenAPI description ------------------------------------------------------

KINDS = [
    "requires_payment_method",
    "requires_payment_method, expanded",
    "requires_confirmation",
    "requires_confirmation, expanded",
    "requires_capture",
    "requires_capture, expanded",
    "succeeded",
    "succeeded, expanded",
    "canceled",
    "canceled, expanded",
    "charge succeeded",
    "charge failed",
    "list",
    "search",
    "402 decline",
    "400 unexpected_state",
    "400 invalid_request",
    "400 idempotency_error",
    "404 resource_missing",
    "404 unrecognized URL",
    "401",
    "409",
    "429",
    "500",
    "502",
    "503",
    "reader",
    "reader list",
    "reader deleted",
    "400 terminal_reader",
    "refund",
    "refund list",
    "400 refund",
    "location",
    "location list",
    "location deleted",
]


@pytest.mark.parametrize("kind", KINDS)
def test_bodies_match_stripes_openapi_description(exercised: Exercise, kind: str) -> None:
    bodies = exercised.bodies.get(kind)
    assert bodies, f"the exercise produced no {kind!r} body"

    for schema, body in bodies:
        assert_matches_stripe_schema(body, schema)


def test_every_kind_of_body_is_checked(exercised: Exercise) -> None:
    assert sorted(exercised.bodies) == sorted(KINDS)


# -- values: the installed stripe package's type hints ------------------------------------------


def hint(cls: type, name: str) -> Any:
    """The type hint of one field of a stripe-python class, with its forward references resolved.

    `typing.get_type_hints(cls)` on a whole resource class fails on names stripe imports only for
    type checkers, so the one annotation is evaluated alone, in its class's module and namespace.
    """
    for klass in cls.__mro__:
        annotations = inspect.get_annotations(klass)
        if name in annotations:
            holder = type(klass.__name__, (), {"__annotations__": {name: annotations[name]}})
            holder.__module__ = klass.__module__
            return typing.get_type_hints(holder, localns=dict(vars(klass)))[name]
    raise KeyError(f"{cls.__qualname__} has no field {name!r}")


def literal_values(annotation: Any) -> set[object] | None:
    """The values of every `Literal` in the annotation (through Optional and Union), or None if none."""
    if typing.get_origin(annotation) is typing.Literal:
        return set(typing.get_args(annotation))
    found: set[object] | None = None
    for argument in typing.get_args(annotation):
        values = literal_values(argument)
        if values is not None:
            found = (found or set()) | values
    return found


def plain_types(annotation: Any) -> tuple[type, ...]:
    if isinstance(annotation, type):
        return (annotation,)
    return tuple(kind for argument in typing.get_args(annotation) for kind in plain_types(argument))


def test_hint_helpers_see_literals_and_plain_types() -> None:
    status = hint(stripe.PaymentIntent, "status")
    assert literal_values(status) is not None
    assert "requires_capture" in (literal_values(status) or set())
    assert "requires_reader" not in (literal_values(status) or set())
    assert literal_values(hint(stripe.PaymentIntent.LastPaymentError, "decline_code")) is None
    assert str in plain_types(hint(stripe.PaymentIntent.LastPaymentError, "decline_code"))


def intents_in(run: Exercise) -> Iterator[dict[str, Any]]:
    for body in run.each("payment_intent"):
        yield body
    for body in run.each("error"):
        if "payment_intent" in body["error"]:
            yield body["error"]["payment_intent"]
    for schema in ("payment_intent_list", "payment_intent_search_result"):
        for body in run.each(schema):
            yield from body["data"]


def charges_in(run: Exercise) -> Iterator[dict[str, Any]]:
    yield from run.each("charge")
    for intent in intents_in(run):
        if isinstance(intent.get("latest_charge"), dict):
            yield intent["latest_charge"]


def errors_in(run: Exercise) -> Iterator[dict[str, Any]]:
    for body in run.each("error"):
        yield body["error"]
    for intent in intents_in(run):
        if intent["last_payment_error"] is not None:
            yield intent["last_payment_error"]


def payment_methods_in(run: Exercise) -> Iterator[dict[str, Any]]:
    for error in errors_in(run):
        if isinstance(error.get("payment_method"), dict):
            yield error["payment_method"]


def card_details_in(run: Exercise, kind: str) -> Iterator[dict[str, Any]]:
    for charge in charges_in(run):
        details = charge["payment_method_details"]
        if details["type"] == kind:
            yield details[kind]


def readers_in(run: Exercise) -> Iterator[dict[str, Any]]:
    yield from run.each("terminal.reader")
    for body in run.each("terminal_reader_list"):
        yield from body["data"]


def reader_actions_in(run: Exercise) -> Iterator[dict[str, Any]]:
    for reader in readers_in(run):
        if reader["action"] is not None:
            yield reader["action"]


def refunds_in(run: Exercise) -> Iterator[dict[str, Any]]:
    yield from run.each("refund")
    for body in run.each("refund_list"):
        yield from body["data"]


def receipts_in(run: Exercise) -> Iterator[dict[str, Any]]:
    for kind in ("card_present", "interac_present"):
        for details in card_details_in(run, kind):
            yield details["receipt"]


Details = stripe.Charge.PaymentMethodDetails
Reader = stripe.terminal.Reader
# (what, the stripe-python class and field that types it, how to find the values in the exercise)
FIELDS: list[tuple[str, type, str, Callable[[Exercise], Iterator[Any]]]] = [
    ("PaymentIntent.status", stripe.PaymentIntent, "status", lambda r: (i["status"] for i in intents_in(r))),
    (
        "PaymentIntent.cancellation_reason",
        stripe.PaymentIntent,
        "cancellation_reason",
        lambda r: (i["cancellation_reason"] for i in intents_in(r)),
    ),
    (
        "PaymentIntent.capture_method",
        stripe.PaymentIntent,
        "capture_method",
        lambda r: (i["capture_method"] for i in intents_in(r)),
    ),
    (
        "PaymentIntent.payment_method_options.card_present.capture_method",
        stripe.PaymentIntent.PaymentMethodOptions.CardPresent,
        "capture_method",
        lambda r: (i["payment_method_options"].get("card_present", {}).get("capture_method") for i in intents_in(r)),
    ),
    (
        "PaymentIntent.confirmation_method",
        stripe.PaymentIntent,
        "confirmation_method",
        lambda r: (i["confirmation_method"] for i in intents_in(r)),
    ),
    ("error.type", stripe.PaymentIntent.LastPaymentError, "type", lambda r: (e["type"] for e in errors_in(r))),
    ("error.code", stripe.PaymentIntent.LastPaymentError, "code", lambda r: (e.get("code") for e in errors_in(r))),
    (
        "error.decline_code",
        stripe.PaymentIntent.LastPaymentError,
        "decline_code",
        lambda r: (e.get("decline_code") for e in errors_in(r)),
    ),
    ("PaymentMethod.type", stripe.PaymentMethod, "type", lambda r: (m["type"] for m in payment_methods_in(r))),
    ("Charge.status", stripe.Charge, "status", lambda r: (c["status"] for c in charges_in(r))),
    ("Charge.outcome.type", stripe.Charge.Outcome, "type", lambda r: (c["outcome"]["type"] for c in charges_in(r))),
    (
        "Charge.outcome.network_status",
        stripe.Charge.Outcome,
        "network_status",
        lambda r: (c["outcome"]["network_status"] for c in charges_in(r)),
    ),
    (
        "Charge.outcome.risk_level",
        stripe.Charge.Outcome,
        "risk_level",
        lambda r: (c["outcome"]["risk_level"] for c in charges_in(r)),
    ),
    (
        "Charge.payment_method_details.type",
        Details,
        "type",
        lambda r: (c["payment_method_details"]["type"] for c in charges_in(r)),
    ),
    (
        "card_present.read_method",
        Details.CardPresent,
        "read_method",
        lambda r: (d["read_method"] for d in card_details_in(r, "card_present")),
    ),
    (
        "card_present.receipt.account_type",
        Details.CardPresent.Receipt,
        "account_type",
        lambda r: (d["receipt"]["account_type"] for d in card_details_in(r, "card_present")),
    ),
    (
        "interac_present.read_method",
        Details.InteracPresent,
        "read_method",
        lambda r: (d["read_method"] for d in card_details_in(r, "interac_present")),
    ),
    (
        "interac_present.receipt.account_type",
        Details.InteracPresent.Receipt,
        "account_type",
        lambda r: (d["receipt"]["account_type"] for d in card_details_in(r, "interac_present")),
    ),
    ("Reader.device_type", Reader, "device_type", lambda r: (x["device_type"] for x in readers_in(r))),
    ("Reader.status", Reader, "status", lambda r: (x["status"] for x in readers_in(r))),
    ("Reader.action.status", Reader.Action, "status", lambda r: (a["status"] for a in reader_actions_in(r))),
    ("Reader.action.type", Reader.Action, "type", lambda r: (a["type"] for a in reader_actions_in(r))),
    (
        "Reader.action.failure_code",
        Reader.Action,
        "failure_code",
        lambda r: (a["failure_code"] for a in reader_actions_in(r)),
    ),
    ("Refund.status", stripe.Refund, "status", lambda r: (x["status"] for x in refunds_in(r))),
    ("Refund.reason", stripe.Refund, "reason", lambda r: (x["reason"] for x in refunds_in(r))),
    (
        "Reader.action.api_error.type",
        Reader.Action.ApiError,
        "type",
        lambda r: (a["api_error"]["type"] for a in reader_actions_in(r) if a.get("api_error")),
    ),
    (
        "Reader.action.api_error.code",
        Reader.Action.ApiError,
        "code",
        lambda r: (a["api_error"]["code"] for a in reader_actions_in(r) if a.get("api_error")),
    ),
    (
        "collected PaymentMethod.allow_redisplay",
        stripe.PaymentMethod,
        "allow_redisplay",
        lambda r: (m["allow_redisplay"] for m in collected_payment_methods_in(r)),
    ),
    (
        "Reader.action.set_reader_display.type",
        Reader.Action.SetReaderDisplay,
        "type",
        lambda r: (a["set_reader_display"]["type"] for a in reader_actions_in(r) if "set_reader_display" in a),
    ),
]


@pytest.mark.parametrize(("what", "cls", "name", "values_of"), FIELDS, ids=[entry[0] for entry in FIELDS])
def test_values_are_known_to_stripe_python(
    exercised: Exercise, what: str, cls: type, name: str, values_of: Callable[[Exercise], Iterator[Any]]
) -> None:
    values = {value for value in values_of(exercised) if value is not None}
    assert values, f"the exercise produced no value of {what}"
    annotation = hint(cls, name)
    allowed = literal_values(annotation)

    if allowed is None:  # typed as a plain string by stripe-python: no values to check against
        assert all(isinstance(value, plain_types(annotation)) for value in values), values
    else:
        unknown = values - allowed - NEWER_THAN_STRIPE_PYTHON
        assert not unknown, f"{what}: {sorted(unknown)} not in {cls.__qualname__}.{name}"


def collected_payment_methods_in(run: Exercise) -> Iterator[dict[str, Any]]:
    for action in reader_actions_in(run):
        method = action.get("collect_payment_method", {}).get("payment_method")
        if method is not None:
            yield method


# Stripe documents these values of a receipt's cardholder_verification_method, typed as a plain string by
# stripe-python (stripe/_charge.py, CardPresent.Receipt.cardholder_verification_method).
CARDHOLDER_VERIFICATION_METHODS = {
    "approval",
    "failure",
    "none",
    "offline_pin",
    "offline_pin_and_signature",
    "online_pin",
    "signature",
}


def test_receipt_verification_methods_are_stripes(exercised: Exercise) -> None:
    methods = {receipt["cardholder_verification_method"] for receipt in receipts_in(exercised)}
    doc = (stripe.Charge.PaymentMethodDetails.CardPresent.Receipt.__doc__ or "") + str(
        inspect.getsource(stripe.Charge.PaymentMethodDetails.CardPresent.Receipt)
    )

    assert {"none", "online_pin", "offline_pin", "signature"} <= methods <= CARDHOLDER_VERIFICATION_METHODS
    assert all(f"`{method}`" in doc for method in CARDHOLDER_VERIFICATION_METHODS)


def field_names(cls: type) -> set[str]:
    """Every field stripe-python types on the class (its annotations, through its bases)."""
    return {name for klass in cls.__mro__ for name in inspect.get_annotations(klass)} - {"OBJECT_NAME"}


def objects_of_newer_shapes(run: Exercise) -> Iterator[tuple[str, dict[str, Any], type]]:
    """The objects newer than the 2023 OpenAPI description, each with the stripe-python class that types it."""
    action_parts = {
        "api_error": Reader.Action.ApiError,
        "collect_payment_method": Reader.Action.CollectPaymentMethod,
        "confirm_payment_intent": Reader.Action.ConfirmPaymentIntent,
        "process_payment_intent": Reader.Action.ProcessPaymentIntent,
        "refund_payment": Reader.Action.RefundPayment,
    }
    configs = {
        "collect_config": Reader.Action.CollectPaymentMethod.CollectConfig,
        "confirm_config": Reader.Action.ConfirmPaymentIntent.ConfirmConfig,
        "process_config": Reader.Action.ProcessPaymentIntent.ProcessConfig,
        "refund_payment_config": Reader.Action.RefundPayment.RefundPaymentConfig,
    }
    for action in reader_actions_in(run):
        yield "Reader.action", action, Reader.Action
        for name, cls in action_parts.items():
            part = action.get(name)
            if part is None:
                continue
            yield f"Reader.action.{name}", part, cls
            for config_name, config_cls in configs.items():
                if config_name in part:
                    yield f"Reader.action.{name}.{config_name}", part[config_name], config_cls
    for method in collected_payment_methods_in(run):
        yield "collected PaymentMethod", method, stripe.PaymentMethod
        yield "collected PaymentMethod.card_present", method["card_present"], stripe.PaymentMethod.CardPresent
    for refund in refunds_in(run):
        yield "Refund", refund, stripe.Refund
    for location in run.each("terminal.location"):
        yield "Location", location, stripe.terminal.Location
        yield "Location.address", location["address"], stripe.terminal.Location.Address
    for details in card_details_in(run, "card_present"):
        yield "card_present details", details, Details.CardPresent
        yield "card_present receipt", details["receipt"], Details.CardPresent.Receipt
    for details in card_details_in(run, "interac_present"):
        yield "interac_present details", details, Details.InteracPresent
        yield "interac_present receipt", details["receipt"], Details.InteracPresent.Receipt


def test_newer_objects_have_only_fields_stripe_python_knows(exercised: Exercise) -> None:
    seen: set[str] = set()
    for what, body, cls in objects_of_newer_shapes(exercised):
        seen.add(what)
        unknown = set(body) - field_names(cls)
        assert not unknown, f"{what}: {sorted(unknown)} not fields of {cls.__qualname__}"

    assert {
        "Reader.action.api_error",
        "Reader.action.collect_payment_method.collect_config",
        "Reader.action.confirm_payment_intent.confirm_config",
        "Reader.action.refund_payment.refund_payment_config",
        "collected PaymentMethod.card_present",
        "Refund",
        "card_present receipt",
        "interac_present receipt",
        "Location",
    } <= seen


def test_the_exercise_reaches_every_value_it_should(exercised: Exercise) -> None:
    statuses = {intent["status"] for intent in intents_in(exercised)}
    reasons = {intent["cancellation_reason"] for intent in intents_in(exercised)} - {None}
    read_methods = {details["read_method"] for details in card_details_in(exercised, "card_present")}
    decline_codes = {error.get("decline_code") for error in errors_in(exercised)} - {None}

    assert statuses == {"requires_payment_method", "requires_confirmation", "requires_capture", "succeeded", "canceled"}
    assert reasons == {*CANCELLATION_REASONS, "automatic"}
    assert read_methods == set(READ_METHODS)
    assert {"call_issuer", "pin_try_exceeded", "insufficient_funds", "expired_card"} <= decline_codes


def test_codes_newer_than_stripe_python_are_still_unknown_to_it() -> None:
    # If stripe-python learns one of these codes, drop it from NEWER_THAN_STRIPE_PYTHON.
    known = literal_values(hint(stripe.PaymentIntent.LastPaymentError, "code")) or set()
    assert not NEWER_THAN_STRIPE_PYTHON & known


@pytest.mark.parametrize(
    ("schema", "cls", "extract"),
    [
        ("payment_intent", stripe.PaymentIntent, lambda body: [body]),
        ("charge", stripe.Charge, lambda body: [body]),
        ("payment_intent_list", stripe.ListObject, lambda body: [body]),
        ("payment_intent_search_result", stripe.SearchResultObject, lambda body: [body]),
    ],
)
def test_object_names(
    exercised: Exercise, schema: str, cls: type, extract: Callable[[dict[str, Any]], list[dict[str, Any]]]
) -> None:
    expected = getattr(cls, "OBJECT_NAME", None)
    assert expected in {"payment_intent", "charge", "list", "search_result"}
    if schema in ("payment_intent", "charge"):
        assert literal_values(hint(cls, "object")) == {expected}

    names = {item["object"] for body in exercised.each(schema) for item in extract(body)}

    assert names == {expected}


def test_reader_object_names_and_values_reached(exercised: Exercise) -> None:
    assert literal_values(hint(Reader, "object")) == {Reader.OBJECT_NAME} == {"terminal.reader"}
    assert {reader["object"] for reader in readers_in(exercised)} == {"terminal.reader"}
    assert {body["object"] for body in exercised.each("terminal_reader_list")} == {"list"}
    assert [body["deleted"] for body in exercised.each("deleted_terminal.reader")] == [True]
    actions = list(reader_actions_in(exercised))
    assert {action["status"] for action in actions} == {"in_progress", "succeeded", "failed"}
    assert {action["type"] for action in actions} == {
        "process_payment_intent",
        "collect_payment_method",
        "confirm_payment_intent",
        "refund_payment",
        "set_reader_display",
    }
    assert {refund["reason"] for refund in refunds_in(exercised)} == {None, "duplicate"}
    assert literal_values(hint(stripe.Refund, "object")) == {"refund"}
    assert {refund["object"] for refund in refunds_in(exercised)} == {"refund"}
    assert {body["object"] for body in exercised.each("refund_list")} == {"list"}
    assert {action["failure_code"] for action in actions} == {None, "card_declined", "customer_canceled"}
    assert {reader["device_type"] for reader in readers_in(exercised)} == {
        "simulated_wisepos_e",
        "simulated_stripe_s700",
        "simulated_stripe_s710",
    }
    codes = {error["code"] for error in errors_in(exercised) if error.get("code", "").startswith("terminal_")}
    assert codes == {"terminal_reader_busy", "terminal_reader_offline", "terminal_reader_timeout"}
    assert "intent_invalid_state" in {error.get("code") for error in errors_in(exercised)}


def test_nested_object_names(exercised: Exercise) -> None:
    assert {intent["object"] for intent in intents_in(exercised)} == {"payment_intent"}
    assert {charge["object"] for charge in charges_in(exercised)} == {"charge"}
    methods = list(payment_methods_in(exercised))
    assert methods
    assert {method["object"] for method in methods} == literal_values(hint(stripe.PaymentMethod, "object"))


def test_card_present_payment_method_types_pair_with_charge_details(exercised: Exercise) -> None:
    for error in errors_in(exercised):
        method = error.get("payment_method")
        if isinstance(method, dict):
            assert method["type"] in method, f"the payment method has no {method['type']} hash: {method}"


def test_stripe_python_parses_every_body(exercised: Exercise) -> None:
    # What the library builds from the bodies: the right classes, no KeyError on typed fields.
    for body in exercised.each("payment_intent"):
        intent = stripe.PaymentIntent.construct_from(body, "sk_test_x")
        assert isinstance(intent, stripe.PaymentIntent)
        if isinstance(body["latest_charge"], dict):
            assert isinstance(intent.latest_charge, stripe.Charge)
    for body in exercised.each("terminal.reader"):
        reader = Reader.construct_from(body, "sk_test_x")
        assert isinstance(reader, Reader)
        if body["action"] is not None:
            assert isinstance(reader.action, Reader.Action)
