"""Listing (newest first, created filters, cursors, auto-paging) and search (query language, lag)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import stripe
from conftest import TEST_KEY
from support.emulator_fidelity import VISA, api, authorise, body_of, create_intent

from readerhost.sim.stripe_emulator import StripeEmulator
from readerhost.sim.stripe_emulator.preload import fleet_history


def spread(client: stripe.StripeClient, emulator: StripeEmulator, count: int, step_s: int = 100) -> list[str]:
    """`count` PaymentIntents created `step_s` apart on the emulator's clock, oldest first."""
    ids = []
    for n in range(count):
        if n:
            emulator.advance_clock(step_s)
        ids.append(create_intent(client, 1000 + n * 100).id)
    return ids


def listed(intents: stripe.PaymentIntentService, **params: Any) -> stripe.ListObject[stripe.PaymentIntent]:
    query: Any = params
    return intents.list(params=query)


def ids_of(
    page: stripe.ListObject[stripe.PaymentIntent] | stripe.SearchResultObject[stripe.PaymentIntent],
) -> list[str]:
    return [intent.id for intent in page.data]


# -- list ---------------------------------------------------------------------------------------


def test_list_is_newest_first(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    ids = spread(client, emulator, 4)

    page = listed(client.v1.payment_intents)

    assert (body_of(page)["object"], body_of(page)["url"]) == ("list", "/v1/payment_intents")
    assert ids_of(page) == ids[::-1]
    assert page.has_more is False
    created = [intent.created for intent in page.data]
    assert created == sorted(created, reverse=True)


def test_list_orders_intents_created_in_the_same_second_newest_first(client: stripe.StripeClient) -> None:
    ids = [create_intent(client).id for _ in range(5)]

    assert ids_of(listed(client.v1.payment_intents)) == ids[::-1]


def test_list_default_limit_is_ten(client: stripe.StripeClient) -> None:
    for _ in range(11):
        create_intent(client)

    page = listed(client.v1.payment_intents)

    assert len(page.data) == 10
    assert page.has_more is True


@pytest.mark.parametrize("limit", [1, 3, 100])
def test_list_limit_within_range(client: stripe.StripeClient, limit: int) -> None:
    ids = [create_intent(client).id for _ in range(4)]

    page = listed(client.v1.payment_intents, limit=limit)

    assert ids_of(page) == ids[::-1][:limit]
    assert page.has_more is (limit < 4)


@pytest.mark.parametrize("limit", [0, 101, -1])
def test_list_limit_out_of_range_is_refused(client: stripe.StripeClient, limit: int) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        listed(client.v1.payment_intents, limit=limit)

    assert raised.value.http_status == 400
    assert raised.value.param == "limit"


def test_list_filters_by_created(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    intents = client.v1.payment_intents
    ids = spread(client, emulator, 5, step_s=100)
    times = [intents.retrieve(intent_id).created for intent_id in ids]
    assert all(later - earlier >= 100 for earlier, later in itertools.pairwise(times))

    assert ids_of(listed(intents, created={"gte": times[1], "lt": times[3]})) == [ids[2], ids[1]]
    assert ids_of(listed(intents, created={"gt": times[1], "lte": times[3]})) == [ids[3], ids[2]]
    assert ids_of(listed(intents, created={"gte": times[4]})) == [ids[4]]
    assert ids_of(listed(intents, created={"lt": times[0]})) == []
    assert ids_of(listed(intents, created=times[2])) == [ids[2]]


def test_list_refuses_an_unknown_created_comparison(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        listed(client.v1.payment_intents, created={"after": 1})

    assert raised.value.code == "parameter_unknown"


def test_list_refuses_a_status_filter(client: stripe.StripeClient) -> None:
    # Stripe's list cannot filter by status (https://docs.stripe.com/api/payment_intents/list): that is search's job.
    with pytest.raises(stripe.InvalidRequestError) as raised:
        listed(client.v1.payment_intents, status="requires_capture")

    assert (raised.value.code, raised.value.param) == ("parameter_unknown", "status")


def test_list_pages_with_cursors(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    intents = client.v1.payment_intents
    p1, p2, p3, p4, p5 = spread(client, emulator, 5)

    first = listed(intents, limit=2)
    second = listed(intents, limit=2, starting_after=first.data[-1].id)
    third = listed(intents, limit=2, starting_after=second.data[-1].id)

    assert (ids_of(first), first.has_more) == ([p5, p4], True)
    assert (ids_of(second), second.has_more) == ([p3, p2], True)
    assert (ids_of(third), third.has_more) == ([p1], False)

    back = listed(intents, limit=2, ending_before=p1)
    assert (ids_of(back), back.has_more) == ([p3, p2], True)
    front = listed(intents, limit=2, ending_before=p3)
    assert (ids_of(front), front.has_more) == ([p5, p4], False)
    assert ids_of(listed(intents, ending_before=p5)) == []


def test_list_cursor_must_exist_and_be_alone(client: stripe.StripeClient) -> None:
    intents = client.v1.payment_intents
    a, b = create_intent(client).id, create_intent(client).id

    with pytest.raises(stripe.InvalidRequestError) as missing:
        listed(intents, starting_after="pi_gone")
    with pytest.raises(stripe.InvalidRequestError) as both:
        listed(intents, starting_after=a, ending_before=b)

    assert (missing.value.code, missing.value.param) == ("resource_missing", "starting_after")
    assert both.value.http_status == 400


def test_auto_paging_iter_returns_every_intent_once(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    ids = spread(client, emulator, 7, step_s=1)

    seen = [intent.id for intent in listed(client.v1.payment_intents, limit=3).auto_paging_iter()]

    assert seen == ids[::-1]
    assert len(set(seen)) == 7


def test_auto_paging_iter_within_a_created_window(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    ids = spread(client, emulator, 8, step_s=10)
    start = client.v1.payment_intents.retrieve(ids[2]).created

    page = listed(client.v1.payment_intents, limit=2, created={"gte": start, "lt": start + 50})
    seen = [intent.id for intent in page.auto_paging_iter()]

    assert seen == ids[2:7][::-1]


def test_list_expands_latest_charge(client: stripe.StripeClient) -> None:
    authorised = authorise(client, 1000)
    fresh = create_intent(client, 2000)

    page = listed(client.v1.payment_intents, expand=["data.latest_charge"])
    plain = listed(client.v1.payment_intents)

    by_id = {intent.id: intent for intent in page.data}
    charge = by_id[authorised.id].latest_charge
    assert isinstance(charge, stripe.Charge)
    assert charge.id == authorised.latest_charge
    assert charge.status == "succeeded"
    assert by_id[fresh.id].latest_charge is None
    assert {intent.id: intent.latest_charge for intent in plain.data}[authorised.id] == authorised.latest_charge


@pytest.mark.parametrize("path", ["data.payment_method", "data.nothing", "latest_charge", "data"])
@pytest.mark.parametrize("empty", [True, False])
def test_list_refuses_an_expansion_it_cannot_make(client: stripe.StripeClient, path: str, empty: bool) -> None:
    if not empty:
        authorise(client)

    with pytest.raises(stripe.InvalidRequestError) as raised:
        listed(client.v1.payment_intents, expand=[path])

    assert raised.value.param == "expand"
    assert path in str(raised.value.user_message)


def test_list_with_expand_brackets_over_plain_http(url: str) -> None:
    created = api(
        url,
        "POST",
        "/v1/payment_intents",
        data={
            "amount": "1000",
            "currency": "usd",
            "allowed_payment_method_types[]": "card_present",
            "capture_method": "manual",
            "payment_method": VISA,
            "confirm": "true",
        },
    ).json()

    body = api(url, "GET", "/v1/payment_intents", params={"expand[]": "data.latest_charge"}).json()

    assert body["data"][0]["id"] == created["id"]
    assert body["data"][0]["latest_charge"]["object"] == "charge"


# -- search -------------------------------------------------------------------------------------


def search(intents: stripe.PaymentIntentService, query: str, **params: Any) -> stripe.SearchResultObject[Any]:
    sent: Any = {"query": query, **params}
    return intents.search(params=sent)


def test_search_by_status_and_metadata(client: stripe.StripeClient) -> None:
    wanted = authorise(client, 1000, metadata={"order_id": "A1"})
    create_intent(client, 1000, metadata={"order_id": "A1"})  # same order, not authorised
    authorise(client, 1000, metadata={"order_id": "A2"})  # authorised, another order
    captured = authorise(client, 1000, metadata={"order_id": "A1"})
    client.v1.payment_intents.capture(captured.id)

    found = search(client.v1.payment_intents, "status:'requires_capture' AND metadata['order_id']:'A1'")

    assert (body_of(found)["object"], body_of(found)["url"]) == ("search_result", "/v1/payment_intents/search")
    assert ids_of(found) == [wanted.id]
    assert found.has_more is False
    assert found["next_page"] is None  # typed as str by stripe-python; Stripe sends null


def test_search_by_created(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    ids = spread(client, emulator, 4, step_s=60)
    cut = client.v1.payment_intents.retrieve(ids[1]).created

    assert ids_of(search(client.v1.payment_intents, f"created>{cut}")) == [ids[3], ids[2]]
    assert ids_of(search(client.v1.payment_intents, f"created>={cut}")) == [ids[3], ids[2], ids[1]]
    assert ids_of(search(client.v1.payment_intents, f"created<{cut}")) == [ids[0]]


def test_search_negation_amount_and_currency(client: stripe.StripeClient) -> None:
    small = create_intent(client, 900)
    large = create_intent(client, 5000)
    euro = create_intent(client, 5000, currency="eur")
    intents = client.v1.payment_intents

    assert ids_of(search(intents, "amount>1000 AND currency:'usd'")) == [large.id]
    assert ids_of(search(intents, "-currency:'usd'")) == [euro.id]
    assert set(ids_of(search(intents, "amount<=5000"))) == {small.id, large.id, euro.id}


def test_search_pages(client: stripe.StripeClient) -> None:
    ids = [create_intent(client, 1000, metadata={"batch": "b1"}).id for _ in range(5)]
    intents = client.v1.payment_intents

    first = search(intents, "metadata['batch']:'b1'", limit=2)
    assert (len(first.data), first.has_more) == (2, True)
    assert first.next_page is not None
    second = search(intents, "metadata['batch']:'b1'", limit=2, page=first.next_page)
    every = [intent.id for intent in search(intents, "metadata['batch']:'b1'", limit=2).auto_paging_iter()]

    assert ids_of(first) + ids_of(second) == ids[::-1][:4]
    assert every == ids[::-1]


def test_search_lags_behind_writes(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    emulator.set_search_lag(60)
    intents = client.v1.payment_intents
    intent = create_intent(client, 1000, metadata={"order_id": "L1"})
    query = "metadata['order_id']:'L1'"

    assert ids_of(search(intents, query)) == []
    emulator.advance_clock(59)
    assert ids_of(search(intents, query)) == []
    emulator.advance_clock(2)
    assert ids_of(search(intents, query)) == [intent.id]

    # A change lags too: search still shows the old status until the lag has passed.
    intents.cancel(intent.id)
    stale = search(intents, query)
    assert [(found.id, found.status) for found in stale.data] == [(intent.id, "requires_payment_method")]
    assert ids_of(search(intents, f"{query} AND status:'canceled'")) == []
    emulator.advance_clock(61)
    assert ids_of(search(intents, f"{query} AND status:'canceled'")) == [intent.id]
    assert intents.retrieve(intent.id).status == "canceled"  # retrieve reads after write


@pytest.mark.parametrize(
    "query",
    [
        "status='requires_capture'",
        "colour:'red'",
        "amount:'lots'",
        "status>'a'",
        "metadata:'A1'",
        "status:'requires_capture' OR status:'canceled'",
        "status:requires_capture",
    ],
)
def test_search_refuses_an_invalid_query(client: stripe.StripeClient, query: str) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        search(client.v1.payment_intents, query)

    assert raised.value.http_status == 400
    assert raised.value.param == "query"


def test_search_needs_a_query(client: stripe.StripeClient) -> None:
    params: Any = {}
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.payment_intents.search(params=params)

    assert (raised.value.code, raised.value.param) == ("parameter_missing", "query")


# -- an account shared by a fleet -------------------------------------------------------------


def preload(emulator: StripeEmulator, count: int, span_s: int) -> list[tuple[int, str]]:
    """`count` PaymentIntents of other kiosks over the last `span_s` s (several a second when `count`
    exceeds it); (created, id) of each, newest first, as Stripe orders them."""
    now = int(emulator.clock.timestamp())
    emulator.preload_payment_intents(fleet_history(count, since=now - span_s, until=now))
    intents = emulator.payment_intents.intents.values()
    ordered = sorted(intents, key=lambda intent: (intent.created, intent.seq), reverse=True)
    return [(intent.created, intent.id) for intent in ordered]


def test_list_over_a_preloaded_fleet_pages_in_stripe_order(
    client: stripe.StripeClient, emulator: StripeEmulator
) -> None:
    every = preload(emulator, 900, 300)  # three a second: many share their `created`
    intents = client.v1.payment_intents
    low, high = every[600][0], every[200][0]  # created[gte] / created[lt], mid-second
    window = [intent_id for created, intent_id in every if low <= created < high]

    paged = [intent.id for intent in listed(intents, limit=100, created={"gte": low, "lt": high}).auto_paging_iter()]
    outside = every[100][1]  # newer than the window: a cursor the filter leaves out still places the page
    after_outside = listed(intents, limit=7, created={"gte": low, "lt": high}, starting_after=outside)
    middle = window[len(window) // 2]
    before_middle = listed(intents, limit=5, created={"gte": low, "lt": high}, ending_before=middle)

    assert paged == window
    assert (ids_of(after_outside), after_outside.has_more) == (window[:7], True)
    half = len(window) // 2
    assert (ids_of(before_middle), before_middle.has_more) == (window[half - 5 : half], True)
    assert ids_of(listed(intents, limit=3, created=every[0][0])) == [i for c, i in every if c == every[0][0]][:3]


def test_search_finds_one_payment_among_a_fleet(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    preload(emulator, 20_000, 14 * 86400)
    intents = client.v1.payment_intents
    ours = create_intent(client, 1234, metadata={"payment_id": "pay_ours", "terminal_id": "kiosk-1"})
    emulator.advance_clock(3)  # past the emulator's default lag

    found = search(intents, "metadata['payment_id']:'pay_ours'")
    counted = search(intents, "metadata['terminal_id']:'kiosk-0007'", limit=3, expand=["total_count"])
    following = search(intents, "metadata['terminal_id']:'kiosk-0007'", limit=3, page=counted.next_page)

    assert (ids_of(found), found.has_more) == ([ours.id], False)
    assert found["next_page"] is None  # typed as str by stripe-python; Stripe sends null
    assert "total_count" not in found  # only when asked for
    assert counted.has_more
    assert counted["total_count"] > 3
    assert set(ids_of(counted)).isdisjoint(ids_of(following))
    newest_first = [intent.created for intent in [*counted.data, *following.data]]
    assert newest_first == sorted(newest_first, reverse=True)


def test_payment_intent_search_of_the_global_api_pages_through_a_fleet(
    url: str, client: stripe.StripeClient, emulator: StripeEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """stripe-python's own `PaymentIntent.search` (the global API, not the client's service): its
    paging follows `next_page` until `has_more` is false."""
    preload(emulator, 5_000, 14 * 86400)
    monkeypatch.setattr(stripe, "api_base", url)  # configures the library, restored after the test
    monkeypatch.setattr(stripe, "api_key", TEST_KEY)
    expected = [
        intent.id
        for intent in sorted(emulator.payment_intents.intents.values(), key=lambda i: (i.created, i.seq), reverse=True)
        if intent.metadata.get("terminal_id") == "kiosk-0042"
    ]

    first = stripe.PaymentIntent.search(query="metadata['terminal_id']:'kiosk-0042'", limit=5)
    every = [
        intent.id
        for intent in stripe.PaymentIntent.search_auto_paging_iter(
            query="metadata['terminal_id']:'kiosk-0042'", limit=5
        )
    ]

    assert first["object"] == "search_result"
    assert (ids_of(first), first.has_more) == (expected[:5], True)
    assert every == expected
    assert len(expected) > 5
