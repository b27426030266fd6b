"""What the app writes to its terminal, refresh by refresh, on the recorded event stream fed a
few events per refresh: for the byte-count tests and bench/ssh_bytes.py's attribution."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyte
from textual.drivers.headless_driver import HeadlessDriver

from infertop.tui import charts
from infertop.tui.app import InfertopApp
from infertop.tui.traces import TracesView
from tests.replay import DATA, FixedSampler, ReplaySession, from_json


class RecordingDriver(HeadlessDriver):
    """Textual's HeadlessDriver (textual/drivers/headless_driver.py), but not headless, so the
    app renders each frame as it would for a terminal, and the frames are kept."""

    def __init__(self, app: Any, **kw: Any) -> None:
        super().__init__(app, **kw)
        self.frames: list[str] = []

    @property
    def is_headless(self) -> bool:
        return False

    def write(self, data: str) -> None:
        self.frames.append(data)


class PacedSession(ReplaySession):
    """The recorded events, released a few at a time (as an engine would send them)."""

    def __init__(self) -> None:
        super().__init__([])
        self.backlog = from_json(DATA.read_text())

    def release(self, n: int) -> None:
        for ev in self.backlog[:n]:
            self.events.put(ev)
        del self.backlog[:n]


async def recorded_frames(
    size: tuple[int, int],
    refreshes: int,
    per_refresh: int = 4,
    hz: float = 3.0,
    keys: Sequence[str] = (),
    **kw: Any,
) -> list[list[str]]:
    """The app's writes, per refresh: `per_refresh` events released, one drain, the screen
    painted. The charts' throttle runs on a clock that steps 1/hz per refresh. Then `keys`
    are pressed, and what they drew is the last entry."""
    session = PacedSession()
    app = InfertopApp(session, refresh_hz=hz, sampler=FixedSampler(), start_worker=False, **kw)
    app.driver_class = RecordingDriver
    now = [0.0]
    real_clock = charts.clock
    charts.clock = lambda: now[0]
    out: list[list[str]] = []
    try:
        async with app.run_test(size=size, headless=False) as pilot:
            driver = app._driver
            assert isinstance(driver, RecordingDriver)
            driver.frames = []
            app.refresh_timer.pause()  # the refreshes are this loop's
            while not app.query(TracesView):  # the views mount after the first frame
                await pilot.pause()
            await pilot.pause()
            for _ in range(refreshes):
                now[0] += 1 / hz
                session.release(per_refresh)
                app.drain()
                await pilot.pause()
                out.append(driver.frames)
                driver.frames = []
            if keys:
                await pilot.press(*keys)
                await pilot.pause()
                out.append(driver.frames)
    finally:
        charts.clock = real_clock
    return out


def screen_of(width: int, height: int) -> tuple[pyte.Screen, pyte.Stream]:
    screen = pyte.Screen(width, height)
    return screen, pyte.Stream(screen)


def cells(screen: pyte.Screen) -> list[list[tuple[object, ...]]]:
    """Every cell's character and rendition."""
    return [
        [
            (c.data, c.fg, c.bg, c.bold, c.italics, c.underscore, c.reverse, c.strikethrough)
            for c in (screen.buffer[y][x] for x in range(screen.columns))
        ]
        for y in range(screen.lines)
    ]
