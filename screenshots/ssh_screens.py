"""What a terminal shows at the end of the recorded event stream (tests/data/tiny_events.json)
when the app writes only what changed (tui/screen_diff.py): with the default settings, with
--low-bandwidth, and with NO_COLOR=1. The bytes go through a VT emulator (pyte), and its
cells are drawn as an SVG (and a PNG with rsvg-convert), so these are the terminal's
picture, not Textual's own screenshot.

    python screenshots/ssh_screens.py
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from rich.console import Console
from rich.style import Style
from rich.text import Text

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from svg_to_png import to_png  # noqa: E402  # beside this script

from infertop.tui.screen_diff import ScreenDiff  # noqa: E402
from tests.tui.terminal_bytes import recorded_frames, screen_of  # noqa: E402

SIZE = (120, 40)
SETTINGS = {
    "ssh-default": ({}, {}),
    "ssh-low-bandwidth": ({"per_refresh": 12, "hz": 1.0, "low_bandwidth": True}, {}),
    "ssh-no-color": ({}, {"NO_COLOR": "1"}),
}


def _colour(c: str) -> str | None:
    if c == "default":
        return None
    if len(c) == 6 and all(ch in "0123456789abcdef" for ch in c):
        return f"#{c}"
    c = c.replace("brown", "yellow")  # pyte's name for colour 3
    return c.replace("bright", "bright_") if c.startswith("bright") else c


def picture(screen) -> Text:  # noqa: ANN001  # a pyte.Screen
    out = Text()
    for y in range(screen.lines):
        for x in range(screen.columns):
            c = screen.buffer[y][x]
            style = Style(
                color=_colour(c.fg),
                bgcolor=_colour(c.bg),
                bold=c.bold,
                reverse=c.reverse,
                underline=c.underscore,
            )
            out.append(c.data or " ", style)
        out.append("\n")
    return out


async def one(name: str, kw: dict, env: dict[str, str]) -> None:  # noqa: ANN001
    os.environ.update(env)
    try:
        frames = await recorded_frames(SIZE, 60, keys=("right",), **kw)
    finally:
        for k in env:
            os.environ.pop(k, None)
    diff = ScreenDiff()
    diff.resize(*SIZE)
    screen, feed = screen_of(*SIZE)
    for frame in frames:
        for data in frame:
            feed.feed(diff.frame(data))
    console = Console(record=True, width=SIZE[0], file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(picture(screen), end="")
    svg = HERE / f"{name}.svg"
    console.save_svg(str(svg), title=f"infertop · {name} (what the terminal shows)")
    to_png(svg)
    print(f"wrote {svg} and its PNG")


async def main() -> None:
    os.environ["COLORTERM"] = "truecolor"  # as most terminals say; else Textual picks 256
    for name, (kw, env) in SETTINGS.items():
        await one(name, kw, env)


if __name__ == "__main__":
    asyncio.run(main())
