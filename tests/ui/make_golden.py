"""Rewrites the screens' golden images and their pictures in the docs, from the examples.

    .venv/bin/python tests/ui/make_golden.py

- tests/ui/golden/<name>.png: every example of readerhost.daemon.ui.examples as rendered, 1-bit,
  pixel for pixel (tests/ui/test_screens.py compares against them);
- docs/screens/<name>.png: the same, three times larger (nearest neighbour);
- the table of examples in docs/screens.md, between its two marker comments.

Images of examples that no longer exist are removed. Review the changed pictures before committing.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from readerhost.daemon.ui.examples import Example, examples
from readerhost.daemon.ui.screens import render

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "ui" / "golden"
PICTURES = ROOT / "docs" / "screens"
DOC = ROOT / "docs" / "screens.md"
TABLE_START = "<!-- examples: written by tests/ui/make_golden.py -->"
TABLE_END = "<!-- end of examples -->"
DOC_SCALE = 3


def enlarged(image: Image.Image) -> Image.Image:
    return image.resize((image.width * DOC_SCALE, image.height * DOC_SCALE), Image.Resampling.NEAREST)


def table(found: tuple[Example, ...]) -> str:
    rows = ["| screen | when it is shown |", "|---|---|"]
    for example in found:
        width, height = example.size
        picture = f"![{example.name}, {width}x{height}](screens/{example.name}.png)"
        rows.append(f"| `{example.name}`<br>{picture} | {example.when} |")
    return "\n".join(rows)


def write_table(found: tuple[Example, ...]) -> None:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(TABLE_START) + len(TABLE_START)
    end = text.index(TABLE_END)
    DOC.write_text(f"{text[:start]}\n{table(found)}\n{text[end:]}", encoding="utf-8")


def main() -> None:
    found = examples()
    GOLDEN.mkdir(parents=True, exist_ok=True)
    PICTURES.mkdir(parents=True, exist_ok=True)
    names = {example.name for example in found}
    for folder in (GOLDEN, PICTURES):
        for stale in folder.glob("*.png"):
            if stale.stem not in names:
                stale.unlink()
                print(f"removed {stale.relative_to(ROOT)}")
    for example in found:
        image = render(example.screen, *example.size)
        image.save(GOLDEN / f"{example.name}.png", optimize=True)
        enlarged(image).save(PICTURES / f"{example.name}.png", optimize=True)
    write_table(found)
    print(f"wrote {len(found)} golden images, their pictures in docs/screens/, and the table in docs/screens.md")


if __name__ == "__main__":
    main()
