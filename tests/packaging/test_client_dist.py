"""readerhost-client as a POS maker gets it: its wheel, built offline from clients/python/, installed
alone into a fresh venv (no Stripe SDK, no daemon), where its own tests pass, it takes a payment
through a real readerhostd started from this suite's venv, and mypy holds a POS to its types (py.typed)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

import pytest
from support.daemon import daemon_process

REPO = Path(__file__).resolve().parents[2]
CLIENT = REPO / "clients" / "python"
VERSION = tomllib.loads((CLIENT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
TIMEOUT_S = 120

# A POS program: blocking client, subscribe, pay, capture; prints what a POS would check.
POS = """
import sys
from readerhost.client import Client, NotFound

def of(payment_id, state):
    return lambda e: e.type == "payment.state" and e.data.get("payment_id") == payment_id and e.data["state"] == state

with Client.connect(sys.argv[1]) as pos:
    pos.subscribe(["payment", "reader"])
    payment_id = pos.start_payment("DIST-1", 1250)["payment_id"]
    pos.wait_for_event(lambda e: e.type == "reader.input_options", 15)
    pos.present("visa")
    pos.wait_for_event(of(payment_id, "authorized"), 15)
    pos.capture(payment_id)
    pos.wait_for_event(of(payment_id, "captured"), 15)
    try:
        pos.get_payment(order_id="DIST-404")
    except NotFound as missing:
        print("missing", missing.reason)
    print(pos.protocol.major, pos.get_payment(payment_id)["state"])
"""


@dataclass(frozen=True)
class Installed:
    wheel: Path
    python: Path  # the fresh venv's


def run(*command: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command], cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    work = tmp_path_factory.mktemp("client-dist")
    # A copy, so the build leaves nothing in the checkout; the LICENSE link becomes the file it names.
    source = work / "source"
    shutil.copytree(CLIENT, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    wheels = work / "wheels"
    built = run(sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "--no-index",
                "--no-deps", "--no-build-isolation", "--wheel-dir", wheels, source, cwd=work)  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("*.whl")
    venv = work / "venv"
    made = run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=work)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    # This venv's pip installs into the fresh one: offline, the wheel alone, nothing resolved.
    put = run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--disable-pip-version-check",
              "--no-index", "--no-deps", wheel, cwd=work)  # fmt: skip
    assert put.returncode == 0, put.stderr
    return Installed(wheel, python)


def test_the_wheel_holds_the_client_alone_typed_with_no_dependencies(installed: Installed) -> None:
    assert installed.wheel.name == f"readerhost_client-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
        metadata = Parser().parsestr(wheel.read(f"readerhost_client-{VERSION}.dist-info/METADATA").decode())
    ours = {name for name in names if not name.startswith(f"readerhost_client-{VERSION}.dist-info/")}
    assert ours == {f"readerhost/client/{path.name}" for path in (CLIENT / "src" / "readerhost" / "client").iterdir()
                    if path.suffix == ".py" or path.name == "py.typed"}  # fmt: skip
    assert "readerhost/__init__.py" not in names  # a portion of the namespace the daemon shares
    assert f"readerhost_client-{VERSION}.dist-info/licenses/LICENSE" in names
    assert metadata["Name"] == "readerhost-client"
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata.get_all("Requires-Dist") is None


def test_the_fresh_venv_has_the_client_and_neither_stripe_nor_the_daemon(installed: Installed, tmp_path: Path) -> None:
    probe = (
        "import importlib.util, readerhost.client\n"
        "print(readerhost.client.__file__)\n"
        "print([n for n in ('stripe', 'requests', 'readerhost.daemon') if importlib.util.find_spec(n)])\n"
    )
    done = run(installed.python, "-I", "-c", probe, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    where, others = done.stdout.splitlines()
    assert Path(where).is_relative_to(installed.python.parent.parent), where
    assert others == "[]"


def test_the_clients_own_tests_pass_where_only_it_is_installed(installed: Installed, tmp_path: Path) -> None:
    done = run(installed.python, "-m", "unittest", "discover", "-v", "-s", CLIENT / "tests", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    ran = [line for line in done.stderr.splitlines() if line.endswith("... ok")]
    assert len(ran) >= 6, done.stderr


def test_a_pos_with_only_the_client_pays_through_a_real_daemon(installed: Installed, tmp_path: Path) -> None:
    with daemon_process(tmp_path) as daemon:
        done = run(installed.python, "-I", "-c", POS, daemon.socket_path, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["missing NOT_FOUND", "1 captured"]


def test_a_pos_type_checks_against_the_installed_wheel(installed: Installed, tmp_path: Path) -> None:
    # mypy finds the client in the fresh venv, typed by its py.typed, and holds a POS to its signatures.
    pos = tmp_path / "pos.py"
    pos.write_text(
        "from readerhost.client import Client\n\n"
        "with Client.connect() as pos:\n"
        "    payment_id: str = pos.start_payment('A-1', 1250)['payment_id']\n"
        "    pos.start_payment('A-2', '12.50')\n"
    )
    done = run(sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", tmp_path / "cache",
               "--python-executable", installed.python, pos.name, cwd=tmp_path)  # fmt: skip
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1, done.stdout
    assert errors[0].startswith('pos.py:5: error: Argument 2 has incompatible type "str"; expected "int"'), done.stdout
