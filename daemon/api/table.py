"""The shape of the POS method table: each method's name, its parameters and its handler.

Written to be read by more than the dispatcher: the clients are checked against it
(tests/client/test_method_table.py), and an OpenRPC document can be generated from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from .protocol import RpcError

JsonType = Literal["string", "integer", "number", "boolean", "array", "object"]
H = TypeVar("H")  # the handler's type, fixed by the module that serves the methods


@dataclass(frozen=True)
class Param:
    name: str
    type: JsonType
    summary: str
    required: bool = False


@dataclass(frozen=True)
class Method(Generic[H]):
    name: str
    summary: str
    params: tuple[Param, ...]
    handler: H

    def refuse_unknown(self, params: Mapping[str, Any]) -> None:
        """INVALID_PARAMS naming the first parameter the method does not have. The values are
        the handler's to check: each knows the clearest word for its own."""
        known = {param.name for param in self.params}
        for name in params:
            if name not in known:
                raise RpcError.invalid_params(name, f"unknown parameter {name!r}")
