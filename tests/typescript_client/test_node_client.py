"""The TypeScript client for Node.js (clients/typescript): its protocol module is what the OpenRPC
document makes, and its own tests (node's test runner) pass against real readerhostd processes
that they start, kill with SIGKILL and start again.

The compiler and Node's types come from clients/typescript/package-lock.json, installed by
`./dev setup` (npm ci): never downloaded here. The client and its tests are compiled here, offline,
so that the tests always run the source as it is. They pass with Debian 12's nodejs 18 and npm 9
(what .ci/run installs) as with NodeSource's node 20: Node's types are those of the oldest node the
package supports, so the compiler refuses an API that node lacks.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from support.daemon import daemon_process

from readerhost.daemon.api.methods import METHODS
from readerhost.daemon.api.openrpc import document
from readerhost.daemon.api.typescript import method_name, typescript_module

PACKAGE = Path(__file__).resolve().parents[2] / "clients" / "typescript"
PROTOCOL_MODULE = PACKAGE / "src" / "protocol.ts"
NODE = shutil.which("node")
NPM = shutil.which("npm")
TSC = PACKAGE / "node_modules" / "typescript" / "bin" / "tsc"
TAP_COUNTS = re.compile(r"^# (pass|fail|cancelled|skipped|todo) (\d+)$", re.MULTILINE)
NODE_TESTS = sorted(path.stem for path in (PACKAGE / "test").glob("*.test.ts"))
MANIFEST = PACKAGE / "package.json"

no_node = pytest.mark.skipif(
    NODE is None, reason="node is not installed (Debian's nodejs package; .ci/run installs it)"
)
no_compiler = pytest.mark.skipif(
    not TSC.is_file(), reason="typescript is not installed: run ./dev setup (npm ci in clients/typescript)"
)


def oldest_supported_node() -> int:
    """The major version in package.json's engines.node, which reads ">=N"."""
    wanted = json.loads(MANIFEST.read_text())["engines"]["node"]
    match = re.fullmatch(r">=(\d+)", wanted)
    assert match, f"engines.node is {wanted!r}: these tests read only >=N"
    return int(match[1])


@pytest.fixture(scope="module")
def node() -> str:
    """The node to run, if the package supports it (engines.node); else the test skips, saying why."""
    assert NODE is not None
    version = subprocess.run([NODE, "--version"], capture_output=True, text=True, timeout=30, check=True).stdout.strip()
    if int(version.removeprefix("v").split(".")[0]) < oldest_supported_node():
        pytest.skip(f"node {version} is older than the client supports (Node.js {oldest_supported_node()} or newer)")
    return NODE


def test_nodes_types_are_those_of_the_oldest_node_the_client_supports() -> None:
    # Debian 12's nodejs is 18: with its types the compiler refuses what only a newer node has.
    types = json.loads(MANIFEST.read_text())["devDependencies"]["@types/node"]
    assert int(types.split(".")[0]) == oldest_supported_node(), (
        f"@types/node {types} is not of Node.js {oldest_supported_node()}, the oldest package.json's engines allows"
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


@pytest.mark.parametrize(
    ("document", "example"),
    [(PACKAGE / "README.md", "sell.ts"), (PACKAGE.parents[1] / "docs" / "pos-protocol.md", "capture.ts")],
)
def test_the_documents_examples_are_the_examples_the_tests_compile(document: Path, example: str) -> None:
    shown = re.findall(r"```ts\n(.*?)```", document.read_text(), re.DOTALL)
    assert (PACKAGE / "examples" / example).read_text() in shown


@pytest.fixture(scope="module")
def compiled(node: str) -> Path:
    """The client and its tests, compiled into clients/typescript/build/."""
    done = subprocess.run(
        [node, str(TSC), "-p", "tsconfig.test.json"],
        cwd=PACKAGE, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return PACKAGE / "build" / "test"


@no_node
@no_compiler
@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", NODE_TESTS)
def test_the_node_tests_pass_against_a_real_daemon(name: str, node: str, compiled: Path) -> None:
    env = {**os.environ, "READERHOST_PYTHON": sys.executable}
    done = subprocess.run(
        [node, "--test", "--test-reporter=tap", str(compiled / f"{name}.js")],
        cwd=PACKAGE, env=env, capture_output=True, text=True, timeout=280, check=False,
    )  # fmt: skip
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    counts = {kind: int(n) for kind, n in TAP_COUNTS.findall(done.stdout)}
    assert counts.get("pass") is not None, report
    assert counts.get("fail", 0) == counts.get("cancelled", 0) == counts.get("todo", 0) == 0, report
    if counts["pass"] == 0 and counts.get("skipped", 0) > 0:
        pytest.skip("; ".join(re.findall(r"^ok \d+ - .*# SKIP (.*)$", done.stdout, re.MULTILINE)) or "node skipped it")
    assert counts["pass"] > 0, report


POS_SCRIPT = """
import { NotFoundError, ReaderhostClient } from "readerhost-client";
const client = await ReaderhostClient.connect({ path: process.argv[2] });
const status = await client.statusGet();
const missing = await client.paymentGet({ order_id: "PACKED-NOBODY" }).catch((error) => error);
console.log(JSON.stringify({ boot_id: status.boot_id, not_found: missing instanceof NotFoundError }));
client.close();
"""


@no_node
@no_compiler
@pytest.mark.skipif(NPM is None, reason="npm is not installed (Debian's npm package; .ci/run installs it)")
@pytest.mark.timeout(300)
def test_the_packed_package_installs_alone_into_a_pos_project_and_talks_to_a_daemon(node: str, tmp_path: Path) -> None:
    # As a POS maker gets it: npm pack (which builds dist/), then npm install of the tarball, offline.
    assert NPM is not None
    npm = [NPM, "--offline", "--no-audit", "--no-fund", "--loglevel=error"]
    packed = subprocess.run(
        [*npm, "pack", "--pack-destination", str(tmp_path)],
        cwd=PACKAGE, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert packed.returncode == 0, packed.stdout + packed.stderr
    (tarball,) = tmp_path.glob("readerhost-client-*.tgz")
    pos = tmp_path / "pos"
    pos.mkdir()
    (pos / "package.json").write_text('{"name": "a-pos", "private": true, "type": "module"}\n')
    installed = subprocess.run(
        [*npm, "install", str(tarball)], cwd=pos, capture_output=True, text=True, timeout=240, check=False
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    package = pos / "node_modules" / "readerhost-client"
    assert (package / "dist" / "index.d.ts").is_file()
    assert not (package / "src").exists()
    assert sorted(path.name for path in (pos / "node_modules").iterdir() if not path.name.startswith(".")) == [
        "readerhost-client"
    ], "the package brought runtime dependencies"
    (pos / "pos.mjs").write_text(POS_SCRIPT)
    (tmp_path / "daemon").mkdir()
    with daemon_process(tmp_path / "daemon") as daemon:
        ran = subprocess.run(
            [node, "pos.mjs", str(daemon.socket_path)], cwd=pos, capture_output=True, text=True, timeout=60, check=False
        )
        assert ran.returncode == 0, ran.stdout + ran.stderr
        seen = json.loads(ran.stdout)
        assert seen["not_found"] is True
        with socket.socket(socket.AF_UNIX) as raw:
            raw.connect(str(daemon.socket_path))
            banner = json.loads(raw.makefile().readline())
        assert seen["boot_id"] == banner["params"]["boot_id"]
