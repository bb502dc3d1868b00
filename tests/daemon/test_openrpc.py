"""The protocol as data: docs/protocol/ (OpenRPC and JSON Schemas) is what daemon/api/openrpc.py makes
from the method table and the declared shapes, it matches the prose's event table, and the traffic
check that runs over the whole suite (tests/conftest.py) fails once a schema no longer fits."""

from __future__ import annotations

import asyncio
import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped, unused-ignore]
from support.daemon import LineClient, daemon_env, daemon_process, of_type, running_daemon
from support.protocol_check import PROTOCOL_DOCS, Exchange, ProtocolCheck, Traffic, read_documents

from readerhost.daemon.api import openrpc, shapes
from readerhost.daemon.api.methods import METHODS
from readerhost.daemon.api.protocol import PROTOCOL_VERSION

PROSE = PROTOCOL_DOCS.parent / "pos-protocol.md"


def test_the_committed_documents_are_what_the_method_table_and_the_shapes_make() -> None:
    wanted = openrpc.written(PROTOCOL_DOCS)
    committed = {path for path in PROTOCOL_DOCS.rglob("*") if path.is_file()}
    assert committed == set(wanted), "run: python -m readerhost.daemon.api.openrpc docs/protocol"
    for path, text in wanted.items():
        assert path.read_text() == text, f"{path} is stale: python -m readerhost.daemon.api.openrpc docs/protocol"


def test_the_generator_runs_as_the_docs_say(tmp_path: Path) -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "readerhost.daemon.api.openrpc"], capture_output=True, text=True, check=True
    ).stdout
    assert printed == (PROTOCOL_DOCS / "openrpc.json").read_text()
    subprocess.run([sys.executable, "-m", "readerhost.daemon.api.openrpc", str(tmp_path)], check=True)
    assert (tmp_path / "schemas" / "hello.json").read_text() == (PROTOCOL_DOCS / "schemas" / "hello.json").read_text()


def test_every_method_has_its_shapes_and_every_shape_its_method() -> None:
    names = [method.name for method in METHODS]
    assert set(shapes.RESULTS) == set(names)
    params = {(method.name, param.name) for method in METHODS for param in method.params}
    assert set(shapes.PARAMS) <= params, "a parameter shape for a parameter the table does not have"
    document = openrpc.document()
    assert [method["name"] for method in document["methods"]] == names
    assert document["info"]["version"] == f"{PROTOCOL_VERSION['major']}.{PROTOCOL_VERSION['minor']}"


def test_every_schema_is_valid_json_schema_and_the_document_resolves() -> None:
    document, schemas = read_documents()
    for name, schema in schemas.items():
        Draft202012Validator.check_schema(schema)
        assert name == schema["title"]
        for target in re.findall(r'"\$ref": "#/\$defs/(\w+)"', json.dumps(schema)):
            assert target in schema["$defs"], (name, target)  # each file stands on its own
    text = json.dumps(document)
    for target in set(re.findall(r'"\$ref": "#/components/(\w+)/([\w.]+)"', text)):
        assert target[1] in document["components"][target[0]], target


def test_the_event_table_in_the_prose_lists_exactly_the_events_with_schemas() -> None:
    table = PROSE.read_text().split("\n## Events\n", 1)[1].split("\n`seq` counts", 1)[0]
    listed = set(
        re.findall(
            r"`([a-z_]+\.[a-z_]+)`", "\n".join(row.split("|")[1] for row in table.splitlines() if row.startswith("| `"))
        )
    )
    assert listed == set(shapes.EVENTS)


def test_the_error_reasons_in_the_prose_are_the_documents() -> None:
    errors = PROSE.read_text().split("\n### Errors\n", 1)[1].split("\n## Methods\n", 1)[0]
    listed = set(re.findall(r"`([A-Z_]+)`", errors))
    assert listed == set(openrpc.document()["components"]["errors"])


