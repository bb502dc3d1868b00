"""The clients' method table against the daemon's: a method cannot exist on one side only, and a
client's arguments are named as the parameters the daemon takes. Then display_cart, the method
the clients lacked, through both clients to real daemons."""

from __future__ import annotations

import asyncio
import inspect
import re
from pathlib import Path
from typing import Any

import pytest
from support.daemon import daemon_process, running_daemon

from readerhost.client import AsyncClient, Client, Unsupported
from readerhost.client.methods import PosMethods, Rpc
from readerhost.client.wire import TERMINAL_STATES, TOPICS
from readerhost.daemon.api.methods import METHODS
from readerhost.daemon.payments.events import Topic
from readerhost.daemon.payments.model import TERMINAL

SERVER = {method.name: {param.name for param in method.params} for method in METHODS}
CLIENT = {name: entry for name, entry in vars(PosMethods).items() if isinstance(entry, Rpc)}
CART: dict[str, Any] = {"currency": "usd", "line_items": [{"description": "Tea", "amount": 250}], "total": 250}


def test_the_clients_have_every_method_the_daemon_serves_and_no_other() -> None:
    assert len(METHODS) == len(SERVER), "a method is in the daemon's table twice"
    sent = [entry.method for entry in CLIENT.values()]
    assert len(sent) == len(set(sent)), "two client methods send the same RPC method"
    assert not set(SERVER) - set(sent), "the daemon serves methods the clients lack"
    assert not set(sent) - set(SERVER), "the clients call methods the daemon does not have"


def test_the_clients_words_are_the_daemons() -> None:
    # The client library ships alone, so it spells the topics and the terminal states itself.
    assert tuple(topic.value for topic in Topic) == TOPICS
    assert {state.value for state in TERMINAL} == TERMINAL_STATES


@pytest.mark.parametrize("name", sorted(CLIENT))
def test_a_client_method_names_its_arguments_as_the_parameters_of_its_rpc_method(name: str) -> None:
    entry = CLIENT[name]
    signature = inspect.signature(entry.params).parameters.values()
    named = {p.name for p in signature if p.kind is not inspect.Parameter.VAR_KEYWORD}
    takes_the_rest = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature)
    assert named <= SERVER[entry.method], f"{name} sends parameters {entry.method} does not have"
    if not takes_the_rest:
        assert named == SERVER[entry.method], f"{name} cannot send every parameter of {entry.method}"


def test_both_clients_offer_the_table(tmp_path: Path) -> None:
    def blocking(path: Path) -> str:
        with Client.connect(path) as pos:
            for name in CLIENT:
                assert not inspect.iscoroutinefunction(getattr(pos, name)), name
            boot_id: str = pos.status()["boot_id"]
            return boot_id

    async def scenario() -> None:
        async with running_daemon(tmp_path) as daemon, await AsyncClient.connect(daemon.socket_path) as pos:
            for name in CLIENT:
                assert inspect.iscoroutinefunction(getattr(pos, name)), name
            assert (await pos.status())["boot_id"] == daemon.boot_id
            assert await asyncio.to_thread(blocking, daemon.socket_path) == daemon.boot_id

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_the_guide_lists_each_client_method_with_what_it_sends() -> None:
    guide = (Path(__file__).resolve().parents[2] / "docs" / "pos-protocol.md").read_text()
    listed = dict(re.findall(r"^\| `(\w+)\(.*?\)` \| `([\w.]+)` \|", guide, re.MULTILINE))
    assert listed == {name: entry.method for name, entry in CLIENT.items()}


# -- display_cart through the clients ---------------------------------------------------------


def test_display_cart_from_the_async_client_reaches_a_simulated_reader_which_has_no_screen(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_daemon(tmp_path) as daemon, await AsyncClient.connect(daemon.socket_path) as pos:
            with pytest.raises(Unsupported) as refused:
                await pos.display_cart(**CART)
            assert "no screen for a cart" in refused.value.message

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_display_cart_from_the_blocking_client_reaches_a_simulated_reader_which_has_no_screen(tmp_path: Path) -> None:
    with daemon_process(tmp_path) as daemon, Client.connect(daemon.socket_path) as pos:
        with pytest.raises(Unsupported) as refused:
            pos.display_cart(**CART)
        assert "no screen for a cart" in refused.value.message
