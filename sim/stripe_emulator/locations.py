"""Terminal Locations: the places an account's readers are registered in (`tml_...`).

Modelled on the 2023-09 OpenAPI description and stripe-python 16.1's `terminal.Location`: create
(`display_name` and `address` with its `country` required, as the OpenAPI description has them;
newer versions make both optional for Japanese addresses given in kana/kanji, which the emulator
does not take), retrieve, list (newest first, Stripe's cursors), delete. Stripe checks an address's
other parts per country; the emulator checks only their types and lengths. The body has the fields
of Stripe's example Location, and `configuration_overrides` and `phone` only when they are set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import invalid_request, missing_param, no_such
from .forms import FormValue, Params, no_expansions
from .ids import new_id
from .journal import Journal
from .listing import cursors, list_limit, paginate
from .payment_intents import Mutation, validate_metadata

LIST_URL = "/v1/terminal/locations"
ADDRESS_PARTS = ("city", "country", "line1", "line2", "postal_code", "state")
MAX_DISPLAY_NAME = 1000


@dataclass
class Location:
    id: str
    seq: int
    created: int
    display_name: str
    address: dict[str, str | None]
    configuration_overrides: str | None
    phone: str | None
    metadata: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        # Stripe's example Location has only these; the optional fields appear when they are set
        # (configuration_overrides is optional and not nullable in the OpenAPI description).
        body: dict[str, Any] = {
            "id": self.id,
            "object": "terminal.location",
            "address": dict(self.address),
            "display_name": self.display_name,
            "livemode": False,
            "metadata": dict(self.metadata),
        }
        if self.configuration_overrides is not None:
            body["configuration_overrides"] = self.configuration_overrides
        if self.phone is not None:
            body["phone"] = self.phone
        return body


@dataclass
class LocationStore:
    journal: Journal
    locations: dict[str, Location] = field(default_factory=dict)
    _seq: int = 0

    def get(self, location_id: str, *, param: str = "location", status: int = 404) -> Location:
        location = self.locations.get(location_id)
        if location is None:
            raise no_such("terminal.location", location_id, param=param, status=status)
        return location

    def retrieve(self, location_id: str, params: Params) -> Location:
        location = self.get(location_id)
        no_expansions(params)
        params.reject_unknown()
        return location

    def create(self, params: Params, mutation: Mutation) -> Location:
        display_name = params.required_string("display_name", max_length=MAX_DISPLAY_NAME)
        address = _address(params.mapping("address"))
        configuration_overrides = params.string("configuration_overrides")
        phone = params.string("phone")
        metadata = validate_metadata(params.mapping("metadata") or {})
        no_expansions(params)
        params.reject_unknown()
        if not display_name.strip():
            raise invalid_request("display_name must not be blank.", param="display_name")
        self._seq += 1
        location = Location(
            id=new_id("tml"),
            seq=self._seq,
            created=mutation.now,
            display_name=display_name,
            address=address,
            configuration_overrides=configuration_overrides,
            phone=phone,
            metadata={key: value for key, value in metadata.items() if value != ""},
        )
        self.locations[location.id] = location
        self.journal.record(
            at=mutation.now,
            op="location.create",
            object_id=location.id,
            idempotency_key=mutation.idempotency_key,
            status="active",
            amount=None,
            metadata=location.metadata,
        )
        return location

    def list(self, params: Params) -> dict[str, Any]:
        limit = list_limit(params)
        starting_after, ending_before = cursors(params)
        no_expansions(params)
        params.reject_unknown()
        ordered = sorted(self.locations.values(), key=lambda loc: (loc.created, loc.seq), reverse=True)
        page, has_more = paginate(
            ordered,
            limit,
            starting_after,
            ending_before,
            lambda cursor, param: self.get(cursor, param=param),
            lambda loc: (loc.created, loc.seq),
        )
        return {"object": "list", "data": [loc.to_json() for loc in page], "has_more": has_more, "url": LIST_URL}

    def delete(self, location_id: str, params: Params, mutation: Mutation) -> dict[str, Any]:
        location = self.get(location_id)
        params.reject_unknown()
        del self.locations[location_id]
        self.journal.record(
            at=mutation.now,
            op="location.delete",
            object_id=location.id,
            idempotency_key=mutation.idempotency_key,
            status="deleted",
            amount=None,
            metadata=location.metadata,
        )
        return {"id": location.id, "object": "terminal.location", "deleted": True}


def _address(value: dict[str, FormValue] | None) -> dict[str, str | None]:
    if value is None:
        raise missing_param("address")
    unknown = sorted(set(value) - set(ADDRESS_PARTS))
    if unknown:
        raise invalid_request(f"Received unknown parameter: address[{unknown[0]}]", param=f"address[{unknown[0]}]",
                              code="parameter_unknown")  # fmt: skip
    parts: dict[str, str | None] = {}
    for name in ADDRESS_PARTS:
        part = value.get(name)
        if part is not None and (not isinstance(part, str) or len(part) > 5000):
            raise invalid_request(f"Invalid string: address[{name}] must be a string", param=f"address[{name}]")
        parts[name] = part or None
    if parts["country"] is None:
        raise missing_param("address[country]")
    country = parts["country"]
    if len(country) != 2 or not country.isalpha():
        raise invalid_request(
            f"address[country] must be a two-letter country code (ISO 3166-1 alpha-2), not {country!r}.",
            param="address[country]",
        )
    parts["country"] = country.upper()
    return parts
