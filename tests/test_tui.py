"""The live screen driven by Textual's Pilot, on the real engine with the tiny preset."""

from __future__ import annotations

import gc
import json
import re
import time
from pathlib import Path

import pytest

from engine.channel import EventQueue
from engine.config import RunConfig
from engine.events import RESULT_KEYS, Event, RunStarted
from engine.session import Session
from tui.app import InfertopApp
from tui.panels import DecodePanel, PrefillPanel, SystemPanel

SIZE = (120, 40)


class RecordingQueue(EventQueue):
    """A real EventQueue that also remembers the runs started (to see commands take effect)."""

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[RunStarted] = []

    def put(self, ev: Event) -> None:
        if isinstance(ev, RunStarted):
            self.runs.append(ev)
        super().put(ev)


def tiny_session(tmp_path: Path, **kw: object) -> Session:
    cfg = RunConfig(
        model="tiny",
        batch_sizes=(1,),
        input_lens=(16,),
        output_lens=(32,),
        trace_dir=str(tmp_path / "traces"),
        **kw,
    )  # type: ignore[arg-type]
    return Session(cfg, RecordingQueue())


async def until(pilot, pred, timeout: float = 15.0) -> None:
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, "condition not met in time"
        await pilot.pause(0.05)


def panel_text(app: InfertopApp, cls: type) -> str:
    return str(app.query_one(cls).render())


async def test_numbers_appear_then_pause_resume_reset_and_quit(tmp_path: Path) -> None:
    session = tiny_session(tmp_path)
    app = InfertopApp(session, refresh_hz=10)
    gc.unfreeze()
    async with app.run_test(size=SIZE) as pilot:
        await until(
            pilot,
            lambda: (
                "p99" in panel_text(app, PrefillPanel) and "p99" in panel_text(app, DecodePanel)
            ),
        )
        # the app freezes what is alive once the engine is ready: full GC passes would
        # otherwise hold the GIL ~100 ms every few seconds (bench/RESULTS.md)
        assert gc.get_freeze_count() > 100_000
        assert "ms" in panel_text(app, DecodePanel) and "tok/s" in panel_text(app, PrefillPanel)

        await pilot.press("space")
        await until(pilot, lambda: app.state == "paused")
        frozen = session.steps_done
        await pilot.pause(0.5)
        assert session.steps_done == frozen

        await pilot.press("r")
        assert app.stats.batches == {}
        assert "waiting" in panel_text(app, DecodePanel)

        await pilot.press("space")
        await until(pilot, lambda: session.steps_done > frozen + 10)
        await until(pilot, lambda: app.stats.steps_seen > 0)

        await pilot.press("q")
        await pilot.pause(0.1)
    assert session.finished.is_set()
    assert app.return_code == 0


async def test_plus_changes_the_next_runs_batch_size(tmp_path: Path) -> None:
    session = tiny_session(tmp_path)
    app = InfertopApp(session, refresh_hz=10)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: len(session.events.runs) >= 1)
        await pilot.press("plus")
        await until(pilot, lambda: session.events.runs[-1].batch_size == 2)
        await pilot.press("minus")
        await until(pilot, lambda: session.events.runs[-1].batch_size == 1)
        await pilot.press("minus")  # already 1: a message, nothing sent
        await pilot.press("q")


async def test_export_writes_jsonl_with_bench_keys(tmp_path: Path) -> None:
    session = tiny_session(tmp_path)
    app = InfertopApp(session, refresh_hz=10)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: len(app.stats.results) >= 2)
        await pilot.press("e")
        path = app.last_export
        await pilot.press("q")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) >= 2 and all(tuple(d) == RESULT_KEYS for d in lines)
    assert path.parent == tmp_path / "traces" and path.name.startswith("infertop-results-bs1")


async def test_a_stalled_ui_does_not_block_the_engine(tmp_path: Path) -> None:
    session = tiny_session(tmp_path)
    session.events.max_samples = 50
    app = InfertopApp(session, refresh_hz=10)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: session.steps_done > 10)
        before = session.steps_done
        time.sleep(1.5)  # the UI thread is stuck: nothing drains the queue
        assert session.steps_done > before + 60  # more than the queue holds
        await pilot.pause(0.3)
        assert session.events.dropped > 0
        shown = re.search(r"UI dropped\s+([\d,]+) samples", panel_text(app, SystemPanel))
        assert shown and 0 < int(shown[1].replace(",", "")) <= session.events.dropped
        await pilot.press("q")


async def test_help_screen_opens_and_closes(tmp_path: Path) -> None:
    session = tiny_session(tmp_path)
    app = InfertopApp(session, refresh_hz=10)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert app.screen.__class__.__name__ == "HelpScreen"
        await pilot.press("escape")
        assert app.screen.__class__.__name__ != "HelpScreen"
        await pilot.press("q")


async def test_bad_model_is_shown_and_the_app_stays_up(tmp_path: Path) -> None:
    cfg = RunConfig(model="./no/such/dir", trace_dir=str(tmp_path))
    app = InfertopApp(Session(cfg), refresh_hz=10)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.state == "error")
        await pilot.pause(0.2)  # notify() lands on the next message cycle
        messages = [n.message for n in app._notifications]
        assert any("no such model directory" in m for m in messages), (messages, app.state)
        await pilot.press("q")
    assert app.return_code == 0


@pytest.fixture
def replay_app():
    from tests.replay import DATA, FixedSampler, ReplaySession, from_json

    session = ReplaySession(from_json(DATA.read_text()))
    return InfertopApp(session, refresh_hz=4, sampler=FixedSampler(), start_worker=False)


def test_main_screen_snapshot(snap_compare, replay_app, monkeypatch) -> None:
    from tui import charts

    for chart in (charts.HistoryChart, charts.PrefillChart, charts.LatencyHistogram):
        monkeypatch.setattr(chart, "MIN_INTERVAL", 0.0)  # no time-dependent throttling

    async def drained(pilot) -> None:
        replay_app.drain()
        await pilot.pause()

    assert snap_compare(replay_app, terminal_size=SIZE, run_before=drained)


@pytest.mark.parametrize(("kind", "shown"), [("cpu", False), ("cuda", True), ("metal", True)])
async def test_device_memory_rows_follow_the_engines_device_kind(kind: str, shown: bool) -> None:
    """Device memory is shown from the engine's kind (on a CPU it would repeat the RSS)."""
    import dataclasses

    from engine.events import EngineReady
    from tests.replay import DATA, FixedSampler, ReplaySession, from_json

    events = [
        dataclasses.replace(e, device_kind=kind) if isinstance(e, EngineReady) else e
        for e in from_json(DATA.read_text())
    ]
    app = InfertopApp(
        ReplaySession(events), refresh_hz=4, sampler=FixedSampler(), start_worker=False
    )
    async with app.run_test(size=SIZE) as pilot:
        app.drain()
        await pilot.pause()
        assert ("dev alloc" in panel_text(app, SystemPanel)) is shown
