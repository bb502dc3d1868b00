"""Drawing laid-out items into a 1-bit image, pixel by pixel from the fonts' columns.

Pillow only stores pixels, fills rectangles and scales by whole numbers (nearest neighbour): no
font rasterising, so the result is the same with every Pillow version on every machine. Only
PIL.Image is used: ImageDraw would load Pillow's FreeType and HarfBuzz libraries for nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from PIL import Image

from readerhost.daemon.ui.layout import Item

LIT = 1
DARK = 0


def paint(items: Iterable[Item], width: int, height: int) -> Image.Image:
    """A mode "1" image of `width` x `height`, dark but for `items`."""
    image = Image.new("1", (width, height), DARK)
    for item in items:
        box = item.box
        if item.inverted:
            image.paste(LIT, (box.left, box.top, box.right, box.bottom))
        mask = text_mask(item)
        x, y = item.origin
        visible = mask.crop((box.left - x, box.top - y, box.right - x, box.bottom - y))
        image.paste(DARK if item.inverted else LIT, (box.left, box.top), visible)
    return image


def text_mask(item: Item) -> Image.Image:
    """The item's text as a mode "1" mask, lit where the glyphs have ink."""
    columns = item.font.columns(item.text) or [0]
    height = item.font.height
    pixels = bytes(column >> y & 1 for y in range(height) for column in columns)  # row by row, a byte each
    mask = Image.frombytes("1", (len(columns), height), pixels, "raw", "1;8")  # "1;8": any non-zero byte is lit
    if item.scale == 1:
        return mask
    return mask.resize((mask.width * item.scale, mask.height * item.scale), Image.Resampling.NEAREST)
