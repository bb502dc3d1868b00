"""Listing and searching PaymentIntents, newest first, with Stripe's cursors and query language.

Search reads an index that lags the live objects by `lag_s` seconds of emulator time, because
Stripe's search does ("data is searchable in less than a minute"): it must never be used to
read back what was just written.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .errors import invalid_request
from .forms import Params
from .payment_intents import EXPANDABLE, PaymentIntent, PaymentIntentStore

LIST_URL = "/v1/payment_intents"
SEARCH_URL = "/v1/payment_intents/search"
_COMPARATORS = ("gt", "gte", "lt", "lte")
T = TypeVar("T")


def list_limit(params: Params) -> int:
    limit = params.integer("limit")
    if limit is None:
        return 10
    if not 1 <= limit <= 100:
        raise invalid_request("Invalid limit: must be an integer between 1 and 100", param="limit")
    return limit


def created_filter(params: Params) -> Callable[[int], bool]:
    raw = params.raw("created")  # an integer, or a hash of comparisons
    if raw is None:
        return lambda created: True
    if isinstance(raw, str):
        exact = params_integer("created", raw)
        return lambda created: created == exact
    if not isinstance(raw, dict) or not raw:
        raise invalid_request("Invalid created: must be an integer or a hash", param="created")
    bounds = {}
    for op, value in raw.items():
        if op not in _COMPARATORS:
            raise invalid_request(
                f"Received unknown parameter: created[{op}]", param=f"created[{op}]", code="parameter_unknown"
            )
        bounds[op] = params_integer(f"created[{op}]", value)
    checks = {
        "gt": lambda c, v: c > v,
        "gte": lambda c, v: c >= v,
        "lt": lambda c, v: c < v,
        "lte": lambda c, v: c <= v,
    }
    return lambda created: all(checks[op](created, v) for op, v in bounds.items())


def params_integer(name: str, value: object) -> int:
    if not isinstance(value, str) or not re.fullmatch(r"-?\d+", value):
        raise invalid_request(f"Invalid integer: {value}", param=name, code="parameter_invalid_integer")
    return int(value)


def _newest_first(intents: list[PaymentIntent]) -> list[PaymentIntent]:
    return sorted(intents, key=lambda intent: (intent.created, intent.seq), reverse=True)


def list_intents(store: PaymentIntentStore, params: Params) -> dict[str, Any]:
    limit = list_limit(params)
    created = created_filter(params)
    customer = params.string("customer")
    starting_after, ending_before = cursors(params)
    expand = params.expand()
    params.reject_unknown()
    for path in expand:  # checked up front: an empty page must refuse a bad expansion too
        if path.removeprefix("data.") == path or path.removeprefix("data.") not in EXPANDABLE:
            raise invalid_request(f"This property cannot be expanded ({path}).", param="expand")
    # No customers exist in the emulator, so a customer filter matches nothing.
    ordered = [] if customer else _newest_first([i for i in store.intents.values() if created(i.created)])
    page, has_more = paginate(
        ordered,
        limit,
        starting_after,
        ending_before,
        lambda cursor, param: store.get(cursor, param=param),
        lambda intent: (intent.created, intent.seq),
    )
    return {
        "object": "list",
        "data": [store.render(intent, expand, prefix="data.") for intent in page],
        "has_more": has_more,
        "url": LIST_URL,
    }


def cursors(params: Params) -> tuple[str | None, str | None]:
    """`starting_after` and `ending_before`, of which Stripe takes one at most."""
    starting_after = params.string("starting_after")
    ending_before = params.string("ending_before")
    if starting_after and ending_before:
        raise invalid_request(
            "You may only specify one of these parameters: ending_before, starting_after.", param="ending_before"
        )
    return starting_after, ending_before


def paginate(
    ordered: list[T],
    limit: int,
    starting_after: str | None,
    ending_before: str | None,
    find: Callable[[str, str], T],
    order: Callable[[T], tuple[int, int]],
) -> tuple[list[T], bool]:
    """One page of `ordered` (newest first) by Stripe's cursors, and whether there is more beyond it.

    `find(id, param)` looks a cursor's object up (raising Stripe's error for an unknown id); `order`
    is the sort key, which places a cursor that exists but is filtered out of `ordered`.
    """
    if starting_after:
        position = _cursor_position(ordered, find(starting_after, "starting_after"), order, "starting_after")
        window = ordered[position + 1 :]
        return window[:limit], len(window) > limit
    if ending_before:
        position = _cursor_position(ordered, find(ending_before, "ending_before"), order, "ending_before")
        window = ordered[:position]
        return window[-limit:], len(window) > limit
    return ordered[:limit], len(ordered) > limit


def _cursor_position(ordered: list[T], item: T, order: Callable[[T], tuple[int, int]], param: str) -> int:
    try:
        return ordered.index(item)
    except ValueError:  # exists, but outside the filter: it still orders the list
        later = [other for other in ordered if order(other) > order(item)]
        return len(later) - 1 if param == "starting_after" else len(later)


# -- search -----------------------------------------------------------------------------------

_CLAUSE = re.compile(
    r"""^(?P<neg>-)?(?P<field>[a-z_]+)(?:\[['"](?P<key>[^'"]+)['"]\])?"""
    r"""(?P<op>:|>=|<=|>|<)(?P<value>'[^']*'|"[^"]*"|-?\d+)$"""
)
_STRING_FIELDS = ("status", "currency", "metadata", "customer")
_NUMBER_FIELDS = ("amount", "created")


