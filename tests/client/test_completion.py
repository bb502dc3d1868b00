"""readerhostctl's bash completion: the packaged file is what the parser makes, and real bash completes
commands, operations, options and an option's choices with it."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from readerhost.daemon.ctl.completion import bash_completion

PACKAGED = Path(__file__).resolve().parents[2] / "systemd" / "bash-completion" / "readerhostctl"


def test_the_packaged_completion_is_what_the_parser_makes() -> None:
    assert PACKAGED.read_text() == bash_completion(), (
        "readerhostctl's options changed: python -m readerhost.daemon.ctl.completion "
        "> systemd/bash-completion/readerhostctl"
    )


def complete(line: str) -> list[str]:
    """What bash offers for the last word of `line` (a trailing space: a new, empty word)."""
    words = shlex.split(line) + ([""] if line.endswith(" ") else [])
    script = (
        f"source {shlex.quote(str(PACKAGED))}\n"
        f"COMP_WORDS=({' '.join(shlex.quote(word) for word in words)})\n"
        f"COMP_CWORD={len(words) - 1}\n"
        "_readerhostctl\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(["bash", "--norc", "-c", script], capture_output=True, text=True, timeout=30, check=True)
    assert done.stderr == ""
    return [word for word in done.stdout.splitlines() if word]


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
@pytest.mark.parametrize(
    ("line", "offered"),
    [
        ("readerhostctl st", ["status"]),
        ("readerhostctl re", ["refund", "reconcile", "reader"]),
        ("readerhostctl --json --socket /run/x.sock pa", ["pay"]),
        ("readerhostctl pay --cap", ["--capture"]),
        ("readerhostctl pay --capture ", ["auto", "manual"]),
        ("readerhostctl pay 1250 --of", ["--offline"]),
        ("readerhostctl list --state auth", ["authorized"]),
        ("readerhostctl watch --topic ", ["payment", "reader", "display", "queue", "system"]),
        ("readerhostctl reader ", ["register", "locations", "pair", "--help"]),
        ("readerhostctl reader register --lo", ["--location"]),
        ("readerhostctl capture --amount ", []),  # an amount: nothing to guess
    ],
)
def test_bash_completes_with_it(line: str, offered: list[str]) -> None:
    assert sorted(complete(line)) == sorted(offered)
