"""readerhost's version, as installed (pyproject.toml is its one source): for readerhostd and readerhostctl."""

from __future__ import annotations

import importlib.metadata


def version() -> str:
    try:
        return importlib.metadata.version("readerhost")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"
