"""Bitmap fonts taken from luma.core's tables (copied in glyphs.py): no FreeType, so every pixel is the same
everywhere.

A glyph is a tuple of columns, bit 0 the top row. Glyphs are trimmed to their ink and set one
blank column apart (proportional spacing).

- `TEXT`: luma's ZX Spectrum font (`SPECCY_FONT`), printable ASCII and Latin-1 (accents, £, ¥;
  no €). An 8-row cell: capitals on rows 1-6, descenders on row 7, capital accents on row 0.
- `BADGE`: luma's `TINY_FONT`, printable ASCII, capitals on rows 1-5, for the corner badge.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from readerhost.daemon.ui.glyphs import SPECCY, SPECCY_WIDTH, TINY, TINY_WIDTH

# Characters a font lacks, written with characters it may have (used only if it has them all).
SUBSTITUTES = {
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": ",",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u2010": "-",
    "\u2011": "-",
    "\u2013": "-",
    "\u2014": "-",
    "\u2212": "-",
    "\u2022": "\xb7",
    "\u2026": "...",
    "\u20ac": "EUR ",
}


@dataclass(frozen=True, eq=False)
class BitmapFont:
    """A proportional bitmap font of `height` rows; `glyphs` maps a character to its columns."""

    name: str
    glyphs: Mapping[str, tuple[int, ...]]
    height: int = 8
    spacing: int = 1
    replacement: str = "?"

    def covers(self, text: str) -> bool:
        """Whether every character of `text` has a glyph."""
        return all(char in self.glyphs for char in text)

    def drawable(self, text: str) -> str:
        """`text` with every character the font lacks replaced: by a substitute ("…" -> "..."),
        by its base letter ("ÿ" -> "y"), by a space (any whitespace), or by "?"; control and
        format characters are dropped."""
        out: list[str] = []
        for char in unicodedata.normalize("NFC", text):
            if char in self.glyphs:
                out.append(char)
            elif char.isspace():
                out.append(" ")
            elif unicodedata.category(char) in ("Cc", "Cf"):
                continue
            elif (substitute := SUBSTITUTES.get(char)) and self.covers(substitute):
                out.append(substitute)
            elif (base := _base_letters(char)) and self.covers(base):
                out.append(base)
            else:
                out.append(self.replacement)
        return "".join(out)

    def width(self, text: str) -> int:
        """Width in pixels of `text` (which must be drawable), without trailing spacing."""
        if not text:
            return 0
        return sum(len(self.glyphs[char]) for char in text) + self.spacing * (len(text) - 1)

    def columns(self, text: str) -> list[int]:
        """The columns of `text` (which must be drawable), glyphs set `spacing` apart."""
        columns: list[int] = []
        for index, char in enumerate(text):
            if index:
                columns.extend([0] * self.spacing)
            columns.extend(self.glyphs[char])
        return columns


def _base_letters(char: str) -> str:
    decomposed = unicodedata.normalize("NFKD", char)
    return "".join(part for part in decomposed if not unicodedata.combining(part))


def _trimmed(columns: Sequence[int]) -> tuple[int, ...]:
    inked = [index for index, column in enumerate(columns) if column]
    if not inked:
        return ()
    return tuple(columns[inked[0] : inked[-1] + 1])


def from_luma_table(name: str, table: bytes, width: int, codes: Iterable[int], space: int) -> BitmapFont:
    """A font from one of luma's 256-character tables (`width` columns a character, indexed by code
    point): the `codes` that have ink, plus the spaces among them, `space` columns wide."""
    glyphs: dict[str, tuple[int, ...]] = {}
    for code in codes:
        char = chr(code)
        if char.isspace():
            glyphs[char] = (0,) * space
        elif columns := _trimmed(table[code * width : (code + 1) * width]):
            glyphs[char] = columns
    return BitmapFont(name=name, glyphs=glyphs)


_PRINTABLE_ASCII = range(0x20, 0x7F)
_LATIN_1 = [code for code in range(0xA0, 0x100) if code != 0xAD]  # not the soft hyphen

TEXT = from_luma_table("luma SPECCY_FONT", SPECCY, SPECCY_WIDTH, [*_PRINTABLE_ASCII, *_LATIN_1], space=2)
BADGE = from_luma_table("luma TINY_FONT", TINY, TINY_WIDTH, _PRINTABLE_ASCII, space=2)
