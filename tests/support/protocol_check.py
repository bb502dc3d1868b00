"""Every message the suite exchanges with a daemon, checked against docs/protocol/.

tests/conftest.py taps each test's traffic on both ends of the socket: the ApiServer of a daemon
running in the test's process (`tap_server`: what a client sends is paired with the daemon's answer,
and the banner and events are taken as they are queued), and the tests' LineClient, which also
talks to daemons running as their own process (`tap_line_clients`). `ProtocolCheck`
judges each against the committed OpenRPC document and schemas:

- a request the daemon answered with a result has params its method's schema accepts, and that
  result matches the method's result schema; a method the document lists is never METHOD_NOT_FOUND;
- every error is the protocol's error object (a known reason);
- the banner matches schemas/hello.json, each event schemas/event.<type>.json (an unknown type is
  a mismatch).
"""

from __future__ import annotations

import json
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped, unused-ignore]

from readerhost.daemon.api.protocol import RpcError, error_line
from readerhost.daemon.api.server import ApiServer, Client

PROTOCOL_DOCS = Path(__file__).resolve().parents[2] / "docs" / "protocol"


@dataclass(frozen=True)
class Exchange:
    """A request line and the daemon's answer (None: a notification, or unparsable), or a line the
    daemon sent on its own (banner, event, an error to no request): `request` is then None."""

    request: bytes | None
    answer: bytes | None


def _message(line: bytes | None) -> Any:
    if line is None:
        return None
    try:
        return json.loads(line)
    except ValueError:
        return None


class ProtocolCheck:
    """The committed OpenRPC document and schemas, ready to judge messages."""

    def __init__(self, openrpc: dict[str, Any], schemas: dict[str, dict[str, Any]]) -> None:
        components = {"components": openrpc["components"]}
        self._params: dict[str, Draft202012Validator] = {}
        self._results: dict[str, Draft202012Validator] = {}
        for method in openrpc["methods"]:
            params = {
                "type": "object",
                "properties": {param["name"]: param["schema"] for param in method["params"]},
                "required": [param["name"] for param in method["params"] if param["required"]],
                "additionalProperties": False,
            }
            self._params[method["name"]] = Draft202012Validator({**params, **components})
            self._results[method["name"]] = Draft202012Validator({**method["result"]["schema"], **components})
        self._schemas = {name: Draft202012Validator(schema) for name, schema in schemas.items()}

    @classmethod
    def load(cls, directory: Path = PROTOCOL_DOCS) -> ProtocolCheck:
        return cls(*read_documents(directory))

    def mismatches(self, exchanges: Iterable[Exchange]) -> list[str]:
        """Each problem once (a message seen on both sides of a socket is judged twice)."""
        found: dict[str, None] = {}
        for exchange in exchanges:
            found.update(dict.fromkeys(self.judge(exchange)))
        return list(found)

    def judge(self, exchange: Exchange) -> list[str]:
        answer = _message(exchange.answer)
        if exchange.answer is None:
            return []
        if not isinstance(answer, dict):
            return [f"the daemon sent a line that is not a JSON object: {exchange.answer[:200]!r}"]
        if "method" in answer:
            return self._notification(answer)
        if "error" in answer:
            problems = self.problems("error", answer["error"], "error")
            request = _message(exchange.request)
            reason = (answer["error"].get("data") or {}).get("reason") if isinstance(answer["error"], dict) else None
            if isinstance(request, dict) and reason == "METHOD_NOT_FOUND" and request.get("method") in self._results:
                problems.append(f"{request['method']} is in the document but the daemon does not have it")
            return problems
        return self._result(_message(exchange.request), answer)

    def _result(self, request: Any, answer: dict[str, Any]) -> list[str]:
        if not isinstance(request, dict) or set(answer) != {"jsonrpc", "id", "result"} or answer["jsonrpc"] != "2.0":
            return [f"a result that answers no request, or a malformed one: {json.dumps(answer)[:300]}"]
        method = request.get("method")
        if method not in self._results:
            return [f"{method} answered, but the document has no such method"]
        params = request.get("params", {})
        problems = [f"{method} params: {p}" for p in _errors(self._params[method], params)]
        problems += [f"{method} result: {p}" for p in _errors(self._results[method], answer["result"])]
        return problems

    def _notification(self, message: dict[str, Any]) -> list[str]:
        method = message.get("method")
        if method == "hello":
            return self.problems("hello", message.get("params"), "the banner")
        if method == "event":
            params = message.get("params")
            kind = params.get("type") if isinstance(params, dict) else None
            if f"event.{kind}" not in self._schemas:
                return [f"event {kind!r} has no schema"]
            return self.problems(f"event.{kind}", params, f"event {kind}")
        return [f"the daemon sent a notification the document does not know: {method!r}"]

    def problems(self, schema: str, value: Any, what: str) -> list[str]:
        """How `value` does not match schemas/<schema>.json, each problem prefixed with `what`."""
        return [f"{what}: {problem}" for problem in _errors(self._schemas[schema], value)]


