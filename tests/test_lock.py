"""requirements/kiosk.txt, the versions every kiosk installs, agrees with pyproject.toml: each
dependency of the kiosk extras is locked, at a version the project admits, with its hashes."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements" / "kiosk.txt"
KIOSK_EXTRAS = ("oled", "gpio", "serial", "ble")  # what systemd/install.sh and ./dev lock install
# Installed from the checkout beside the daemon, never from an index: not locked. {name: its folder}
FROM_THE_CHECKOUT = {"readerhost-client": ROOT / "clients" / "python"}
PIN = re.compile(r"^(?P<name>[A-Za-z0-9._-]+)==(?P<version>\S+) \\$", re.MULTILINE)


def locked() -> dict[str, tuple[str, int]]:
    """{name: (version, number of hashes)} from the lock file."""
    text = LOCK.read_text(encoding="utf-8")
    entries: dict[str, tuple[str, int]] = {}
    blocks = re.split(r"^(?=[A-Za-z0-9])", text, flags=re.MULTILINE)
    for block in blocks:
        pin = PIN.match(block)
        if pin:
            entries[canonicalize_name(pin["name"])] = (pin["version"], block.count("--hash=sha256:"))
    return entries


def checkout_version(name: str) -> str:
    project = tomllib.loads((FROM_THE_CHECKOUT[name] / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert canonicalize_name(project["name"]) == name
    version: str = project["version"]
    return version


def test_every_kiosk_dependency_is_locked_at_an_admitted_version_with_hashes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = [Requirement(text) for text in project["dependencies"]]
    for extra in KIOSK_EXTRAS:
        wanted += [Requirement(text) for text in project["optional-dependencies"][extra]]
    pins = locked()
    assert len(pins) >= len(wanted)
    assert not FROM_THE_CHECKOUT.keys() & pins.keys(), f"{LOCK.name} locks a project the checkout brings"
    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        if name in FROM_THE_CHECKOUT:
            assert requirement.specifier.contains(checkout_version(name)), f"pyproject.toml's {requirement}"
            continue
        assert name in pins, f"{requirement} is not in {LOCK.name}: run ./dev lock"
        version, hashes = pins[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{LOCK.name} has {name}=={version}, which pyproject.toml's {requirement} refuses: run ./dev lock"
        )
        assert hashes >= 1, f"{name} has no hash in {LOCK.name}"
    assert all(hashes >= 1 for _, hashes in pins.values())


def test_the_installer_installs_the_lock_and_nothing_resolved_anew() -> None:
    install = (ROOT / "systemd" / "install.sh").read_text(encoding="utf-8")
    assert "LOCK=requirements/kiosk.txt" in install
    assert '--require-hashes -r "$CHECKOUT/$LOCK"' in install
    assert '--no-deps "$build/clients/python" "$build"' in install
