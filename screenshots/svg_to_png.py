"""SVG screenshots (Textual's export) to PNG with rsvg-convert, drawn as a terminal draws them.

Two fixes before converting, both about rsvg, not the app:
- rsvg drops the leading no-break spaces of a <text> element unless xml:space="preserve" is
  set, which glued words together (`smollm2-135m134.5M`);
- braille glyphs (the line charts) come from a proportional fallback font, wider than a cell,
  so a long run of them drifted past its box; each is placed in its own cell instead.

python screenshots/svg_to_png.py FILE.svg...   # writes FILE.png beside each
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

_TEXT = re.compile(
    r'<text class="(?P<cls>[^"]*)" x="(?P<x>[\d.]+)" y="(?P<y>[\d.]+)" '
    r'textLength="(?P<len>[\d.]+)" clip-path="(?P<clip>[^"]*)">(?P<body>[^<]*)</text>'
)
_BRAILLE = re.compile("[\u2800-\u28ff]")


def _one_glyph_per_cell(match: re.Match[str]) -> str:
    body = html.unescape(match["body"])
    if not _BRAILLE.search(body):
        return match[0]
    x, width = float(match["x"]), float(match["len"]) / len(body)
    return "".join(
        f'<text class="{match["cls"]}" x="{x + k * width:.1f}" y="{match["y"]}" '
        f'textLength="{width:.1f}" clip-path="{match["clip"]}">{html.escape(ch)}</text>'
        for k, ch in enumerate(body)
        if ch != " "
    )


def fixed_svg(svg: str) -> str:
    svg = svg.replace("<svg ", '<svg xml:space="preserve" ', 1)
    return _TEXT.sub(_one_glyph_per_cell, svg)


def to_png(svg: Path, png: Path | None = None) -> Path | None:
    """Convert one SVG; None (with a message) when rsvg-convert is not installed."""
    if not shutil.which("rsvg-convert"):
        print("rsvg-convert not found (apt-get install librsvg2-bin): SVG only")
        return None
    png = png or svg.with_suffix(".png")
    with tempfile.NamedTemporaryFile("w", suffix=".svg", encoding="utf-8") as tmp:
        tmp.write(fixed_svg(svg.read_text(encoding="utf-8")))
        tmp.flush()
        subprocess.run(["rsvg-convert", tmp.name, "-o", str(png)], check=True)
    return png


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(to_png(Path(name)))
