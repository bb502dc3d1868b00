"""The client imports nothing outside the standard library: read from its source, and seen in a
fresh interpreter after importing every module of it."""

from __future__ import annotations

import ast
import subprocess
import sys
import unittest
from pathlib import Path

import readerhost.client

PACKAGE = Path(readerhost.client.__file__).parent
MODULES = sorted(f"readerhost.client.{path.stem}" for path in PACKAGE.glob("*.py") if path.stem != "__init__")


def imported_names(source: Path) -> set[str]:
    """The top-level names of every absolute import in `source` (relative ones stay in the package)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


class StandardLibraryOnly(unittest.TestCase):
    def test_every_import_in_the_source_is_the_standard_librarys(self) -> None:
        sources = sorted(PACKAGE.glob("*.py"))
        self.assertGreater(len(sources), 5)
        for source in sources:
            with self.subTest(source=source.name):
                self.assertLessEqual(imported_names(source), set(sys.stdlib_module_names) | {"__future__"})

    def test_importing_every_module_loads_only_the_standard_library(self) -> None:
        probe = (
            "import importlib, sys\n"
            "before = set(sys.modules)\n"
            f"for name in {MODULES!r}: importlib.import_module(name)\n"
            "new = set(sys.modules) - before\n"
            "ours = {n for n in new if n == 'readerhost' or n.startswith('readerhost.client')}\n"
            "print(sorted(n for n in new - ours if n.split('.')[0] not in sys.stdlib_module_names))\n"
        )
        done = subprocess.run(
            [sys.executable, "-I", "-c", probe], capture_output=True, text=True, timeout=60, check=False
        )
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout.strip(), "[]")

    def test_it_says_it_is_typed(self) -> None:
        self.assertTrue((PACKAGE / "py.typed").is_file())


if __name__ == "__main__":
    unittest.main()
