"""Screenshots of the live screen during a real run, for the README.

python screenshots/make_screenshots.py   # screenshots/*.svg, and .png with rsvg-convert
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
from pathlib import Path

from engine.commands import StartProfile
from engine.config import RunConfig
from engine.profiling.request import CaptureRequest
from engine.session import Session
from tui.app import InfertopApp

HERE = Path(__file__).resolve().parent
SIZE = (130, 42)


def shot(app: InfertopApp, name: str) -> Path:
    path = HERE / f"{name}.svg"
    app.save_screenshot(path.name, str(HERE))
    return path


async def session_shots(model: str, batch_sizes: tuple[int, ...], runs: int) -> list[Path]:
    """The main screen, the capture dialog, a capture in progress and the Traces view."""
    cfg = RunConfig(
        model=model,
        batch_sizes=batch_sizes,
        input_lens=(128,),
        output_lens=(32,),
        trace_dir=tempfile.mkdtemp(),
        run_name="readme",
    )
    session = Session(cfg)
    app = InfertopApp(session)
    shots = []
    async with app.run_test(size=SIZE) as pilot:
        while len(app.stats.results) < runs:
            await pilot.pause(0.2)
        await pilot.pause(2.2)  # let the throttled charts catch up
        shots.append(shot(app, "main-screen"))
        await pilot.press("p")
        await pilot.pause(0.3)
        shots.append(shot(app, "profile-dialog"))
        await pilot.press("escape")
        # a 40-step window, so the shot shows REC rather than the open-ended cap's save
        session.send(StartProfile(CaptureRequest(name="readme", steps=40)))
        app.capture = "armed"
        while session.capture_steps() < 3:
            await pilot.pause(0.05)
        await pilot.pause(0.34)  # one drain
        shots.append(shot(app, "profiling"))
        await pilot.press("p")
        while app.capture or not app.query_one("#traces").saved:
            await pilot.pause(0.1)
        await pilot.press("t")
        await pilot.pause(0.5)
        shots.append(shot(app, "traces"))
        await pilot.press("q")
    return shots


def to_png(svg: Path) -> None:
    if shutil.which("rsvg-convert"):
        subprocess.run(["rsvg-convert", str(svg), "-o", str(svg.with_suffix(".png"))], check=True)
    else:
        print("rsvg-convert not found (apt-get install librsvg2-bin): SVG only")


def main() -> None:
    for svg in asyncio.run(session_shots("smollm2-135m", (1, 4), 6)):
        to_png(svg)
        print("wrote", svg)


if __name__ == "__main__":
    main()
