"""Regenerate subset.json from Stripe's OpenAPI description (run by hand, not by tests).

    python tests/support/stripe_openapi/extract.py [path/to/spec3.yaml]

Keeps the schemas the test suite validates response bodies against, plus everything
they reference, rewritten so that an OpenAPI 3.0 validator checks structure only.
See README.md in this folder for what the rewrites are and why.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped, unused-ignore]

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[2]
DEFAULT_SPEC = REPO_ROOT / ".." / "shared" / "reference" / "stripe-openapi" / "spec3-2023-09.yaml"
OUTPUT = HERE / "subset.json"

REF_PREFIX = "#/components/schemas/"
ROOTS = [
    "payment_intent",
    "charge",
    "error",
    "terminal.reader",
    "deleted_terminal.reader",
    "refund",
    "terminal.location",
    "deleted_terminal.location",
]
# Response envelopes that the spec only has inline: (stored name, path, method).
INLINE_ROOTS = [
    ("payment_intent_list", "/v1/payment_intents", "get"),
    ("payment_intent_search_result", "/v1/payment_intents/search", "get"),
    ("terminal_reader_list", "/v1/terminal/readers", "get"),
    ("refund_list", "/v1/refunds", "get"),
    ("terminal_location_list", "/v1/terminal/locations", "get"),
]
# Documentation-only keys; validators ignore them and they are most of the bytes.
DOC_KEYS = {"description", "title"}
SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf")
SIZE_LIMIT = 1_500_000

Schema = dict[str, Any]


def rewrite(schema: Schema) -> Schema:
    """Return a structure-only copy of one schema object, recursing into subschemas."""
    out: Schema = {}
    for key, value in schema.items():
        if key in DOC_KEYS or key.startswith("x-"):
            continue
        if key == "properties":
            value = {name: rewrite(sub) for name, sub in value.items()}
        elif key in SUBSCHEMA_LISTS:
            value = [rewrite(sub) for sub in value]
        elif key in ("items", "not", "additionalProperties") and isinstance(value, dict):
            value = rewrite(value)
        out[key] = value

    # String enums in the 2023 spec are older than the stripe package we target:
    # enforce the type, not the values. (Boolean enums such as `deleted: [true]` stay.)
    if out.get("type") == "string":
        out.pop("enum", None)

    # Stripe writes `nullable: true` where OAS 3.0 validators ignore it (beside
    # anyOf/$ref, and on enums, whose values are checked before nullable is looked at).
    if out.get("nullable") is True:
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
        if "$ref" in out or any(key in out for key in SUBSCHEMA_LISTS):
            del out["nullable"]
            out = {"anyOf": [out, {"enum": [None]}]}
    return out


def referenced_names(node: Any) -> set[str]:
    """Names of all component schemas that `node` refers to directly."""
    if isinstance(node, dict):
        found = set()
        for key, value in node.items():
            if key == "$ref":
                if not value.startswith(REF_PREFIX):
                    raise ValueError(f"unexpected $ref {value!r}")
                found.add(value[len(REF_PREFIX) :])
            else:
                found |= referenced_names(value)
        return found
    if isinstance(node, list):
        return set().union(*(referenced_names(item) for item in node))
    return set()


def build_subset(spec: Schema, source_name: str, source_sha256: str) -> Schema:
    components = spec["components"]["schemas"]
    kept: dict[str, Schema] = {name: rewrite(components[name]) for name in ROOTS}
    for name, path, method in INLINE_ROOTS:
        if name in components:
            raise ValueError(f"{name!r} would shadow a component schema")
        response = spec["paths"][path][method]["responses"]["200"]
        kept[name] = rewrite(response["content"]["application/json"]["schema"])

    # Transitive closure: keep every schema that a kept schema refers to.
    pending = set().union(*(referenced_names(schema) for schema in kept.values()))
    while pending:
        name = pending.pop()
        if name not in kept:
            kept[name] = rewrite(components[name])
            pending |= referenced_names(kept[name]) - kept.keys()

    return {
        "openapi": spec["openapi"],
        "info": {
            "title": "Stripe API: subset for readerhost tests (structure only, see README.md)",
            "version": spec["info"]["version"],
            "license": {"name": "MIT (Stripe, Inc.), see the LICENSE file beside subset.json"},
            "x-source": {"file": source_name, "sha256": source_sha256},
        },
        "components": {"schemas": kept},
    }


def main(argv: list[str]) -> int:
    spec_path = Path(argv[1]) if len(argv) > 1 else DEFAULT_SPEC
    raw = spec_path.read_bytes()
    spec = yaml.load(raw, Loader=yaml.CSafeLoader)
    subset = build_subset(spec, spec_path.name, hashlib.sha256(raw).hexdigest())

    # Sorted keys and a fixed layout so that regenerating gives an identical file.
    text = json.dumps(subset, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    OUTPUT.write_text(text, encoding="utf-8")
    size = len(text.encode("utf-8"))
    count = len(subset["components"]["schemas"])
    print(f"wrote {OUTPUT} ({count} schemas, {size} bytes)")
    if size > SIZE_LIMIT:
        # The closure grew: prune expandable references (see README.md) before committing.
        print(f"warning: larger than {SIZE_LIMIT} bytes", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
