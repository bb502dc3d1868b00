"""The OLED's screens: through luma.oled's real SSD1306 driver, against golden images; fitting text."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from luma.core.interface.serial import i2c  # type: ignore[import-untyped]
from luma.core.legacy.font import SPECCY_FONT, TINY_FONT  # type: ignore[import-untyped]
from luma.oled.device import ssd1306  # type: ignore[import-untyped]
from PIL import Image
from support.oled import RecordingBus

from readerhost.daemon.payments.currencies import SUPPORTED
from readerhost.daemon.ui import glyphs
from readerhost.daemon.ui.examples import Example, example_screens, examples
from readerhost.daemon.ui.fonts import TEXT
from readerhost.daemon.ui.layout import MARGIN, Box, Content, Item, arrange
from readerhost.daemon.ui.money import format_amount
from readerhost.daemon.ui.screens import KINDS, Screen, options_phrase, place, render
from readerhost.daemon.ui.text import ellipsize, wrap
from readerhost.drivers.reader.base import DISPLAY_MESSAGES

# luma.oled 3.16 reads pixels with Image.getdata(), which Pillow 13 deprecates (removed in Pillow 14).
pytestmark = pytest.mark.filterwarnings("ignore:Image.Image.getdata is deprecated:DeprecationWarning")

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "ui" / "golden"
PICTURES = ROOT / "docs" / "screens"
REGENERATE = ".venv/bin/python tests/ui/make_golden.py"
EXAMPLES = examples()
LONG = " ".join(itertools.repeat("Thank you for shopping with us today, come again soon!", 6))[:300]


def through_luma(image: Image.Image) -> Image.Image:
    """`image` as luma.oled's ssd1306 driver writes it to the panel, read back from the panel's memory."""
    bus = RecordingBus()
    device = ssd1306(i2c(bus=bus, address=0x3C), width=image.width, height=image.height)
    device.display(image)
    return bus.frames()[-1]


def differing_pixels(a: Image.Image, b: Image.Image) -> int:
    return sum(1 for p, q in zip(a.getdata(), b.getdata(), strict=True) if bool(p) != bool(q))


def lit_outside(image: Image.Image, boxes: list[Box]) -> list[tuple[int, int]]:
    return [
        (x, y)
        for y in range(image.height)
        for x in range(image.width)
        if image.getpixel((x, y)) and not any(box.left <= x < box.right and box.top <= y < box.bottom for box in boxes)
    ]


def assert_apart_and_inside(items: tuple[Item, ...], width: int, height: int) -> None:
    inside = Box(MARGIN, MARGIN, width - MARGIN, height - MARGIN)
    for item in items:
        assert item.box.within(inside), f"{item.text!r} at {item.box} leaves the {width}x{height} screen's margin"
    for a, b in itertools.combinations(items, 2):
        assert not a.box.intersects(b.box), f"{a.text!r} at {a.box} overlaps {b.text!r} at {b.box}"


def texts(screen: Screen, width: int = 128, height: int = 64) -> list[str]:
    """The texts `render` draws, top to bottom and left to right."""
    items = sorted(place(screen, width, height), key=lambda item: (item.box.top, item.box.left))
    return [item.text for item in items]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda example: example.name)
def test_example_reaches_the_panel_as_its_golden_image(example: Example) -> None:
    image = render(example.screen, *example.size)
    assert (image.mode, image.size) == ("1", example.size)

    shown = through_luma(image)
    assert shown.size == image.size
    assert shown.tobytes() == image.tobytes(), (
        f"{example.name}: the panel's memory differs from the rendered image in {differing_pixels(shown, image)} pixels"
    )

    golden_path = GOLDEN / f"{example.name}.png"
    if not golden_path.exists():
        pytest.fail(f"{example.name}: no golden image {golden_path.relative_to(ROOT)}; create it with `{REGENERATE}`")
    with Image.open(golden_path) as file:
        golden = file.convert("1")
    if golden.size != shown.size or golden.tobytes() != shown.tobytes():
        difference = differing_pixels(golden, shown) if golden.size == shown.size else f"size {golden.size}, not"
        pytest.fail(
            f"{example.name} differs from {golden_path.relative_to(ROOT)} ({difference} pixels). If the change is "
            f"intended, run `{REGENERATE}` and review the changed pictures in docs/screens/."
        )


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda example: example.name)
def test_example_is_pictured_in_the_docs(example: Example) -> None:
    picture_path = PICTURES / f"{example.name}.png"
    assert picture_path.exists(), f"{picture_path.relative_to(ROOT)} is missing: run `{REGENERATE}`"
    with Image.open(picture_path) as file:
        assert file.mode == "1", f"{picture_path.relative_to(ROOT)} should be a 1-bit PNG"
        picture = file.copy()
    image = render(example.screen, *example.size)
    enlarged = image.resize((image.width * 3, image.height * 3), Image.Resampling.NEAREST)
    assert picture.tobytes() == enlarged.tobytes(), f"{picture_path.relative_to(ROOT)} is stale: run `{REGENERATE}`"
    assert f"(screens/{example.name}.png)" in (ROOT / "docs" / "screens.md").read_text(encoding="utf-8")


def test_no_golden_image_without_an_example() -> None:
    names = set(example_screens())
    stale = sorted(
        path.name for folder in (GOLDEN, PICTURES) for path in folder.glob("*.png") if path.stem not in names
    )
    assert not stale, f"images of no example: {stale}; `{REGENERATE}` removes them"


def test_examples_cover_every_kind_and_reader_message() -> None:
    screens = example_screens()
    assert {screen.kind for screen in screens.values()} == KINDS
    for message, text in DISPLAY_MESSAGES.items():
        assert screens[f"reader_message_{message}"].lines == (text,)
    assert screens["idle_test"].marker == "TEST"
    assert screens["declined"].lines == ("Insufficient funds",)
    assert screens["confirm"].buttons == ("OK", "Cancel")
    assert {example.size for example in EXAMPLES} == {(128, 64), (128, 32)}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda example: example.name)
def test_example_texts_stay_apart_and_inside_the_margin(example: Example) -> None:
    assert_apart_and_inside(place(example.screen, *example.size), *example.size)


@pytest.mark.parametrize("size", [(128, 64), (128, 32)], ids=lambda size: f"{size[0]}x{size[1]}")
@pytest.mark.parametrize(
    "screen",
    [
        Screen("idle", lines=(LONG,)),
        Screen("idle", lines=(LONG, LONG, LONG, LONG), marker="TEST"),
        Screen("declined", headline=LONG, lines=(LONG,), buttons=(LONG, LONG), marker=LONG),
        Screen("reader_message", headline="$12.50", lines=("x" * 300,), marker="EMU"),
    ],
    ids=["one_long_line", "four_long_lines_badge", "everything_long", "one_long_word"],
)
def test_long_text_is_cut_inside_the_margin_without_overlap(screen: Screen, size: tuple[int, int]) -> None:
    width, height = size
    items = place(screen, width, height)
    assert_apart_and_inside(items, width, height)
    image = render(screen, width, height)
    assert lit_outside(image, [item.box for item in items]) == []
    assert image.getbbox() is not None
    assert any(item.text.endswith("...") for item in items)


def test_render_is_deterministic() -> None:
    for example in EXAMPLES:
        assert render(example.screen, *example.size).tobytes() == render(example.screen, *example.size).tobytes()


def test_a_small_panel_keeps_the_amount_large_and_drops_the_order_line() -> None:
    screen = Screen("amount_due", headline="$12.50", lines=("Order A-1001",), options=("tap", "insert", "swipe"))
    assert texts(screen, 128, 64) == ["$12.50", "Tap, insert or swipe", "Order A-1001"]
    assert texts(screen, 128, 32) == ["$12.50", "Tap, insert or swipe"]
    headline = next(item for item in arrange(Content(headline="$12.50"), 128, 32) if item.text == "$12.50")
    assert headline.scale == 2


def test_a_headline_too_wide_at_double_size_is_drawn_at_single_size() -> None:
    screen = Screen("amount_due", headline="99999999.99 CHF", options=("tap",), buttons=("", "Cancel"))
    for height in (64, 32):
        items = place(screen, 128, height)
        assert (items[0].text, items[0].scale) == ("99999999.99 CHF", 1)
        assert_apart_and_inside(items, 128, height)


def test_a_small_panel_gives_up_the_amount_for_a_long_reader_message() -> None:
    text = DISPLAY_MESSAGES["multiple_contactless_cards_detected"]
    screen = Screen("reader_message", headline="$12.50", lines=(text,))
    assert texts(screen, 128, 64)[0] == "$12.50"
    assert " ".join(texts(screen, 128, 32)) == text


def test_a_paragraph_cut_short_ends_in_an_ellipsis_and_dropped_ones_leave_no_trace() -> None:
    cut = texts(Screen("idle", lines=(LONG,)), 128, 32)
    assert cut[-1].endswith("...")
    dropped = texts(Screen("idle", lines=("First line", "Second line", "Third line", "Fourth line")), 128, 32)
    assert dropped == ["First line", "Second line", "Third line"]


def test_the_badge_sits_in_the_top_right_corner_on_every_kind() -> None:
    for kind in sorted(KINDS):
        image = render(Screen(kind, headline="Approved", lines=("Thank you!",), marker="TEST"), 128, 32)
        corner = image.crop((100, 0, 128, 9))
        assert corner.getbbox() is not None, kind


def test_buttons_are_filled_boxes_at_the_bottom_corners() -> None:
    screen = Screen("confirm", headline="$12.50", buttons=("OK", "Cancel"))
    items = {item.text: item for item in arrange(Content(headline="$12.50", buttons=("OK", "Cancel")), 128, 64)}
    assert items["OK"].inverted
    assert items["Cancel"].inverted
    assert items["OK"].box.left == MARGIN
    assert items["Cancel"].box.right == 128 - MARGIN
    assert items["OK"].box.bottom == items["Cancel"].box.bottom == 64 - MARGIN
    image = render(screen)
    assert image.getpixel((MARGIN, 64 - MARGIN - 1))
    assert image.getpixel((128 - MARGIN - 1, 64 - MARGIN - 1))


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        (1250, "usd", "$12.50"),
        (1250, "USD", "$12.50"),
        (5, "usd", "$0.05"),
        (1250, "eur", "EUR 12.50"),
        (1250, "gbp", "\xa312.50"),
        (1250, "jpy", "\xa51250"),
        (1250, "krw", "1250 KRW"),
        (1250, "chf", "12.50 CHF"),
        (99_999_999, "usd", "$999999.99"),
        (-1250, "usd", "-$12.50"),
    ],
)
def test_format_amount(amount: int, currency: str, expected: str) -> None:
    assert format_amount(amount, currency) == expected


def test_amounts_use_only_what_the_font_draws() -> None:
    assert not TEXT.covers("\u20ac"), "the font has a euro sign now: format_amount should use it"
    assert TEXT.covers("$\xa3\xa5")
    for currency in sorted(SUPPORTED):
        assert TEXT.covers(format_amount(123456, currency)), currency


@pytest.mark.parametrize(
    ("copy", "width", "luma_table"),
    [(glyphs.SPECCY, glyphs.SPECCY_WIDTH, SPECCY_FONT), (glyphs.TINY, glyphs.TINY_WIDTH, TINY_FONT)],
    ids=["SPECCY_FONT", "TINY_FONT"],
)
def test_the_glyph_tables_are_lumas(copy: bytes, width: int, luma_table: list[list[int]]) -> None:
    assert [list(copy[code * width : (code + 1) * width]) for code in range(256)] == luma_table


def test_text_the_font_lacks_is_replaced() -> None:
    assert TEXT.drawable("Caf\xe9 \u201cto go\u201d\u2026 \u20ac3 \u4e2d\u200b!") == 'Caf\xe9 "to go"... EUR 3 ?!'
    assert TEXT.drawable("e\u0301") == "\xe9"  # composed
    assert TEXT.drawable("\xff") == "y"  # the font has no ÿ: its base letter


def test_wrap_breaks_at_spaces_and_cuts_words_too_long_for_a_row() -> None:
    width = TEXT.width("Insert or swipe")
    assert wrap("Insert or swipe card", TEXT, lambda _row: width) == ["Insert or swipe", "card"]
    rows = wrap("Go to https://example.com/a/very/long/path now", TEXT, lambda _row: width)
    assert rows == ["Go to", ellipsize("https://example.com/a/very/long/path", TEXT, width), "now"]
    assert rows[1].endswith("...")
    assert all(TEXT.width(row) <= width for row in rows)
    assert wrap("   ", TEXT, lambda _row: width) == []


def test_ellipsize() -> None:
    assert ellipsize("Approved", TEXT, 200) == "Approved"
    cut = ellipsize("Insufficient funds", TEXT, 40)
    assert cut.endswith("...")
    assert "Insufficient funds".startswith(cut.removesuffix("..."))
    assert TEXT.width(cut) <= 40
    assert ellipsize("Insufficient", TEXT, 3) == ""


def test_options_are_written_as_words() -> None:
    assert options_phrase(("swipe", "tap", "insert")) == "Tap, insert or swipe"
    assert options_phrase(("insert", "swipe")) == "Insert or swipe card"
    assert options_phrase(("tap",)) == "Tap card"
    assert options_phrase(()) == ""


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "welcome"},
        {"kind": "amount_due", "options": ("nfc",)},
        {"kind": "amount_due", "options": ("tap", "tap")},
    ],
)
def test_screen_refuses_what_it_cannot_show(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"kind|options"):
        Screen(**fields)  # type: ignore[arg-type]


def test_render_refuses_a_panel_too_small() -> None:
    with pytest.raises(ValueError, match="at least 64x32"):
        render(Screen("idle"), 128, 16)


def test_the_bus_model_reads_luma_frames_back() -> None:
    bus = RecordingBus()
    device = ssd1306(i2c(bus=bus, address=0x3C), width=128, height=32)
    image = Image.new("1", (128, 32))
    for xy in [(0, 0), (127, 0), (0, 31), (127, 31), (5, 9)]:
        image.putpixel(xy, 1)
    device.display(image)
    frames = bus.frames()
    assert len(frames) == 2  # luma clears the panel on start, then our frame
    assert frames[0].getbbox() is None
    assert frames[-1].tobytes() == image.tobytes()
    assert (0xA8, 0x1F) in bus.commands()
    data = [len(payload) for _address, control, payload in bus.transactions[-16:] if control == 0x40]
    assert data == [32] * 16  # 512 bytes for 128x32, in 32-byte blocks
    device.hide()
    assert bus.commands()[-1] == (0xAE,)