@dataclass(frozen=True)
class _Clause:
    negated: bool
    field: str
    key: str | None
    op: str
    value: str

    def matches(self, body: dict[str, Any]) -> bool:
        if self.field == "metadata":
            actual: Any = body["metadata"].get(self.key or "")
        else:
            actual = body.get(self.field)
        if self.field in _NUMBER_FIELDS:
            result = _compare(actual, self.op, int(self.value))
        else:
            result = actual is not None and str(actual) == self.value
        return result != self.negated


def _compare(actual: object, op: str, value: int) -> bool:
    if not isinstance(actual, int):
        return False
    return {
        ":": actual == value,
        ">": actual > value,
        ">=": actual >= value,
        "<": actual < value,
        "<=": actual <= value,
    }[op]


def parse_query(query: str) -> list[_Clause]:
    """The subset of Stripe's search language the emulator understands: clauses joined by AND."""
    clauses = []
    for part in re.split(r"\s+AND\s+", query.strip()):
        match = _CLAUSE.match(part.strip())
        if match is None:
            raise invalid_request(f"Invalid search query: could not parse '{part}'", param="query")
        name, key, op = match["field"], match["key"], match["op"]
        value = match["value"].strip("'\"")
        if name not in _STRING_FIELDS + _NUMBER_FIELDS or (key is not None) != (name == "metadata"):
            raise invalid_request(f"Invalid search query: unsupported field '{name}'", param="query")
        if name in _STRING_FIELDS and op != ":":
            raise invalid_request(f"Invalid search query: '{name}' supports only ':'", param="query")
        if name in _NUMBER_FIELDS and not re.fullmatch(r"-?\d+", value):
            raise invalid_request(f"Invalid search query: '{name}' needs a number", param="query")
        clauses.append(_Clause(bool(match["neg"]), name, key, op, value))
    return clauses


@dataclass
class SearchIndex:
    """Snapshots of PaymentIntents as search sees them, each visible `lag_s` after it was taken."""

    lag_s: float = 2.0
    _visible: dict[str, tuple[tuple[int, int], dict[str, Any]]] = field(default_factory=dict)
    _pending: list[tuple[float, tuple[int, int], dict[str, Any]]] = field(default_factory=list)

    def note(self, intent: PaymentIntent, now: float) -> None:
        self._pending.append((now + self.lag_s, (intent.created, intent.seq), intent.to_json()))

    def _catch_up(self, now: float) -> None:
        still_pending = []
        for visible_at, order, body in self._pending:
            if visible_at <= now:
                self._visible[body["id"]] = (order, body)
            else:
                still_pending.append((visible_at, order, body))
        self._pending = still_pending

    def search(self, params: Params, now: float) -> dict[str, Any]:
        query = params.required_string("query")
        limit = list_limit(params)
        page_token = params.string("page")
        expand = params.expand()
        params.reject_unknown()
        for path in expand:
            if path != "total_count":
                raise invalid_request(f"This property cannot be expanded ({path}).", param="expand")
        clauses = parse_query(query)
        offset = _decode_page(page_token) if page_token else 0
        self._catch_up(now)
        hits = sorted(
            (entry for entry in self._visible.values() if all(c.matches(entry[1]) for c in clauses)),
            key=lambda entry: entry[0],
            reverse=True,
        )
        page = [body for _, body in hits[offset : offset + limit]]
        has_more = len(hits) > offset + limit
        result: dict[str, Any] = {
            "object": "search_result",
            "data": page,
            "has_more": has_more,
            "next_page": _encode_page(offset + limit) if has_more else None,
            "url": SEARCH_URL,
        }
        if "total_count" in expand:
            result["total_count"] = len(hits)
        return result

    def clear(self) -> None:
        self._visible.clear()
        self._pending.clear()


def _encode_page(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _decode_page(token: str) -> int:
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (ValueError, KeyError, TypeError):
        raise invalid_request("Invalid page: the token was not returned by a search", param="page") from None
    if not isinstance(offset, int) or offset < 0:
        raise invalid_request("Invalid page: the token was not returned by a search", param="page")
    return offset
