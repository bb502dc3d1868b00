"""The Promela model of the money core (model/money.pml), checked with SPIN: the model verifies with no
error over its whole state space within each configuration's bounds, every mutant (the model with one
known mistake) is rejected with a counterexample trail that replays and names the property it breaks,
and every function docs/model.md maps a model step to exists (docs/model.md)."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "model" / "money.pml"
TABLE = ROOT / "docs" / "model.md"

needs_spin = pytest.mark.skipif(
    shutil.which("spin") is None or shutil.which("gcc") is None,
    reason="spin or gcc is not installed (apt install spin gcc; .ci/run does)",
)

# The proof: each configuration explored exhaustively (docs/model.md, "Bounds"). Every one has one
# crash at any step and one lost answer; the other faults are split so that the whole check fits CI.
PROOFS = {
    "network": ["-DDAYS=0", "-DDECLINES=0", "-DGIVE_UPS=0"],  # + a 409 in flight, a saved 500 (applied or not)
    "forgotten_keys": ["-DSLOWS=0", "-DERRORS=0", "-DDECLINES=0"],  # + a day passing, the customer's wait ending
    "declines": ["-DSLOWS=0", "-DERRORS=0", "-DDAYS=0", "-DGIVE_UPS=0"],  # + a decline (card or increment)
    # + a 409 in flight and the wall clock stepping back (docs/model.md, Findings)
    "clock_back": ["-DCLOCK_BACKS=1", "-DERRORS=0", "-DDAYS=0", "-DDECLINES=0", "-DGIVE_UPS=0"],
}
CLOCK_BACK = PROOFS["clock_back"]

# Each mutant, the property SPIN must find broken, and the faults it runs with: all of them, or none
# for a mistake that needs no fault to show (SPIN's search then reaches it sooner).
NO_FAULTS = [f"-D{budget}=0" for budget in ("CRASHES", "LOSSES", "SLOWS", "ERRORS", "DAYS", "DECLINES", "GIVE_UPS")]
MUTANTS = {
    "M_SEND_BEFORE_KEY": ("one_payment_intent_per_attempt", []),
    "M_NEW_KEY_NO_TRUTH": ("one_payment_intent_per_attempt", []),
    "M_TELL_BEFORE_COMMIT": ("told_state_is_committed", []),
    "M_RETRY_CREATE_NEW_PI": ("one_payment_intent_per_attempt", []),
    "M_SECOND_LIVE_ATTEMPT": ("at_most_one_successful_attempt", NO_FAULTS),
    "M_REFUND_AUTHORISED": ("never_more_refunded_than_captured", NO_FAULTS),
    "M_NEW_KEY_AGE_DOUBT": ("one_payment_intent_per_attempt", CLOCK_BACK),
}


@dataclass(frozen=True)
class Verification:
    output: str

    def figure(self, pattern: str) -> int:
        found = re.search(pattern, self.output)
        assert found, f"{pattern!r} not in pan's output:\n{self.output}"
        return int(found.group(1))

    @property
    def errors(self) -> int:
        return self.figure(r"errors: (\d+)")

    @property
    def states(self) -> int:
        return self.figure(r"(\d+) states, stored")


def verify(folder: Path, defines: list[str], optimise: bool = False) -> Verification:
    """spin -a writes pan.c into its working directory: build and run the verifier in `folder`."""
    shutil.copy(MODEL, folder / MODEL.name)
    subprocess.run(["spin", *defines, "-a", MODEL.name], cwd=folder, check=True, capture_output=True)
    # -O2 takes 10 s to compile pan.c and halves the search: worth it for millions of states only.
    # SAFETY: assertions and end states (the properties are assertions); COLLAPSE: lossless compression
    # of the stored states (never BITSTATE: that would be a sample, not a proof).
    subprocess.run(
        ["gcc", "-O2" if optimise else "-O0", "-w", "-DSAFETY", "-DCOLLAPSE", "-DMEMLIM=3072", "-o", "pan", "pan.c"],
        cwd=folder,
        check=True,
        capture_output=True,
    )
    run = subprocess.run(
        ["nice", "-n", "5", "./pan", "-m10000", "-w24"], check=False, cwd=folder, capture_output=True, text=True
    )
    return Verification(run.stdout + run.stderr)


@needs_spin
@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", sorted(PROOFS))
def test_the_model_verifies_over_its_whole_state_space(tmp_path: Path, name: str) -> None:
    result = verify(tmp_path, PROOFS[name], optimise=name == "forgotten_keys")
    assert result.errors == 0, result.output
    # Exhaustive within the bounds: nothing cut off by memory, depth or an error.
    assert "Search not completed" not in result.output, result.output
    assert "max search depth too small" not in result.output, result.output
    assert "Full statespace search" in result.output
    assert result.states > 100_000, result.output  # the model was really explored, not stopped at once
    assert not list(tmp_path.glob("*.trail"))


@needs_spin
@pytest.mark.timeout(120)
@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_every_mutant_is_rejected_with_a_trail_that_replays(tmp_path: Path, mutant: str) -> None:
    broken, faults = MUTANTS[mutant]
    defines = [f"-D{mutant}", *faults]
    result = verify(tmp_path, defines)
    assert result.errors > 0, result.output
    trail = tmp_path / f"{MODEL.name}.trail"
    assert trail.is_file(), result.output
    replay = subprocess.run(
        ["spin", *defines, "-t", MODEL.name], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    replayed = replay.stdout + replay.stderr
    assert f"PROPERTY VIOLATED: {broken}" in replayed, replayed
    assert "assertion violated" in replayed, replayed


# -- the table of docs/model.md -------------------------------------------------------------------

ROW = re.compile(r"^\|\s*(?P<step>[^|]+?)\s*\|\s*`(?P<model>[^`]+)`\s*\|\s*(?P<code>[^|]+?)\s*\|$")
FUNCTION = re.compile(r"`(?P<module>[\w.]+):(?P<name>[\w.]+)`")


def table_rows() -> list[tuple[str, str, list[tuple[str, str]]]]:
    rows = []
    for line in TABLE.read_text().splitlines():
        found = ROW.match(line)
        if found:
            functions = [(f["module"], f["name"]) for f in FUNCTION.finditer(found["code"])]
            rows.append((found["step"], found["model"], functions))
    return rows


def test_the_table_maps_model_steps_to_code() -> None:
    rows = table_rows()
    assert len(rows) >= 15, "docs/model.md's table was not found or lost rows"
    assert all(functions for _, _, functions in rows), [step for step, _, functions in rows if not functions]


@pytest.mark.parametrize(("step", "in_model", "functions"), table_rows(), ids=lambda value: str(value)[:40])
def test_every_step_of_the_table_is_in_the_model_and_its_functions_exist(
    step: str, in_model: str, functions: list[tuple[str, str]]
) -> None:
    assert in_model in MODEL.read_text(), f"{step}: {in_model!r} is not in model/money.pml"
    for module_name, name in functions:
        module = importlib.import_module(f"readerhost.{module_name}")
        target: object = module
        for part in name.split("."):
            assert hasattr(target, part), f"{step}: {module_name}:{name} does not exist"
            target = getattr(target, part)
        assert callable(target), f"{step}: {module_name}:{name} is not a function"
