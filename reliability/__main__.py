"""`python -m reliability [--seed N] [--payments N] [--sdk-payments N] [--kills N] [--frames N] [--progress N]
[--seeds N] [--only soak soak-sdk crash fuzz sim] [--no-write]`

Runs the documented reliability runs from one seed and writes their figures into
docs/reliability.md (each run between `<!-- reliability:RUN -->` markers), as `python -m bench` does
for docs/performance.md. Exits 1 if any run found a violation.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bench.support import workdir

if TYPE_CHECKING:  # the runs' modules load only when their run is asked for
    from reliability.crash import CrashResult

DOC = Path(__file__).resolve().parent.parent / "docs" / "reliability.md"
RUNS = ("soak", "soak-sdk", "crash", "fuzz", "sim")  # soak-sdk: the soak with a protocol 2 serial reader


def _counts(counter: dict[str, int]) -> str:
    return ", ".join(f"{kind} {n}" for kind, n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))) or "none"


def soak(seed: int, payments: int, *, sdk_reader: bool = False) -> tuple[list[str], bool]:
    """`sdk_reader`: with a protocol 2 serial reader (a Terminal SDK bridge) instead of the simulated one."""
    from reliability.soak import SETTLE_BOUND_S, run_soak

    with workdir("rel-soak-sdk-" if sdk_reader else "rel-soak-") as folder:
        result = run_soak(folder, seed=seed, payments=payments, sdk_reader=sdk_reader)
    reader = ", at a protocol 2 serial reader in its own process" if sdk_reader else ""
    rows = [
        f"| payments (orders sold by {result.cashiers} concurrent POS clients{reader}) | {result.payments} |",
        f"| final states | {_counts(result.final_states)} |",
        f"| refunds, by final state | {_counts(result.refunds) or 'none'} |",
        *(
            [
                "| stored offline by the reader's SDK, then forwarded by it | "
                f"{result.reader_events['stored']}, {result.reader_events['forwarded']} |",
                f"| the reader's confirms: answered, failed (declines, Stripe not reached) | "
                f"{result.reader_events['processed']}, {result.reader_events['process_failed']} |",
            ]
            if sdk_reader
            else []
        ),
        f"| faults injected (requests hit), by kind | {sum(result.faults.values())}: {_counts(result.faults)} |",
        f"| time to settle after the faults stopped (bound {SETTLE_BOUND_S:.0f} s) | {result.settle_s:.1f} s |",
        f"| run time | {result.seconds:.0f} s |",
        f"| invariant violations | {len(result.violations)} |",
        f"| secrets or card numbers found (log, store, socket, process) | {len(result.secrets)} |",
        f"| orders stuck past the POS's patience | {len(result.stuck)} |",
    ]
    details = [str(v) for v in result.violations] + [str(s) for s in result.secrets] + result.stuck
    title = "Fault soak with a protocol 2 serial reader" if sdk_reader else "Fault soak"
    return _section(title, rows, details), result.clean


def crash(seed: int, kills: int) -> tuple[list[str], bool]:
    from reliability.crash import run_crashes

    with workdir("rel-crash-") as folder:
        result = run_crashes(folder, seed=seed, kills=kills)
    return crash_section(result), result.clean


def crash_section(result: CrashResult) -> list[str]:
    rows = [
        f"| SIGKILLs (each followed by a restart and a full check) | {result.kills} |",
        f"| at a random instant | {result.random_kills} |",
        f"| with a request held in flight by the emulator | {_counts(result.chosen_kills)} |",
        f"| payments in the store at the end | {result.payments} |",
        f"| orders sold again after their attempts ended (sales; orders with several attempts at the end) | "
        f"{result.paid_again}; {result.orders_with_attempts} |",
        f"| refunds in the store at the end, by state | {_counts(result.refunds) or 'none'} |",
        f"| requests a kill cut off mid-body (dropped unanswered, as Stripe does) | {result.cut_off_requests} |",
        f"| run time | {result.seconds:.0f} s |",
        f"| invariant violations (distinct) | {len(result.violations)} |",
        f"| restarts that did not settle within the bound | {len(result.unsettled)} |",
        f"| deaths of the daemon the harness did not cause | {len(result.deaths)} |",
    ]
    details = [f"first found after restart {life}: {v}" for life, v in result.violations] + result.unsettled
    details += [str(death) for death in result.deaths]
    return _section("Crash harness", rows, details)


def fuzz(seed: int, frames: int, progress_every: int = 0) -> tuple[list[str], bool]:
    """`progress_every`: a line on how the run goes every so many frames (0: none)."""
    from reliability.fuzz import FuzzProgress, run_fuzz

    def show(progress: FuzzProgress) -> None:
        print(progress.line(), flush=True)

    with workdir("rel-fuzz-") as folder:
        result = run_fuzz(
            folder, seed=seed, frames=frames, progress=show if progress_every else None, progress_every=progress_every
        )
    rows = [
        f"| frames fuzzed (half hypothesis-generated, half mutated) | {result.frames} |",
        f"| messages received, by kind (error reason, result, event, banner) | {_counts(result.answers)} |",
        f"| connections closed for an oversized frame | {result.closes} |",
        f"| payments the well-behaved client completed meanwhile | {result.payments_completed} |",
        f"| run time | {result.seconds:.0f} s |",
        f"| problems (internal errors, malformed answers, no answer) | {len(result.problems)} |",
        f"| invariant violations | {len(result.violations)} |",
    ]
    details = result.problems[:20] + [str(v) for v in result.violations]
    return _section("Socket fuzzer", rows, details), result.clean


def simulation(seed: int, seeds: int, jobs: int) -> tuple[list[str], bool]:
    """Seeds seed .. seed + seeds - 1 of the deterministic simulation; a failing seed is printed as it fails."""
    from reliability.simulation.run import SeedResult, run_seeds

    def failed(outcome: SeedResult) -> None:
        print(
            f"seed {outcome.seed} FAILED (replay: python -m reliability --only sim --seed {outcome.seed} --seeds 1 "
            f"--no-write): {'; '.join([*map(str, outcome.violations), *outcome.problems][:5])}",
            flush=True,
        )

    result = run_seeds(seed, seeds, jobs=jobs, report=failed)
    rows = [
        f"| seeds (each a fresh world: orders, faults, crashes, clock jumps) | {result.seeds} (from {seed}) |",
        f"| payments | {result.payments} |",
        f"| Stripe requests (through stripe-python to the emulator in-process) | {result.requests} |",
        f"| faults injected (requests hit), by kind | {sum(result.faults.values())}: {_counts(result.faults)} |",
        f"| crashes (the core dropped and rebuilt from its SQLite file) | {result.crashes} |",
        f"| what the seeds met besides faults | {_counts(result.exercised)} |",
        f"| virtual time simulated; longest seed | {result.virtual_s / 3600:.0f} h; {result.longest_s / 3600:.1f} h |",
        f"| run time; seeds a second; processes | {result.seconds:.0f} s; {result.per_second:.1f}; {jobs} |",
        f"| seeds that failed (invariant violations, stalls, unexpected exceptions) | {len(result.failed)} |",
    ]
    details = [f"seed {o.seed}: {'; '.join([*map(str, o.violations), *o.problems][:3])}" for o in result.failed]
    return _section("Deterministic simulation", rows, details), not result.failed


def _section(title: str, rows: list[str], details: list[str]) -> list[str]:
    lines = [f"### {title}", "", "| | |", "|---|---|", *rows]
    if details:
        lines += ["", "Found:", "", *[f"- {d}" for d in details[:50]]]
    return lines


def write(key: str, body: list[str]) -> None:
    """Replace one run's section (between `<!-- reliability:KEY -->` markers); the others stay."""
    start, end = f"<!-- reliability:{key} -->", f"<!-- /reliability:{key} -->"
    text = DOC.read_text() if DOC.exists() else "# Reliability\n"
    block = "\n".join([start, *body, end])
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    DOC.write_text(pattern.sub(lambda _: block, text, count=1) if pattern.search(text) else f"{text}\n{block}\n")


