"""The TypeScript client for Node.js (clients/typescript): its protocol module is what the OpenRPC
document makes, and its own tests (node's test runner) pass against real readerhostd processes
that they start, kill with SIGKILL and start again.

The compiler and Node's types come from clients/typescript/package-lock.json, installed by
`./dev setup` (npm ci): never downloaded here. The client and its tests are compiled here, offline,
so that the tests always run the source as it is.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from readerhost.daemon.api.methods import METHODS
from readerhost.daemon.api.openrpc import document
from readerhost.daemon.api.typescript import method_name, typescript_module

PACKAGE = Path(__file__).resolve().parents[2] / "clients" / "typescript"
PROTOCOL_MODULE = PACKAGE / "src" / "protocol.ts"
NODE = shutil.which("node")
TSC = PACKAGE / "node_modules" / "typescript" / "bin" / "tsc"
NODE_TESTS = sorted(path.stem for path in (PACKAGE / "test").glob("*.test.ts"))

no_node = pytest.mark.skipif(
    NODE is None, reason="node is not installed (Debian's nodejs package; .ci/run installs it)"
)
no_compiler = pytest.mark.skipif(
    not TSC.is_file(), reason="typescript is not installed: run ./dev setup (npm ci in clients/typescript)"
)


def test_the_protocol_module_is_what_the_openrpc_document_makes() -> None:
    assert PROTOCOL_MODULE.read_text() == typescript_module(document()), (
        "the method table or a shape changed: "
        "python -m readerhost.daemon.api.typescript clients/typescript/src/protocol.ts"
    )


def test_the_client_has_a_method_for_each_method_of_the_table() -> None:
    text = PROTOCOL_MODULE.read_text()
    for method in METHODS:
        assert f"  {method_name(method.name)}(params" in text, method.name
        assert f'    return this.call("{method.name}", params, options);' in text, method.name


@pytest.fixture(scope="module")
def compiled() -> Path:
    """The client and its tests, compiled into clients/typescript/build/."""
    assert NODE is not None
    done = subprocess.run(
        [NODE, str(TSC), "-p", "tsconfig.test.json"],
        cwd=PACKAGE, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return PACKAGE / "build" / "test"


@no_node
@no_compiler
@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", NODE_TESTS)
def test_the_node_tests_pass_against_a_real_daemon(name: str, compiled: Path) -> None:
    assert NODE is not None
    env = {**os.environ, "READERHOST_PYTHON": sys.executable}
    done = subprocess.run(
        [NODE, "--test", str(compiled / f"{name}.js")],
        cwd=PACKAGE, env=env, capture_output=True, text=True, timeout=280, check=False,
    )  # fmt: skip
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    passed = re.search(r"^# pass (\d+)$", done.stdout, re.MULTILINE)
    assert passed is not None, report
    assert int(passed.group(1)) > 0, report
    assert re.search(r"^# (fail|cancelled|skipped|todo) [1-9]", done.stdout, re.MULTILINE) is None, report
