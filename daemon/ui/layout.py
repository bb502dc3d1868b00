"""Where each text of a screen goes: pure geometry, no pixels.

A screen has, from top to bottom, a headline (the font at twice its size, one row), small rows
(paragraphs wrapped to the width), and the two buttons' labels in filled boxes along the bottom
edge; a badge may sit in the top right corner. A one-pixel margin stays dark on every side and no
two boxes overlap.

When everything does not fit, layouts are tried from the most generous on: looser spacing before
tighter, content below the badge before content beside it, a large headline before a small one
before none. The first that shows everything wins; failing that, the one that shows the most rows.
A `keep_headline_large` screen only takes layouts with the largest headline that fits. Rows that
do not fit are left out, whole paragraphs from the end; a paragraph cut short ends in "...".
Buttons and the badge are always shown.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import partial
from typing import Literal

from readerhost.daemon.ui.fonts import BADGE, TEXT, BitmapFont
from readerhost.daemon.ui.text import ELLIPSIS, ellipsize, wrap

MARGIN = 1  # dark pixels along every edge
GAP = 2  # blank columns between a text and the badge beside it, and between the two buttons
BADGE_PAD = 2  # columns either side of the badge's text
BADGE_ROWS = 7  # the badge font's capitals (rows 1-5) with a blank row above and below
BUTTON_PAD = 3  # columns either side of a button's label
BUTTON_ROWS = TEXT.height + 1  # the label's cell and a blank row under its descenders
HEADLINE_SCALES = (2, 1, 0)  # 0: the headline left out


@dataclass(frozen=True)
class Box:
    """A rectangle of pixels; `right` and `bottom` are exclusive."""

    left: int
    top: int
    right: int
    bottom: int

    def intersects(self, other: Box) -> bool:
        return (
            self.left < other.right and other.left < self.right and self.top < other.bottom and other.top < self.bottom
        )

    def within(self, outer: Box) -> bool:
        return (
            outer.left <= self.left
            and outer.top <= self.top
            and self.right <= outer.right
            and self.bottom <= outer.bottom
        )


@dataclass(frozen=True)
class Item:
    """A text drawn with its cell's top left corner at `origin`, each font pixel `scale` x `scale`,
    clipped to `box`. An inverted item lights its whole box and draws the text dark."""

    text: str
    font: BitmapFont
    scale: int
    origin: tuple[int, int]
    box: Box
    inverted: bool = False


@dataclass(frozen=True)
class Content:
    """What to lay out; texts may hold characters the font lacks (they are replaced)."""

    headline: str = ""
    paragraphs: tuple[str, ...] = ()
    buttons: tuple[str, str] | None = None
    badge: str | None = None
    align: Literal["center", "left"] = "center"
    keep_headline_large: bool = True  # drop small rows rather than shrink the headline


@dataclass(frozen=True)
class Spacing:
    after_headline: int  # blank rows between the headline's cell and the first small row
    pitch: int  # from the top of one small row to the top of the next


SPACINGS = (Spacing(after_headline=4, pitch=10), Spacing(after_headline=2, pitch=9), Spacing(after_headline=0, pitch=8))


@dataclass(frozen=True)
class _Row:
    text: str
    scale: int
    top: int


@dataclass(frozen=True)
class _Attempt:
    rows: tuple[_Row, ...]
    complete: bool
    shown: int  # small rows shown
    scale: int


@dataclass(frozen=True)
class _Frame:
    """The fixed parts: the screen's size, the badge's box, and the bottom of the content area."""

    width: int
    badge: Box | None
    bottom: int


def arrange(content: Content, width: int, height: int) -> tuple[Item, ...]:
    """The items of `content` on a `width` x `height` screen (at least 64 x 32)."""
    if width < 64 or height < 32:
        raise ValueError(f"screens are at least 64x32 pixels, not {width}x{height}")
    badge = _badge(content.badge, width) if content.badge else None
    buttons = tuple(_buttons(content.buttons, width, height))
    bottom = min((button.box.top - 1 for button in buttons), default=height - MARGIN)
    frame = _Frame(width, badge.box if badge is not None else None, bottom)
    fixed = (*buttons, *(() if badge is None else (badge,)))
    headline = _clean(content.headline)
    paragraphs = tuple(text for text in map(_clean, content.paragraphs) if text)
    attempts = [attempt for attempt in _attempts(headline, paragraphs, frame) if attempt is not None]
    if content.keep_headline_large and attempts:
        largest = max(attempt.scale for attempt in attempts)
        attempts = [attempt for attempt in attempts if attempt.scale == largest]
    if not attempts:
        return fixed
    chosen = next((attempt for attempt in attempts if attempt.complete), None)
    if chosen is None:
        chosen = max(attempts, key=lambda attempt: attempt.shown)
    return (*_place(chosen.rows, content.align, frame), *fixed)


def _clean(text: str) -> str:
    return " ".join(TEXT.drawable(text).split())


def _badge(text: str, width: int) -> Item | None:
    label = ellipsize(" ".join(BADGE.drawable(text).split()), BADGE, width // 2 - 2 * BADGE_PAD)
    if not label:
        return None
    right = width - MARGIN
    left = right - BADGE.width(label) - 2 * BADGE_PAD
    box = Box(left, MARGIN, right, MARGIN + BADGE_ROWS)
    return Item(label, BADGE, 1, (left + BADGE_PAD, MARGIN), box, inverted=True)


def _buttons(labels: tuple[str, str] | None, width: int, height: int) -> Iterator[Item]:
    if labels is None:
        return
    top = height - MARGIN - BUTTON_ROWS
    widest = (width - 2 * MARGIN - GAP) // 2 - 2 * BUTTON_PAD
    for side, raw in zip(("left", "right"), labels, strict=True):
        label = ellipsize(_clean(raw), TEXT, widest)
        if not label:
            continue
        box_width = TEXT.width(label) + 2 * BUTTON_PAD
        left = MARGIN if side == "left" else width - MARGIN - box_width
        box = Box(left, top, left + box_width, top + BUTTON_ROWS)
        yield Item(label, TEXT, 1, (left + BUTTON_PAD, top), box, inverted=True)


def _attempts(headline: str, paragraphs: tuple[str, ...], frame: _Frame) -> Iterator[_Attempt | None]:
    for scale in HEADLINE_SCALES if headline else (0,):
        for beside_badge in (False, True) if frame.badge else (False,):
            for spacing in SPACINGS:
                yield _attempt(headline, paragraphs, frame, scale, beside_badge, spacing)


def _attempt(
    headline: str, paragraphs: tuple[str, ...], frame: _Frame, scale: int, beside_badge: bool, spacing: Spacing
) -> _Attempt | None:
    badge = frame.badge

    def room(top: int, rows: int) -> int:
        """The width a text may take at `top`, `rows` high, in the font's own pixels."""
        right = frame.width - MARGIN
        if badge is not None and top < badge.bottom and badge.top < top + rows:
            right = badge.left - GAP
        return right - MARGIN

    def row_room(first_top: int, index: int) -> int:
        """The room of a paragraph's row `index`, the paragraph starting at `first_top`."""
        return room(first_top + index * spacing.pitch, TEXT.height)

    top = badge.bottom + 1 if badge is not None and not beside_badge else MARGIN
    rows: list[_Row] = []
    if scale:
        rows_high = TEXT.height * scale
        if top + rows_high > frame.bottom:
            return None
        text = headline
        if TEXT.width(text) * scale > room(top, rows_high):
            if scale > 1:
                return None
            text = ellipsize(text, TEXT, room(top, rows_high))
        rows.append(_Row(text, scale, top))
        top += rows_high + spacing.after_headline
    shown = 0
    for paragraph in paragraphs:
        wrapped = wrap(paragraph, TEXT, partial(row_room, top))
        for index, text in enumerate(wrapped):
            if top + TEXT.height > frame.bottom:
                if index:  # the last row shown is cut short: say so
                    last = rows[-1]
                    rows[-1] = replace(last, text=_continued(last.text, room(last.top, TEXT.height)))
                return _Attempt(tuple(rows), complete=False, shown=shown, scale=scale)
            rows.append(_Row(text, 1, top))
            shown += 1
            top += spacing.pitch
    return _Attempt(tuple(rows), complete=True, shown=shown, scale=scale)


def _continued(text: str, room: int) -> str:
    """`text` marked as going on beyond what is shown."""
    return text if text.endswith(ELLIPSIS) else ellipsize(text + ELLIPSIS, TEXT, room)


def _place(rows: tuple[_Row, ...], align: Literal["center", "left"], frame: _Frame) -> Iterator[Item]:
    """The rows as items, centred vertically in the content area, and horizontally if asked;
    a centred row that would touch the badge moves left."""
    if not rows:
        return
    used_bottom = max(row.top + TEXT.height * row.scale for row in rows)
    offset = (frame.bottom - used_bottom) // 2
    for row in rows:
        top = row.top + offset
        text_width = TEXT.width(row.text) * row.scale
        rows_high = TEXT.height * row.scale
        left = MARGIN if align == "left" else (frame.width - text_width) // 2
        badge = frame.badge
        if badge is not None and Box(left, top, left + text_width, top + rows_high).intersects(
            Box(badge.left - GAP, badge.top, badge.right, badge.bottom)
        ):
            left = badge.left - GAP - text_width
        box = Box(left, top, left + text_width, top + rows_high)
        yield Item(row.text, TEXT, row.scale, (left, top), box)
