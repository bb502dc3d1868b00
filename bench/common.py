"""What every benchmark returns, and the few helpers they share."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Result:
    """One benchmark's section of docs/performance.md.

    `key` names the section (the text between `<!-- bench:KEY -->` and `<!-- /bench:KEY -->`);
    `table` is a Markdown table; `notes` are sentences under it: the target, whether it is met, and
    what the rest is spent on or what would close a gap.
    """

    key: str
    title: str
    table: str
    notes: tuple[str, ...] = field(default_factory=tuple)
    target_met: bool | None = None  # None: the benchmark has no target
    # Files the section refers to (a flame graph), by path from the repository's root: written with it.
    files: tuple[tuple[str, bytes], ...] = ()


def spread(values: Sequence[float], unit: str = "", digits: int = 1) -> str:
    """`median (min-max)` as the tables show it."""
    if not values:
        return "-"
    median = statistics.median(values)
    return f"{median:.{digits}f}{unit} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