def _errors(validator: Draft202012Validator, value: Any) -> list[str]:
    return [
        f"at {'/'.join(str(part) for part in error.absolute_path) or '(top)'}: {error.message[:300]}"
        for error in validator.iter_errors(value)
    ]


def read_documents(directory: Path = PROTOCOL_DOCS) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The committed OpenRPC document and the schemas by name (hello, event.payment.state, ...)."""
    openrpc = json.loads((directory / "openrpc.json").read_text())
    schemas = {path.stem: json.loads(path.read_text()) for path in sorted((directory / "schemas").glob("*.json"))}
    return openrpc, schemas


@dataclass
class Traffic:
    """What the daemons of one test exchanged on their sockets."""

    exchanges: list[Exchange] = field(default_factory=list)


def tap_server(monkeypatch: pytest.MonkeyPatch, traffic: Traffic) -> None:
    """Record every line an ApiServer receives and sends into `traffic`, around the places all of
    them pass: a request and its answer (_serve_line, _answer), the banner and events (_offer), and
    the error to a refused connection (_refuse). The daemon behaves exactly as without it."""
    serve_line = ApiServer._serve_line
    answer = ApiServer._answer
    offer = ApiServer._offer
    refuse = ApiServer._refuse
    serving: dict[Client, bytes] = {}  # the request line each client is being served

    async def tapped_serve_line(self: ApiServer, client: Client, line: bytes) -> None:
        serving[client] = line
        try:
            await serve_line(self, client, line)
        finally:
            serving.pop(client, None)

    async def tapped_answer(self: ApiServer, client: Client, line: bytes) -> None:
        traffic.exchanges.append(Exchange(serving.get(client), line))
        await answer(self, client, line)

    def tapped_offer(self: ApiServer, client: Client, line: bytes) -> None:
        traffic.exchanges.append(Exchange(None, line))
        offer(self, client, line)

    async def tapped_refuse(self: ApiServer, writer: Any, error: RpcError) -> None:
        traffic.exchanges.append(Exchange(None, error_line(None, error)))
        await refuse(self, writer, error)

    patches: dict[str, Callable[..., Any]] = {
        "_serve_line": tapped_serve_line,
        "_answer": tapped_answer,
        "_offer": tapped_offer,
        "_refuse": tapped_refuse,
    }
    for name, replacement in patches.items():
        monkeypatch.setattr(ApiServer, name, replacement)


def tap_line_clients(monkeypatch: pytest.MonkeyPatch, traffic: Traffic) -> None:
    """Record what every LineClient sends and receives into `traffic`: the suite's view of daemons
    that run as their own process, where the server's side cannot be tapped. Each answer is paired
    with the request of its id sent before it on the same connection."""
    from support.daemon import LineClient  # the whole daemon: loaded by the first test, not by conftest

    send_raw = LineClient.send_raw
    receive = LineClient.receive
    asked: dict[int, dict[Any, deque[bytes]]] = {}  # id(client) -> request id -> its lines, oldest first

    async def tapped_send_raw(self: LineClient, data: bytes) -> None:
        for line in data.splitlines(keepends=True):
            request = _message(line)
            if isinstance(request, dict) and "id" in request and isinstance(request["id"], int | str):
                asked.setdefault(id(self), defaultdict(deque))[request["id"]].append(line)
        await send_raw(self, data)

    async def tapped_receive(self: LineClient, timeout: float = 10.0) -> dict[str, Any]:
        message = await receive(self, timeout)
        waiting = asked.get(id(self), {}).get(message.get("id"))
        request = waiting.popleft() if "method" not in message and waiting else None
        traffic.exchanges.append(Exchange(request, json.dumps(message).encode()))
        return message

    monkeypatch.setattr(LineClient, "send_raw", tapped_send_raw)
    monkeypatch.setattr(LineClient, "receive", tapped_receive)


def tap_relays(monkeypatch: pytest.MonkeyPatch, traffic: Traffic) -> None:
    """Record what every ProtocolRelay hears into `traffic`: the lines between any client and a
    daemon that runs as its own process (support.daemon.daemon_process)."""
    from support.protocol_relay import ProtocolRelay

    def heard(self: ProtocolRelay, exchange: Exchange) -> None:
        traffic.exchanges.append(exchange)

    monkeypatch.setattr(ProtocolRelay, "hear", heard)
