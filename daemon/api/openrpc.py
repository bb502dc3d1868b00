"""The POS protocol as data: an OpenRPC document and JSON Schemas, made from the method table
(METHODS) and the declared shapes (shapes.py), committed in docs/protocol/.

    python -m readerhost.daemon.api.openrpc docs/protocol    # rewrite the committed files
    python -m readerhost.daemon.api.openrpc                  # the OpenRPC document, to stdout

tests/daemon/test_openrpc.py holds the committed files to what this makes, so a method (or an
event) added without its shape fails a test.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .methods import METHODS
from .protocol import INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, PARSE_ERROR, PROTOCOL_VERSION, REASON_CODES
from .shapes import BANNER, DEFINITIONS, EVENTS, PARAMS, PROTOCOL_REASONS, RESULTS, Schema, error_object, event_params
from .table import Param

JSON_SCHEMA = "https://json-schema.org/draft/2020-12/schema"
OPENRPC_VERSION = "1.3.2"
PROTOCOL_CODES = {
    "PARSE_ERROR": PARSE_ERROR,
    "INVALID_REQUEST": INVALID_REQUEST,
    "FRAME_TOO_LARGE": INVALID_REQUEST,
    "METHOD_NOT_FOUND": METHOD_NOT_FOUND,
    "INVALID_PARAMS": INVALID_PARAMS,
}


def document() -> dict[str, Any]:
    """The OpenRPC document of the POS socket."""
    version = f"{PROTOCOL_VERSION['major']}.{PROTOCOL_VERSION['minor']}"
    schemas = {name: _components(schema) for name, schema in standalone_shapes().items()}
    return {
        "openrpc": OPENRPC_VERSION,
        "info": {
            "title": "readerhost POS protocol",
            "version": version,
            "description": (
                "JSON-RPC 2.0 over a local Unix socket, one object per line (docs/pos-protocol.md). The daemon "
                "greets each connection with the notification `hello` (components.schemas.hello) and sends "
                "`event` notifications (components.schemas.event.<type>) to subscribers. Clients ignore "
                "result and event fields they do not know; the daemon refuses parameters it does not know."
            ),
        },
        "methods": [_method(method.name, method.summary, method.params) for method in METHODS],
        "components": {
            "schemas": schemas,
            "errors": {
                reason: {"code": code, "message": reason, "data": {"reason": reason}}
                for reason, code in {**PROTOCOL_CODES, **REASON_CODES}.items()
            },
        },
    }


def standalone_shapes() -> dict[str, Schema]:
    """Every shape by its name: the objects, the banner (`hello`), each event's params
    (`event.<type>`) and the error object; their references point into `#/$defs/`."""
    return {
        **DEFINITIONS,
        "hello": BANNER,
        **{f"event.{kind}": event_params(kind) for kind in EVENTS},
        "error": error_object(),
    }


def schema_files() -> dict[str, Schema]:
    """docs/protocol/schemas/<name>.json: each shape on its own, with the definitions it refers to."""
    shapes = standalone_shapes()
    files = {}
    for name, schema in shapes.items():
        needed = sorted(_referred(schema))
        files[f"{name}.json"] = {
            "$schema": JSON_SCHEMA,
            "title": name,
            **schema,
            **({"$defs": {other: DEFINITIONS[other] for other in needed}} if needed else {}),
        }
    return files


def written(directory: Path) -> dict[Path, str]:
    """The files the generator writes under `directory`, with their text."""
    files = {directory / "openrpc.json": _text(document())}
    files.update({directory / "schemas" / name: _text(schema) for name, schema in schema_files().items()})
    return files


def _method(name: str, summary: str, params: tuple[Param, ...]) -> dict[str, Any]:
    return {
        "name": name,
        "summary": summary,
        "paramStructure": "by-name",
        "params": [
            {
                "name": param.name,
                "summary": param.summary,
                "required": param.required,
                "schema": _components({"type": param.type, **PARAMS.get((name, param.name), {})}),
            }
            for param in params
        ],
        "result": {"name": "result", "schema": _components(RESULTS[name])},
        "errors": [{"$ref": f"#/components/errors/{reason}"} for reason in (*PROTOCOL_REASONS, *REASON_CODES)],
    }


def _referred(schema: Any) -> Iterator[str]:
    """The names of the definitions `schema` refers to, directly or through others."""
    seen: set[str] = set()
    pending = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            target = node.get("$ref")
            if isinstance(target, str) and target.startswith("#/$defs/"):
                name = target.removeprefix("#/$defs/")
                if name not in seen:
                    seen.add(name)
                    pending.append(DEFINITIONS[name])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return iter(seen)


def _components(schema: Any) -> Any:
    """`schema` with its references pointing into the OpenRPC document's components."""
    if isinstance(schema, dict):
        return {
            key: value.replace("#/$defs/", "#/components/schemas/") if key == "$ref" else _components(value)
            for key, value in schema.items()
        }
    if isinstance(schema, list):
        return [_components(item) for item in schema]
    return schema


def _text(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    if not argv:
        sys.stdout.write(_text(document()))
        return 0
    for path, text in written(Path(argv[0])).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
