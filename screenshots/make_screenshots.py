"""Screenshots of the live screen during a real run, for the README.

python screenshots/make_screenshots.py        # writes screenshots/*.svg (+ .png with rsvg-convert)
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
from pathlib import Path

from engine.config import RunConfig
from engine.session import Session
from tui.app import InfertopApp

HERE = Path(__file__).resolve().parent
SIZE = (130, 42)


async def main_screen(model: str, batch_sizes: tuple[int, ...], runs: int, name: str) -> Path:
    cfg = RunConfig(
        model=model,
        batch_sizes=batch_sizes,
        input_lens=(128,),
        output_lens=(32,),
        trace_dir=tempfile.mkdtemp(),
    )
    session = Session(cfg)
    app = InfertopApp(session, refresh_hz=4)
    async with app.run_test(size=SIZE) as pilot:
        while len(app.stats.results) < runs:
            await pilot.pause(0.2)
        await pilot.pause(1.2)  # let the throttled charts catch up
        path = HERE / f"{name}.svg"
        app.save_screenshot(str(path.name), str(HERE))
        await pilot.press("q")
    return path


def to_png(svg: Path) -> None:
    if shutil.which("rsvg-convert"):
        subprocess.run(["rsvg-convert", str(svg), "-o", str(svg.with_suffix(".png"))], check=True)
    else:
        print("rsvg-convert not found (apt-get install librsvg2-bin): SVG only")


def main() -> None:
    shots = [asyncio.run(main_screen("smollm2-135m", (1, 4), 6, "main-screen"))]
    for svg in shots:
        to_png(svg)
        print("wrote", svg)


if __name__ == "__main__":
    main()
