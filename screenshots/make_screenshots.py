"""Screenshots of the live screen during a real run, for the README: the default preset and
the default sweep (batch sizes 1 and 8), driven with the keys a user presses.

python screenshots/make_screenshots.py [--model smollm2-135m] [--timeout 300]
python screenshots/make_screenshots.py --server http://127.0.0.1:8000   # a running vLLM

Writes screenshots/*.svg and, with rsvg-convert, *.png (screenshots/svg_to_png.py). Prints
what it waits for, and gives up with a message after --timeout seconds instead of hanging.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from svg_to_png import to_png  # beside this script

from infertop.engine.config import DEFAULT_PRESET, RunConfig
from infertop.engine.session import Session
from infertop.tui.app import InfertopApp

HERE = Path(__file__).resolve().parent
SIZE = (130, 42)


class TimedOut(Exception):
    pass


async def wait_for(pilot, what: str, pred: Callable[[], object], deadline: float) -> None:  # noqa: ANN001
    print(f"  waiting for {what}…", flush=True)
    while not pred():
        if time.monotonic() > deadline:
            raise TimedOut(what)
        await pilot.pause(0.1)


def shot(app: InfertopApp, name: str) -> Path:
    app.clear_notifications()
    path = HERE / f"{name}.svg"
    app.save_screenshot(path.name, str(HERE))
    print(f"  wrote {path.relative_to(HERE.parent)}", flush=True)
    return path


async def session_shots(model: str, runs: int, deadline: float) -> list[Path]:
    """The main screen, the capture dialog, a capture in progress, the Traces view."""
    cfg = RunConfig(
        model=model, batch_sizes=(1, 8), trace_dir=tempfile.mkdtemp(), run_name="readme"
    )
    app = InfertopApp(Session(cfg))
    shots = []
    async with app.run_test(size=SIZE) as pilot:
        print(f"loading {model} and running {runs} runs", flush=True)
        await wait_for(pilot, "the engine", lambda: app.state == "running", deadline)
        await wait_for(pilot, f"{runs} runs", lambda: len(app.stats.results) >= runs, deadline)
        await pilot.pause(2.2)  # the throttled charts catch up
        await pilot.pause()
        shots.append(shot(app, "main-screen"))
        await pilot.press("p")
        await pilot.press("tab", "tab", *"40")  # a 40-step window: REC shows while it records
        await pilot.pause(0.3)
        shots.append(shot(app, "profile-dialog"))
        await pilot.press("enter")
        await wait_for(pilot, "the capture", lambda: app.session.capture_steps() >= 3, deadline)
        await pilot.pause(0.4)  # one drain
        shots.append(shot(app, "profiling"))
        await pilot.press("p")
        await wait_for(
            pilot, "the save", lambda: not app.capture and app.query_one("#traces").saved, deadline
        )
        await pilot.press("t")
        await pilot.pause(0.5)
        shots.append(shot(app, "traces"))
        await pilot.press("t")
        await pilot.press("q")
    return shots


async def small_terminal_shot(model: str, deadline: float) -> Path:
    cfg = RunConfig(model=model, batch_sizes=(1, 8), trace_dir=tempfile.mkdtemp())
    app = InfertopApp(Session(cfg))
    async with app.run_test(size=(80, 24)) as pilot:
        print("the same at 80x24", flush=True)
        await wait_for(pilot, "4 runs", lambda: len(app.stats.results) >= 4, deadline)
        await pilot.pause(2.2)
        path = shot(app, "main-screen-80x24")
        await pilot.press("q")
    return path


async def server_shot(url: str, size: tuple[int, int], name: str, deadline: float) -> Path:
    """`--server URL` after 4 runs, with the server's own numbers in."""
    from infertop.engine.backends.server.probe import probe
    from infertop.engine.backends.server.target import ServerTarget
    from infertop.tui.panels import ServerPanel

    target = ServerTarget(url=url)
    info = probe(target)
    cfg = RunConfig(
        batch_sizes=(1, 8),
        input_lens=(128,),
        output_lens=(32,),
        server=target,
        trace_dir=tempfile.mkdtemp(),
    )
    app = InfertopApp(Session(cfg, server=info))
    async with app.run_test(size=size) as pilot:
        print(f"driving {info.label} at {url}, {size[0]}x{size[1]}", flush=True)
        await wait_for(pilot, "4 runs", lambda: len(app.stats.results) >= 4, deadline)
        panel = app.query_one(ServerPanel)
        await wait_for(pilot, "its metrics", lambda: "TTFT" in panel.text, deadline)
        await pilot.pause(2.2)
        path = shot(app, name)
        await pilot.press("q")
    return path


def main() -> int:
    p = argparse.ArgumentParser(description="README screenshots from a real run")
    p.add_argument("--model", default=DEFAULT_PRESET)
    p.add_argument("--timeout", type=float, default=300.0, help="seconds before giving up")
    p.add_argument("--server", help="only the --server shots, of the vLLM or SGLang at URL")
    args = p.parse_args()
    deadline = time.monotonic() + args.timeout
    try:
        if args.server:
            shots = [
                asyncio.run(server_shot(args.server, (160, 48), "server", deadline)),
                asyncio.run(server_shot(args.server, (80, 24), "server-80x24", deadline)),
            ]
        else:
            shots = asyncio.run(session_shots(args.model, 6, deadline))
            shots.append(asyncio.run(small_terminal_shot(args.model, deadline)))
    except TimedOut as e:
        print(f"gave up after {args.timeout:.0f} s waiting for {e}; nothing more written")
        return 1
    for svg in shots:
        png = to_png(svg)
        if png is not None:
            print(f"  wrote {png.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
