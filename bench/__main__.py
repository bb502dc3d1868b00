"""`python -m bench [--quick] [--only KEY ...] [--no-write]`: run the benchmarks, update docs/performance.md.

Each benchmark module has `run(quick: bool) -> Result`. Modules are imported only when they run, and
one that is not there is skipped with a line saying so. A full run (neither --quick nor --no-write)
rewrites the machine header and the sections it ran; the other sections stay as they were.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib
import importlib.metadata
import os
import platform
import re
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench.common import Result

MODULES = (
    "payment_overhead",
    "profile",
    "api_latency",
    "durability",
    "memory",
    "memory_load",
    "startup",
    "idle",
    "queue_drain",
    "oled",
    "reader_link",
    "create_truth",
)
DOC = Path(__file__).resolve().parent.parent / "docs" / "performance.md"


def key_of(module: str) -> str:
    return module.replace("_", "-")


def load(module: str) -> object | None:
    try:
        return importlib.import_module(f"bench.{module}")
    except ModuleNotFoundError as error:
        if error.name == f"bench.{module}":
            return None
        raise


def render(result: Result) -> str:
    parts = [f"### {result.title}", result.table, *result.notes]
    return "\n\n".join(parts)


def machine() -> list[str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() in ("model name", "Model", "Hardware") and value.strip():
                cpu = value.strip()
                if name.strip() == "model name":
                    break
    ram = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    versions = ", ".join(f"{name} {_version(name)}" for name in ("stripe", "pillow", "luma.oled", "luma.core"))
    return [
        f"- CPU: {cpu}, {os.cpu_count()} cores",
        f"- RAM: {ram}",
        f"- Kernel: {platform.system()} {platform.release()} ({platform.machine()})",
        f"- Python {platform.python_version()}; {versions}",
    ]


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def header(command: str) -> str:
    when = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return "\n".join([f"Last run: {when}, `{command}`, on:", "", *machine()])


def replace_section(text: str, key: str, body: str) -> str:
    start, end = f"<!-- bench:{key} -->", f"<!-- /bench:{key} -->"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    block = f"{start}\n{body}\n{end}"
    if pattern.search(text):
        return pattern.sub(lambda _: block, text, count=1)
    return text.rstrip("\n") + f"\n\n{block}\n"


def write(results: Sequence[Result], command: str, when_ran: str) -> None:
    text = DOC.read_text() if DOC.exists() else ""
    text = replace_section(text, "machine", header(command))
    for result in results:
        body = render(result) + f"\n\n_Measured {when_ran} with `{command}`._"
        text = replace_section(text, result.key, body)
        for path, content in result.files:
            (DOC.parent.parent / path).parent.mkdir(parents=True, exist_ok=True)
            (DOC.parent.parent / path).write_bytes(content)
    DOC.write_text(text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few iterations; never writes the document")
    parser.add_argument("--only", nargs="+", metavar="KEY", help="run only these (e.g. payment-overhead)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/performance.md alone")
    args = parser.parse_args(argv)

    keys = {key_of(m): m for m in MODULES}
    selected = list(MODULES)
    if args.only:
        unknown = [k for k in args.only if key_of(k) not in keys]
        if unknown:
            parser.error(f"unknown benchmark {', '.join(unknown)}; known: {', '.join(keys)}")
        wanted = {key_of(k) for k in args.only}
        selected = [m for m in MODULES if key_of(m) in wanted]

    command = shlex.join(["python", "-m", "bench", *(sys.argv[1:] if argv is None else argv)])
    when_ran = datetime.date.today().isoformat()
    results: list[Result] = []
    failed = False
    for name in selected:
        module = load(name)
        runner = getattr(module, "run", None)
        if runner is None:
            print(f"-- {key_of(name)}: skipped, bench/{name}.py is not there (or has no run())\n", flush=True)
            continue
        print(f"-- {key_of(name)}: running{' (quick)' if args.quick else ''}...", flush=True)
        started = time.perf_counter()
        try:
            result: Result = runner(args.quick)
        except Exception as error:  # one benchmark failing must not lose the others' figures
            failed = True
            print(f"-- {key_of(name)}: FAILED: {type(error).__name__}: {error}\n", flush=True)
            continue
        results.append(result)
        print(f"{render(result)}\n\n-- {key_of(name)}: {time.perf_counter() - started:.1f} s\n", flush=True)

    if results and not (args.quick or args.no_write):
        write(results, command, when_ran)
        print(f"-- wrote {len(results)} section(s) to {DOC}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
