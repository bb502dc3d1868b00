"""The TypeScript client's protocol module (clients/typescript/src/protocol.ts), made from the OpenRPC
document (openrpc.py, itself made from the method table and shapes.py): a type for every shape,
banner and event, the parameters and result of every method, one typed method per POS method, and
one error class per reason. The committed file is this module's output, and a test holds the two
together, so a method added to the table without the TypeScript client fails it:

    python -m readerhost.daemon.api.typescript clients/typescript/src/protocol.ts
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .openrpc import document

SCHEMA_REF = "#/components/schemas/"
EVENT_PREFIX = "event."
INDENT = "  "


def type_name(schema_name: str) -> str:
    """`payment` -> `Payment`, `event.payment.state` -> `EventPaymentState`."""
    return "".join(part[:1].upper() + part[1:] for part in schema_name.replace(".", "_").split("_"))


def method_name(rpc_method: str) -> str:
    """The client method of an RPC method: `payment.collect_again` -> `paymentCollectAgain`."""
    first, *rest = rpc_method.replace(".", "_").split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


def error_class_name(reason: str) -> str:
    """`NOT_FOUND` -> `NotFoundError`."""
    return "".join(part.capitalize() for part in reason.split("_")) + "Error"


def _literal(value: Any) -> str:
    return json.dumps(value)


def _key(name: str) -> str:
    return name if name.isidentifier() else _literal(name)


def ts_type(schema: Any, depth: int = 0) -> str:
    """A TypeScript type for a JSON Schema of the subset shapes.py uses."""
    if schema is True or schema == {}:
        return "unknown"
    if "$ref" in schema:
        reference: str = schema["$ref"]
        if not reference.startswith(SCHEMA_REF):
            raise ValueError(f"cannot follow {reference}")
        return type_name(reference.removeprefix(SCHEMA_REF))
    if "const" in schema:
        return _literal(schema["const"])
    if "enum" in schema:
        return " | ".join(_literal(value) for value in schema["enum"])
    if "anyOf" in schema:
        return " | ".join(ts_type(option, depth) for option in schema["anyOf"])
    kind = schema.get("type")
    if isinstance(kind, list):
        return " | ".join(ts_type({**schema, "type": one}, depth) for one in kind)
    if kind == "string":
        return "string"
    if kind in ("integer", "number"):
        return "number"
    if kind == "boolean":
        return "boolean"
    if kind == "null":
        return "null"
    if kind == "array":
        item = ts_type(schema.get("items", True), depth)
        return f"Array<{item}>"
    if kind == "object":
        return _object(schema, depth)
    raise ValueError(f"no TypeScript type for {schema!r}")


def _object(schema: dict[str, Any], depth: int) -> str:
    properties: dict[str, Any] = schema.get("properties", {})
    extra = schema.get("additionalProperties", False)
    if not properties:
        if extra in (False, None):
            return "Record<string, never>"
        return f"Record<string, {ts_type(extra, depth)}>"
    required = set(schema.get("required", ()))
    inner = INDENT * (depth + 1)
    lines = ["{"]
    for name, value in properties.items():
        if isinstance(value, dict) and value.get("description"):
            lines.append(f"{inner}/** {value['description']} */")
        optional = "" if name in required else "?"
        lines.append(f"{inner}{_key(name)}{optional}: {ts_type(value, depth + 1)};")
    lines.append(INDENT * depth + "}")
    return "\n".join(lines)


def _declaration(name: str, schema: Any, doc: str | None = None) -> str:
    comment = f"/** {doc} */\n" if doc else ""
    body = ts_type(schema)
    if body.startswith("{"):
        return f"{comment}export interface {name} {body}\n"
    return f"{comment}export type {name} = {body};\n"


def _params_schema(method: dict[str, Any]) -> dict[str, Any]:
    properties = {}
    for param in method["params"]:
        schema = dict(param["schema"])
        if param.get("summary"):
            schema["description"] = param["summary"]
        properties[param["name"]] = schema
    required = [param["name"] for param in method["params"] if param.get("required")]
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def _sections(openrpc: dict[str, Any]) -> Iterator[str]:
    info = openrpc["info"]
    major, minor = (int(part) for part in info["version"].split("."))
    schemas: dict[str, Any] = openrpc["components"]["schemas"]
    errors: dict[str, Any] = openrpc["components"]["errors"]
    methods: list[dict[str, Any]] = openrpc["methods"]
    events = [name for name in schemas if name.startswith(EVENT_PREFIX)]

    yield (
        "// The POS protocol's types, methods and error reasons, made by\n"
        "//     python -m readerhost.daemon.api.typescript clients/typescript/src/protocol.ts\n"
        "// from the OpenRPC document (docs/protocol/openrpc.json): do not edit by hand.\n"
        "\n"
        'import { ReaderhostError, type ErrorData } from "./errors.js";\n'
    )
    yield (
        f"/** The protocol version this client was made for: {major}.{minor}. */\n"
        f"export const PROTOCOL_VERSION = {{ major: {major}, minor: {minor} }} as const;\n"
    )
    yield "// -- shapes: the objects, the banner (`Hello`) and each event's params ----------------------\n"
    for name, schema in schemas.items():
        yield _declaration(type_name(name), schema, schema.get("description"))
    yield (
        "/** Every event the daemon sends, by its `type`. */\n"
        "export type ReaderhostEvent =\n" + "\n".join(f"  | {type_name(name)}" for name in events) + ";\n"
    )
    yield (
        "/** The event types, as the daemon names them. */\n"
        "export const EVENT_TYPES = [\n"
        + "".join(f"  {_literal(name.removeprefix(EVENT_PREFIX))},\n" for name in events)
        + "] as const;\n"
    )
    subscribe = next(method for method in methods if method["name"] == "events.subscribe")
    topics = subscribe["params"][0]["schema"]["items"]["enum"]
    yield (
        "/** The topics of `events.subscribe`. */\n"
        f"export const TOPICS = {_literal(topics)} as const;\n"
        "export type Topic = (typeof TOPICS)[number];\n"
    )

    yield "// -- methods: parameters and results -------------------------------------------------------\n"
    for method in methods:
        base = type_name(method["name"])
        yield _declaration(f"{base}Params", _params_schema(method), f"`{method['name']}`'s parameters.")
        yield _declaration(f"{base}Result", method["result"]["schema"], f"`{method['name']}`'s result.")
    yield (
        "/** Each method's parameters and result, by the method's name. */\n"
        "export interface Methods {\n"
        + "".join(
            f"  {_literal(m['name'])}: {{ params: {type_name(m['name'])}Params; "
            f"result: {type_name(m['name'])}Result }};\n"
            for m in methods
        )
        + "}\n"
        "export type MethodName = keyof Methods;\n"
        'export type ParamsOf<M extends MethodName> = Methods[M]["params"];\n'
        'export type ResultOf<M extends MethodName> = Methods[M]["result"];\n'
        "/** The methods the daemon serves, in the order of its method table. */\n"
        "export const METHOD_NAMES = [\n" + "".join(f"  {_literal(m['name'])},\n" for m in methods) + "] as const;\n"
    )
    yield (
        "/** Options of one call. */\n"
        "export interface CallOptions {\n"
        "  /** Give up waiting after this many milliseconds (RequestTimeoutError); default: the client's\n"
        "   * callTimeoutMs. */\n"
        "  timeoutMs?: number;\n"
        "}\n"
    )
    lines = [
        "/** One method per POS method: the RPC method's name without its dot, in camelCase, taking its",
        " * parameters by their protocol names. */",
        "export abstract class PosMethods {",
        "  /** Send `method` with `params` and resolve with its result, or reject with its error. */",
        "  abstract call<M extends MethodName>(",
        "    method: M, params?: ParamsOf<M>, options?: CallOptions",
        "  ): Promise<ResultOf<M>>;",
    ]
    for method in methods:
        base = type_name(method["name"])
        optional = "" if any(param.get("required") for param in method["params"]) else "?"
        lines += [
            "",
            f"  /** `{method['name']}`: {method['summary']} */",
            f"  {method_name(method['name'])}(params{optional}: {base}Params, options?: CallOptions): "
            f"Promise<{base}Result> {{",
            f"    return this.call({_literal(method['name'])}, params, options);",
            "  }",
        ]
    yield "\n".join(lines) + "\n}\n"

    yield "// -- errors: one class per reason -----------------------------------------------------------\n"
    yield (
        "/** Every `data.reason` the daemon answers with, and its JSON-RPC error code. */\n"
        "export const ERROR_CODES = {\n"
        + "".join(f"  {reason}: {error['code']},\n" for reason, error in errors.items())
        + "} as const;\n"
        "export type ErrorReason = keyof typeof ERROR_CODES;\n"
    )
    for reason in errors:
        yield (
            f"/** The daemon refused the request: `{reason}` (code {errors[reason]['code']}). */\n"
            f"export class {error_class_name(reason)} extends ReaderhostError {{\n"
            f"  override readonly reason = {_literal(reason)};\n"
            "}\n"
        )
    yield (
        "/** The error class of each reason. */\n"
        "export const ERROR_CLASSES: {\n"
        "  [R in ErrorReason]: new (code: number, message: string, data: ErrorData) => ReaderhostError;\n"
        "} = {\n" + "".join(f"  {reason}: {error_class_name(reason)},\n" for reason in errors) + "};\n"
    )


def typescript_module(openrpc: dict[str, Any]) -> str:
    """clients/typescript/src/protocol.ts for this OpenRPC document."""
    return "\n".join(_sections(openrpc))


def main(argv: list[str]) -> int:
    text = typescript_module(document())
    if len(argv) > 1:
        Path(argv[1]).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