def test_the_prose_examples_match_the_schemas(protocol_check: ProtocolCheck) -> None:
    """Each JSON example in pos-protocol.md: the banner, the payment object, requests with their
    answers, events. An example shortened with "...": "..." is held to the fields it shows."""
    checked = 0
    problems: list[str] = []
    for block in re.findall(r"```json\n(.*?)```", PROSE.read_text(), re.S):
        try:
            examples = [json.loads(block)]
        except ValueError:
            examples = [json.loads(line) for line in block.splitlines() if _is_json(line)]
        requests: dict[Any, bytes] = {}
        for example in examples:
            shortened = '"..."' in json.dumps(example)
            found: list[str]
            if "jsonrpc" not in example:
                found = protocol_check.problems("payment", _shown(example), "the payment object")
            elif "method" in example and "id" in example:
                requests[example["id"]] = json.dumps(_shown(example)).encode()
                continue
            else:
                found = protocol_check.judge(
                    Exchange(requests.get(example.get("id")), json.dumps(_shown(example)).encode())
                )
            problems += [p for p in found if not (shortened and "is a required property" in p)]
            checked += 1
    assert problems == []
    assert checked >= 6  # the banner, the payment object, three answers, an event


def _is_json(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def _shown(value: Any) -> Any:
    """An example without its "...": "..." placeholders."""
    if isinstance(value, dict):
        return {key: _shown(item) for key, item in value.items() if key != "..."}
    if isinstance(value, list):
        return [_shown(item) for item in value]
    return value


# -- the traffic check ----------------------------------------------------------------------------


async def a_day_at_the_kiosk(path: Path) -> None:
    """A payment raised and captured, then refunded, with every event: real traffic to judge."""
    pos = await LineClient.connect(path)
    assert (await pos.receive())["method"] == "hello"
    await pos.call("events.subscribe", {"topics": ["payment", "reader", "queue", "system", "display"]})
    started = await pos.call(
        "payment.start", {"order_id": "K-1", "amount": 5000, "currency": "usd", "incremental": True}
    )
    payment_id = started["result"]["payment_id"]
    await pos.event(of_type("reader.input_options"))
    assert "result" in await pos.call("reader.present", {"card": "visa"})
    await pos.event(lambda e: e["type"] == "payment.state" and e["data"]["state"] == "authorized")
    raised = await pos.call("payment.increment", {"payment_id": payment_id, "increment_id": "K-1-I1", "amount": 6000})
    assert "result" in raised, raised
    await pos.event(lambda e: e["type"] == "increment.updated" and e["data"]["state"] == "succeeded")
    assert "result" in await pos.call("payment.capture", {"payment_id": payment_id})
    await pos.event(lambda e: e["type"] == "payment.state" and e["data"]["state"] == "captured")
    refund = await pos.call("payment.refund", {"payment_id": payment_id, "refund_id": "K-1-R1", "amount": 1000})
    assert "result" in refund, refund
    await pos.event(lambda e: e["type"] == "refund.updated" and e["data"]["state"] == "succeeded")
    assert "result" in await pos.call("display.show", {"lines": ["Thank you"]})
    await pos.event(of_type("display.changed"))
    for method, params in (
        ("status.get", {}),
        ("payment.list", {"order_id": "K-1"}),
        ("reconcile.run", {"completed_order_ids": ["K-1"]}),
        ("payment.close", {"order_id": "K-2", "paid_by": "other"}),
    ):
        assert "result" in await pos.call(method, params)
    assert (await pos.call("payment.get", {"payment_id": "pay_nope"}))["error"]["data"]["reason"] == "NOT_FOUND"
    assert (await pos.call("payment.start", {"order_id": "K-3"}))["error"]["data"]["reason"] == "INVALID_PARAMS"
    await pos.close()


def test_real_traffic_matches_and_a_broken_schema_makes_it_fail(
    tmp_path: Path, protocol_traffic: Traffic, protocol_check: ProtocolCheck
) -> None:
    async def scenario() -> None:
        async with running_daemon(tmp_path) as daemon:
            await a_day_at_the_kiosk(daemon.socket_path)

    asyncio.run(asyncio.wait_for(scenario(), 60))
    traffic = list(protocol_traffic.exchanges)
    answered = [_message(e.request)["method"] for e in traffic if e.request is not None]
    assert {"payment.start", "payment.increment", "payment.refund", "reconcile.run", "status.get"} <= set(answered)
    events = {m["params"]["type"] for m in (_message(e.answer) for e in traffic) if m.get("method") == "event"}
    assert {"payment.state", "increment.updated", "refund.updated", "reader.input_options", "queue.changed"} <= events
    assert protocol_check.mismatches(traffic) == []

    document, schemas = read_documents()

    # The payment object without order_attempt: every payment the daemon sent now has a field too many.
    broken = copy.deepcopy(document)
    payment = broken["components"]["schemas"]["payment"]
    del payment["properties"]["order_attempt"]
    payment["required"].remove("order_attempt")
    found = ProtocolCheck(broken, schemas).mismatches(traffic)
    assert found
    assert all("order_attempt" in problem for problem in found)
    assert any(problem.startswith("payment.start result") for problem in found)
    assert any(problem.startswith("payment.list result") for problem in found)

    # An event's schema wrong about a type: the captured events no longer validate.
    retyped = copy.deepcopy(schemas)
    retyped["event.payment.state"]["$defs"]["payment"]["properties"]["amount"] = {"type": "string"}
    found = ProtocolCheck(document, retyped).mismatches(traffic)
    assert found
    assert all(problem.startswith("event payment.state: at data/amount") for problem in found)

    # The banner's schema missing a field the daemon sends.
    banner = copy.deepcopy(schemas)
    del banner["hello"]["properties"]["boot_id"]
    assert ProtocolCheck(document, banner).mismatches(traffic) == ["the banner: at (top): " + _extra("boot_id")]

    # A parameter the schema forbids, on a request the daemon took: the schema is stricter than the daemon.
    strict = copy.deepcopy(document)
    start = next(method for method in strict["methods"] if method["name"] == "payment.start")
    next(param for param in start["params"] if param["name"] == "amount")["schema"]["maximum"] = 100
    assert ProtocolCheck(strict, schemas).mismatches(traffic) == [
        "payment.start params: at amount: 5000 is greater than the maximum of 100"
    ]


def test_a_daemon_process_and_clients_not_the_suites_are_judged_too(
    tmp_path: Path, protocol_traffic: Traffic, protocol_check: ProtocolCheck
) -> None:
    # readerhostctl in a process of its own, talking to readerhostd in another: only the relay that
    # daemon_process puts in front of the daemon hears them (support/protocol_relay.py).
    with daemon_process(tmp_path, "[reader.simulated]\npresent_after_s = 0\n") as daemon:
        env = {**daemon_env(tmp_path), "READERHOST_SOCKET": str(daemon.socket_path)}
        done = subprocess.run(
            [sys.executable, "-m", "readerhost.daemon.ctl", "pay", "900", "--order", "RELAY-1"],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    traffic = list(protocol_traffic.exchanges)
    answered = {_message(e.request)["method"] for e in traffic if e.request is not None}
    assert {"events.subscribe", "payment.start"} <= answered
    kinds = {_message(e.answer).get("method") for e in traffic if e.request is None}
    assert {"hello", "event"} <= kinds
    assert protocol_check.mismatches(traffic) == []

    document, schemas = read_documents()
    broken = copy.deepcopy(document)
    payment = broken["components"]["schemas"]["payment"]
    del payment["properties"]["order_attempt"]
    payment["required"].remove("order_attempt")
    found = ProtocolCheck(broken, schemas).mismatches(traffic)
    assert any(problem.startswith("payment.start result: ") and "order_attempt" in problem for problem in found)


def test_a_method_the_document_lacks_or_an_unknown_event_is_a_mismatch(protocol_check: ProtocolCheck) -> None:
    request = b'{"jsonrpc":"2.0","id":1,"method":"payment.teleport","params":{}}\n'
    answer = b'{"jsonrpc":"2.0","id":1,"result":{}}\n'
    assert protocol_check.mismatches([Exchange(request, answer)]) == [
        "payment.teleport answered, but the document has no such method"
    ]
    event = {"jsonrpc": "2.0", "method": "event", "params": {"topic": "payment", "type": "payment.teleported"}}
    assert protocol_check.mismatches([Exchange(None, json.dumps(event).encode())]) == [
        "event 'payment.teleported' has no schema"
    ]
    missing = b'{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"no","data":{"reason":"METHOD_NOT_FOUND"}}}'
    status = b'{"jsonrpc":"2.0","id":1,"method":"status.get"}'
    assert protocol_check.mismatches([Exchange(status, missing)]) == [
        "status.get is in the document but the daemon does not have it"
    ]


def _message(line: bytes | None) -> Any:
    assert line is not None
    return json.loads(line)


def _extra(name: str) -> str:
    return f"Additional properties are not allowed ('{name}' was unexpected)"


@pytest.mark.parametrize("kind", sorted(shapes.EVENTS))
def test_every_event_has_a_standalone_schema_file(kind: str) -> None:
    schema = json.loads((PROTOCOL_DOCS / "schemas" / f"event.{kind}.json").read_text())
    assert schema["properties"]["type"] == {"const": kind}
