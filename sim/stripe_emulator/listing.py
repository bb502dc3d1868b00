"""Listing and searching PaymentIntents, newest first, with Stripe's cursors and query language.

Search reads an index that lags the live objects by `lag_s` seconds of emulator time, because
Stripe's search does ("data is searchable in less than a minute"): it must never be used to
read back what was just written.
"""

from __future__ import annotations

import base64
import bisect
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


def created_range(params: Params) -> tuple[int | None, int | None]:
    """The `created` filter as a range: its lowest admitted value and the first value above it (None: open)."""
    raw = params.raw("created")  # an integer, or a hash of comparisons
    if raw is None:
        return None, None
    if isinstance(raw, str):
        exact = params_integer("created", raw)
        return exact, exact + 1
    if not isinstance(raw, dict) or not raw:
        raise invalid_request("Invalid created: must be an integer or a hash", param="created")
    lows: list[int] = []
    highs: list[int] = []
    for op, value in raw.items():
        if op not in _COMPARATORS:
            raise invalid_request(
                f"Received unknown parameter: created[{op}]", param=f"created[{op}]", code="parameter_unknown"
            )
        bound = params_integer(f"created[{op}]", value)
        if op in ("gt", "gte"):
            lows.append(bound + 1 if op == "gt" else bound)
        else:
            highs.append(bound + 1 if op == "lte" else bound)
    return (max(lows) if lows else None), (min(highs) if highs else None)


def created_filter(params: Params) -> Callable[[int], bool]:
    low, high = created_range(params)
    return lambda created: (low is None or created >= low) and (high is None or created < high)


def params_integer(name: str, value: object) -> int:
    if not isinstance(value, str) or not re.fullmatch(r"-?\d+", value):
        raise invalid_request(f"Invalid integer: {value}", param=name, code="parameter_invalid_integer")
    return int(value)


def list_intents(store: PaymentIntentStore, params: Params) -> dict[str, Any]:
    """A page of PaymentIntents, newest first, found by bisecting the store's order (never a scan)."""
    limit = list_limit(params)
    low, high = created_range(params)
    customer = params.string("customer")
    starting_after, ending_before = cursors(params)
    expand = params.expand()
    params.reject_unknown()
    for path in expand:  # checked up front: an empty page must refuse a bad expansion too
        if path.removeprefix("data.") == path or path.removeprefix("data.") not in EXPANDABLE:
            raise invalid_request(f"This property cannot be expanded ({path}).", param="expand")
    order = store.order
    first = 0 if low is None else bisect.bisect_left(order, (low,))
    end = len(order) if high is None else bisect.bisect_left(order, (high,))
    if customer:  # no customers exist in the emulator: a customer filter matches nothing
        end = first
    # Newest first: a page is the highest positions of the window [first, end), taken from the top.
    if starting_after:
        cursor = store.get(starting_after, param="starting_after")
        end = min(end, bisect.bisect_left(order, (cursor.created, cursor.seq)))
        positions = range(end - 1, max(first, end - limit) - 1, -1)
    elif ending_before:
        cursor = store.get(ending_before, param="ending_before")
        first = max(first, bisect.bisect_right(order, (cursor.created, cursor.seq, cursor.id)))
        positions = range(min(end, first + limit) - 1, first - 1, -1)
    else:
        positions = range(end - 1, max(first, end - limit) - 1, -1)
    has_more = max(end - first, 0) > limit
    return {
        "object": "list",
        "data": [store.render(store.intents[order[i][2]], expand, prefix="data.") for i in positions],
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

    def matches(self, intent: PaymentIntent) -> bool:
        if self.field == "metadata":
            actual: Any = intent.metadata.get(self.key or "")
        elif self.field == "customer":
            actual = None  # no customers exist in the emulator
        else:
            actual = getattr(intent, self.field)
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


# Stripe's answer to a search on an account it does not offer search to (India: "Search functionality
# is not available to merchants in India", docs.stripe.com/api/payment_intents/search). The message
# is the one reported in better-auth/better-auth#7959; the 400 invalid_request_error is assumed.
SEARCH_UNAVAILABLE = "search feature unavailable for merchant"


@dataclass
class SearchIndex:
    """Snapshots of PaymentIntents as search sees them, each visible `lag_s` after it was taken.

    A snapshot is a shallow copy (the emulator replaces, never mutates, a PaymentIntent's metadata
    and lists), found by its metadata through an index, so a search by readerhost's metadata on an
    account of hundreds of thousands is a look-up, not a scan.
    """

    lag_s: float = 2.0
    available: bool = True  # False: the account is one Stripe offers no search to
    _visible: dict[str, PaymentIntent] = field(default_factory=dict)
    _by_metadata: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    _pending: list[tuple[float, PaymentIntent]] = field(default_factory=list)

    def note(self, intent: PaymentIntent, now: float) -> None:
        self._pending.append((now + self.lag_s, _snapshot(intent)))

    def show(self, intent: PaymentIntent) -> None:
        """Make a snapshot of `intent` searchable at once (a PaymentIntent preloaded as made long ago)."""
        snapshot = _snapshot(intent)
        old = self._visible.get(snapshot.id)
        if old is not None:
            for pair in old.metadata.items():
                self._by_metadata.get(pair, set()).discard(old.id)
        self._visible[snapshot.id] = snapshot
        for pair in snapshot.metadata.items():
            self._by_metadata.setdefault(pair, set()).add(snapshot.id)

    def _catch_up(self, now: float) -> None:
        still_pending = []
        for visible_at, snapshot in self._pending:
            if visible_at <= now:
                self.show(snapshot)
            else:
                still_pending.append((visible_at, snapshot))
        self._pending = still_pending

    def search(self, params: Params, now: float) -> dict[str, Any]:
        if not self.available:
            raise invalid_request(SEARCH_UNAVAILABLE)
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
            (intent for intent in self._candidates(clauses) if all(c.matches(intent) for c in clauses)),
            key=lambda intent: (intent.created, intent.seq),
            reverse=True,
        )
        page = [intent.to_json() for intent in hits[offset : offset + limit]]
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

    def _candidates(self, clauses: list[_Clause]) -> list[PaymentIntent]:
        """The snapshots a query can match: those carrying each metadata value it asks for, else all."""
        wanted = [(c.key or "", c.value) for c in clauses if c.field == "metadata" and not c.negated]
        if not wanted:
            return list(self._visible.values())
        ids = set.intersection(*(self._by_metadata.get(pair, set()) for pair in wanted))
        return [self._visible[intent_id] for intent_id in ids]

    def clear(self) -> None:
        self._visible.clear()
        self._by_metadata.clear()
        self._pending.clear()


def _snapshot(intent: PaymentIntent) -> PaymentIntent:
    """A shallow copy, made fast (copy.copy takes several times as long: preloads make 200,000)."""
    snapshot = object.__new__(PaymentIntent)
    snapshot.__dict__.update(intent.__dict__)
    return snapshot


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
