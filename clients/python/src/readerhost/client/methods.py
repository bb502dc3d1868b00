"""The POS methods as both clients offer them, listed once.

Each entry of `PosMethods` is the RPC method, the builder of its parameters (params.py) and
what of the result the method returns. On an `AsyncClient` an entry is a coroutine method, on a
`Client` a blocking one: neither client writes its methods out (tests/client/test_method_table.py
checks this table against the daemon's).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from . import params

if TYPE_CHECKING:
    from .aio import AsyncClient
    from .sync import Client

P = ParamSpec("P")
R = TypeVar("R")


class Rpc(Generic[P, R]):
    """One POS method: `method` on the wire, `params` builds its parameters, `result` shapes its answer."""

    def __init__(self, method: str, params: Callable[P, dict[str, Any]], result: Callable[[Any], R]) -> None:
        self.method = method
        self.params = params
        self.result = result

    @overload
    def __get__(self, client: None, owner: type[Any]) -> Rpc[P, R]: ...
    @overload
    def __get__(self, client: AsyncClient, owner: type[Any]) -> Callable[P, Awaitable[R]]: ...
    @overload
    def __get__(self, client: Client, owner: type[Any]) -> Callable[P, R]: ...
    def __get__(self, client: AsyncClient | Client | None, owner: type[Any]) -> Any:
        if client is None:
            return self
        # A partial of the client's _request stays a coroutine function on AsyncClient; the
        # builder's signature and docstring are the method's.
        return functools.update_wrapper(functools.partial(client._request, self), self.params)


# -- what a method returns --------------------------------------------------------------------


def _whole(result: Any) -> dict[str, Any]:
    whole: dict[str, Any] = result
    return whole


def _payments(result: Any) -> list[dict[str, Any]]:
    payments: list[dict[str, Any]] = result["payments"]
    return payments


def _snapshot(result: Any) -> dict[str, Any]:
    snapshot: dict[str, Any] = result["snapshot"]
    return snapshot


def _nothing(result: Any) -> None:
    return None


def _reader(result: Any) -> dict[str, Any]:
    reader: dict[str, Any] = result["reader"]
    return reader


def _locations(result: Any) -> list[dict[str, Any]]:
    locations: list[dict[str, Any]] = result["locations"]
    return locations


class PosMethods:
    """The table: Python name = Rpc(RPC method, parameters, result). AsyncClient and Client inherit it."""

    status = Rpc("status.get", params.status, _whole)
    hello = Rpc("session.hello", params.hello, _whole)
    start_payment = Rpc("payment.start", params.start_payment, _whole)
    get_payment = Rpc("payment.get", params.get_payment, _whole)
    list_payments = Rpc("payment.list", params.list_payments, _payments)
    confirm = Rpc("payment.confirm", params.confirm, _whole)
    collect_again = Rpc("payment.collect_again", params.collect_again, _whole)
    capture = Rpc("payment.capture", params.capture, _whole)
    cancel = Rpc("payment.cancel", params.cancel, _whole)
    close_order = Rpc("payment.close", params.close, _whole)
    refund = Rpc("payment.refund", params.refund, _whole)
    increment = Rpc("payment.increment", params.increment, _whole)
    reconcile = Rpc("reconcile.run", params.reconcile, _whole)
    subscribe = Rpc("events.subscribe", params.subscribe, _snapshot)
    show = Rpc("display.show", params.show, _nothing)
    present = Rpc("reader.present", params.present, _nothing)
    display_cart = Rpc("reader.display_cart", params.display_cart, _nothing)
    register_reader = Rpc("reader.register", params.register_reader, _reader)
    reader_locations = Rpc("reader.locations", params.reader_locations, _locations)
    pair_reader = Rpc("reader.pair", params.pair_reader, _whole)
