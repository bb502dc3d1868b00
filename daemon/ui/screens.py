"""A screen as data (`Screen`), and `render`, which draws it for a 128x64 or 128x32 panel.

The layout is the same for every kind: the headline large near the top, then the accepted read
methods as words ("Tap, insert or swipe"), then the lines, the buttons' labels in filled boxes
along the bottom, the marker in a small filled badge in the top right corner. The kind decides
only what gives way on a small panel (see `layout`) and the technician screen's left alignment.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from readerhost.daemon.ui.layout import Content, Item, arrange
from readerhost.daemon.ui.paint import paint

KINDS = frozenset(
    {
        "idle",
        "amount_due",
        "reader_message",
        "processing",
        "confirm",
        "approved",
        "declined",
        "canceled",
        "offline_queued",
        "reader_disconnected",
        "stripe_unreachable",
        "technician",
    }
)
OPTIONS = ("tap", "insert", "swipe")  # the reader's input options, in the order they are written

# Kinds whose lines carry the message: on a small panel their headline shrinks before a line goes.
# On the others the headline (an amount, "Approved") stays large and lines give way first.
_LINES_FIRST = frozenset({"idle", "reader_message", "reader_disconnected", "stripe_unreachable", "technician"})
_LEFT_ALIGNED = frozenset({"technician"})


@dataclass(frozen=True)
class Screen:
    """What the panel shows; `render` draws it. Texts may hold any characters: those the font
    lacks are replaced ("…" by "...", "é" is drawn, "€" becomes "EUR", others "?")."""

    kind: str
    headline: str = ""  # the big line: an amount like "$12.50", or "Approved"
    lines: tuple[str, ...] = ()  # small text, wrapped to the width
    options: tuple[str, ...] = ()  # for amount_due: any of "tap", "insert", "swipe"
    buttons: tuple[str, str] | None = None  # labels of the left/OK and right/Cancel buttons ("" = none)
    marker: str | None = None  # a corner badge ("TEST", "EMU") when not live

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown screen kind {self.kind!r}; one of {sorted(KINDS)}")
        unknown = [option for option in self.options if option not in OPTIONS]
        if unknown or len(set(self.options)) != len(self.options):
            raise ValueError(f"options must be distinct, from {OPTIONS}: {self.options!r}")
        if self.buttons is not None and len(self.buttons) != 2:
            raise ValueError(f"buttons are two labels (left, right): {self.buttons!r}")


def options_phrase(options: tuple[str, ...]) -> str:
    """The read methods as a customer reads them: "Tap card", "Insert or swipe card",
    "Tap, insert or swipe"."""
    words = [option for option in OPTIONS if option in options]
    if not words:
        return ""
    if len(words) == 1:
        return f"{words[0].capitalize()} card"
    if len(words) == 2:
        return f"{words[0].capitalize()} or {words[1]} card"
    return f"{', '.join(words[:-1]).capitalize()} or {words[-1]}"


def place(screen: Screen, width: int = 128, height: int = 64) -> tuple[Item, ...]:
    """The texts `render` draws for `screen`, each with its place on a `width` x `height` panel."""
    content = Content(
        headline=screen.headline,
        paragraphs=tuple(filter(None, (options_phrase(screen.options), *screen.lines))),
        buttons=screen.buttons,
        badge=screen.marker,
        align="left" if screen.kind in _LEFT_ALIGNED else "center",
        keep_headline_large=screen.kind not in _LINES_FIRST,
    )
    return arrange(content, width, height)


def render(screen: Screen, width: int = 128, height: int = 64) -> Image.Image:
    """`screen` as a mode "1" image of `width` x `height` (at least 64x32), lit pixels 1."""
    return paint(place(screen, width, height), width, height)
