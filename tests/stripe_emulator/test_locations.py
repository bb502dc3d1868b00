"""Terminal locations through the real stripe library over real HTTP: made, read, listed with
Stripe's cursors, deleted, refused when incomplete; a reader can only be registered in one that exists."""

from __future__ import annotations

from typing import Any

import pytest
import stripe
from support.emulator_fidelity import error_body, journal_ops

from readerhost.sim.stripe_emulator import StripeEmulator

ADDRESS: Any = {"line1": "12 Station Road", "city": "Springfield", "postal_code": "62701", "country": "us"}


def test_create_retrieve_list_and_delete(client: stripe.StripeClient, emulator: StripeEmulator) -> None:
    locations = client.v1.terminal.locations
    first = locations.create(params={"display_name": "Front", "address": ADDRESS, "metadata": {"site": "7"}})
    assert first.id.startswith("tml_")
    assert (first.object, first.display_name, first.livemode) == ("terminal.location", "Front", False)
    assert first.address.to_dict() == {
        "line1": "12 Station Road", "line2": None, "city": "Springfield", "state": None, "postal_code": "62701",
        "country": "US",
    }  # fmt: skip
    assert first.metadata.to_dict() == {"site": "7"}
    assert "configuration_overrides" not in first
    assert "phone" not in first
    second = locations.create(params={"display_name": "Back", "address": {"country": "CA"}, "phone": "5550100"})
    assert second.phone == "5550100"
    assert locations.retrieve(first.id).display_name == "Front"
    assert [loc.id for loc in locations.list().data] == [second.id, first.id]  # newest first
    page = locations.list(params={"limit": 1})
    assert ([loc.id for loc in page.data], page.has_more) == ([second.id], True)
    assert [loc.id for loc in locations.list(params={"starting_after": second.id}).data] == [first.id]
    deleted = locations.delete(second.id)
    assert (deleted.id, deleted.deleted) == (second.id, True)
    assert [loc.id for loc in locations.list().data] == [first.id]
    assert journal_ops(emulator, "location.create") == ["location.create", "location.create"]
    assert journal_ops(emulator, "location.delete") == ["location.delete"]


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"address": {"country": "US"}}, "display_name"),
        ({"display_name": "No address"}, "address"),
        ({"display_name": "No country", "address": {"city": "Springfield"}}, "address[country]"),
        ({"display_name": "Bad country", "address": {"country": "USA"}}, "address[country]"),
        ({"display_name": "Odd part", "address": {"country": "US", "county": "Cook"}}, "address[county]"),
        ({"display_name": "x", "address": {"country": "US"}, "colour": "red"}, "colour"),
    ],
)
def test_an_incomplete_location_is_refused_and_nothing_is_made(
    client: stripe.StripeClient, emulator: StripeEmulator, params: dict[str, object], param: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.terminal.locations.create(params=params)  # type: ignore[arg-type]
    assert (refused.value.http_status, error_body(refused.value)["error"]["param"]) == (400, param)
    assert client.v1.terminal.locations.list().data == []
    assert journal_ops(emulator, "location.create") == []


def test_an_unknown_location_is_not_found(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.terminal.locations.retrieve("tml_nothing")
    assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")


def test_a_reader_is_registered_only_in_a_location_that_exists(
    client: stripe.StripeClient, emulator: StripeEmulator
) -> None:
    readers = client.v1.terminal.readers
    with pytest.raises(stripe.InvalidRequestError) as refused:
        readers.create(params={"registration_code": "simulated-wpe", "location": "tml_nothing"})
    body = error_body(refused.value)["error"]
    assert (refused.value.http_status, body["code"], body["param"]) == (400, "resource_missing", "location")
    assert "tml_nothing" in body["message"]
    assert readers.list().data == []
    assert journal_ops(emulator, "reader.create") == []
    place = client.v1.terminal.locations.create(params={"display_name": "Till", "address": {"country": "US"}})
    reader = readers.create(params={"registration_code": "simulated-wpe", "location": place.id})
    assert reader.location == place.id
