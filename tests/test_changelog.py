"""The changelogs and the versions agree: the newest release in each project's CHANGELOG.md is its
pyproject's version (the daemon's at the root, readerhost-client's in clients/python/)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECTS = [ROOT, ROOT / "clients" / "python"]
RELEASE = re.compile(r"^## \[(?P<version>\d+\.\d+\.\d+)\] - (?P<date>\d{4}-\d{2}-\d{2})$", re.MULTILINE)


@pytest.mark.parametrize("project", PROJECTS, ids=lambda project: project.relative_to(ROOT).as_posix() or ".")
def test_the_newest_release_in_the_changelog_is_the_packaged_version(project: Path) -> None:
    changelog = (project / "CHANGELOG.md").read_text(encoding="utf-8")
    version = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    releases = RELEASE.findall(changelog)
    assert releases, "CHANGELOG.md has no release heading like '## [0.1.0] - 2026-11-26'"
    assert releases[0][0] == version
    assert changelog.index("## [Unreleased]") < changelog.index(f"## [{version}]")


@pytest.mark.parametrize("project", PROJECTS, ids=lambda project: project.relative_to(ROOT).as_posix() or ".")
def test_the_licence_file_is_the_licence_pyproject_declares(project: Path) -> None:
    declared = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))["project"]["license"]
    assert declared == "Apache-2.0"
    text = (project / "LICENSE").read_text(encoding="utf-8")
    assert text.lstrip().startswith("Apache License\n")
    assert "Version 2.0, January 2004" in text


def test_both_programs_report_the_packaged_version() -> None:
    import subprocess
    import sys

    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    for program, module in (("readerhostd", "readerhost.daemon.app"), ("readerhostctl", "readerhost.daemon.ctl")):
        done = subprocess.run(
            [sys.executable, "-m", module, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
        assert (done.returncode, done.stdout.strip()) == (0, f"{program} {version}"), done.stderr