def _commit() -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(DOC.parent), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except OSError:
        return "unknown"
    return done.stdout.strip() or "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reliability", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--payments", type=int, default=1000)
    parser.add_argument(
        "--sdk-payments", type=int, default=200, help="payments of the soak with a protocol 2 reader (soak-sdk)"
    )
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument(
        "--progress", type=int, default=0, metavar="FRAMES",
        help="fuzz: a line every so many frames (frames, frames/s, the daemon's RSS, Stripe requests); 0: none",
    )  # fmt: skip
    parser.add_argument("--seeds", type=int, default=1000, help="seeds of the simulation (sim), from --seed on")
    parser.add_argument("--jobs", type=int, default=1, help="processes the simulation's seeds are shared among (sim)")
    parser.add_argument("--only", nargs="+", choices=RUNS, default=list(RUNS))
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/reliability.md alone")
    args = parser.parse_args(argv)
    command = shlex.join(["python", "-m", "reliability", *(sys.argv[1:] if argv is None else argv)])
    stamp = (
        f"_Last run: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, `{command}`, seed {args.seed}, "
        f"at commit {_commit()}, on {platform.machine()} ({os.cpu_count()} cores) with Python "
        f"{platform.python_version()}._"
    )
    clean = True
    for name in args.only:
        started = time.monotonic()
        print(f"-- {name}: running...", flush=True)
        if name == "soak":
            lines, ok = soak(args.seed, args.payments)
        elif name == "soak-sdk":
            lines, ok = soak(args.seed, args.sdk_payments, sdk_reader=True)
        elif name == "crash":
            lines, ok = crash(args.seed, args.kills)
        elif name == "fuzz":
            lines, ok = fuzz(args.seed, args.frames, args.progress)
        else:
            lines, ok = simulation(args.seed, args.seeds, args.jobs)
        clean = clean and ok
        print("\n".join(lines), f"\n-- {name}: {time.monotonic() - started:.0f} s\n", flush=True)
        if not args.no_write:
            write(name, [*lines, "", stamp])
            print(f"-- wrote the {name} figures to {DOC}", flush=True)
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
