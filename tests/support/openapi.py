"""Check JSON response bodies against Stripe's OpenAPI description.

The schemas come from stripe_openapi/subset.json, a structure-only extract of Stripe's
spec (see stripe_openapi/README.md): required fields, types, nullability and nesting
are enforced; enum values are not, because the 2023 spec predates our stripe package.
"""

from __future__ import annotations

import difflib
import functools
import json
from pathlib import Path
from typing import Any

# jsonschema ships no type information (types-jsonschema isn't a test dependency).
from jsonschema.exceptions import (  # type: ignore[import-untyped, unused-ignore]
    ValidationError,
    best_match,
)
from openapi_schema_validator import OAS30Validator
from referencing import Registry
from referencing.jsonschema import DRAFT4

_SUBSET_PATH = Path(__file__).resolve().parent / "stripe_openapi" / "subset.json"
# The subset is registered under this URI so its local "#/components/..." refs resolve.
_SUBSET_URI = "urn:readerhost:stripe-openapi-subset"
_MAX_REPORTED_ERRORS = 5
_MAX_MESSAGE_CHARS = 300


@functools.cache
def _subset() -> dict[str, Any]:
    with _SUBSET_PATH.open(encoding="utf-8") as handle:
        document: dict[str, Any] = json.load(handle)
    return document


@functools.cache
def _registry() -> Registry[Any]:
    # OAS 3.0 schemas resolve references like JSON Schema draft 4.
    registry: Registry[Any] = Registry().with_resource(_SUBSET_URI, DRAFT4.create_resource(_subset()))
    return registry


def stripe_schema_names() -> list[str]:
    """Names accepted by assert_matches_stripe_schema, sorted."""
    return sorted(_subset()["components"]["schemas"])


@functools.cache
def _validator(schema_name: str) -> Any:  # an OAS30Validator instance
    if schema_name not in _subset()["components"]["schemas"]:
        # There are hundreds of names (the referenced closure), so suggest, don't list.
        close = difflib.get_close_matches(schema_name, stripe_schema_names(), n=5)
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        raise ValueError(f"unknown Stripe schema {schema_name!r}{hint}; see stripe_schema_names()")
    pointer = schema_name.replace("~", "~0").replace("/", "~1")
    schema = {"$ref": f"{_SUBSET_URI}#/components/schemas/{pointer}"}
    return OAS30Validator(schema, registry=_registry())


def _describe(error: ValidationError) -> str:
    # For anyOf failures (nullable and expandable fields), report the most relevant
    # branch's error rather than the bare "is not valid under any of the given schemas".
    leaf = best_match([error])
    message = leaf.message
    if len(message) > _MAX_MESSAGE_CHARS:
        message = message[:_MAX_MESSAGE_CHARS] + "..."
    return f"{leaf.json_path}: {message}"


def assert_matches_stripe_schema(body: object, schema_name: str) -> None:
    """Raise AssertionError naming the offending JSON paths if `body` doesn't match.

    Raises ValueError if `schema_name` is not in stripe_schema_names().
    """
    errors: list[ValidationError] = sorted(_validator(schema_name).iter_errors(body), key=lambda error: error.json_path)
    if not errors:
        return
    lines = [_describe(error) for error in errors[:_MAX_REPORTED_ERRORS]]
    if len(errors) > _MAX_REPORTED_ERRORS:
        lines.append(f"... and {len(errors) - _MAX_REPORTED_ERRORS} more")
    plural = "" if len(errors) == 1 else "s"
    raise AssertionError(
        f"body does not match Stripe schema {schema_name!r} ({len(errors)} error{plural}):\n  " + "\n  ".join(lines)
    )
