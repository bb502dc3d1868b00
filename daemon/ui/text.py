"""Fitting text to a width: wrapping by words, and cutting what still does not fit with "...".

Widths are in the font's own pixels (before any scaling); the text must already be drawable
(`BitmapFont.drawable`).
"""

from __future__ import annotations

from collections.abc import Callable

from readerhost.daemon.ui.fonts import BitmapFont

ELLIPSIS = "..."


def ellipsize(text: str, font: BitmapFont, width: int) -> str:
    """`text` if it fits in `width`, else its longest start that fits with "..." after it
    ("" when not even "..." fits)."""
    if font.width(text) <= width:
        return text
    # Every glyph takes at least one column and one of spacing: no longer start can fit.
    for end in range(min(len(text) - 1, (width + 1) // 2), -1, -1):
        cut = text[:end].rstrip() + ELLIPSIS
        if font.width(cut) <= width:
            return cut
    return ""


def wrap(text: str, font: BitmapFont, width: Callable[[int], int]) -> list[str]:
    """`text` broken into rows at spaces, row i at most `width(i)` wide; a word too long for a row
    of its own is cut with "..." and the text goes on in the next row."""
    rows: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if font.width(candidate) <= width(len(rows)):
            current = candidate
            continue
        if current:
            rows.append(current)
        if font.width(word) <= width(len(rows)):
            current = word
        else:
            rows.append(ellipsize(word, font, width(len(rows))))
            current = ""
    if current:
        rows.append(current)
    return rows
