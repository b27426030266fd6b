"""The live screen driven by Textual's Pilot: on the real engine with the tiny preset, or on a
recorded event stream (tests/data/tiny_events.json) where the picture must be deterministic."""

from __future__ import annotations

import gc
import json
import re
import shutil
import time
from pathlib import Path

import pytest
from textual import events
from textual.app import App, ComposeResult
from textual.widgets import Tab, Tabs

from infertop.engine.backends.torch import fused_build
from infertop.engine.channel import EventQueue
from infertop.engine.commands import Pause, Resume, SetSweep, StartProfile
from infertop.engine.config import RunConfig
from infertop.engine.events import (
    RESULT_KEYS,
    Event,
    RunStarted,
    SweepChanged,
)
from infertop.engine.profiling.request import CaptureRequest
from infertop.engine.session import Session
from infertop.tui.app import InfertopApp
from infertop.tui.charts import DecodeHistoryChart, LatencyHistogram, PrefillChart, ThroughputChart
from infertop.tui.panels import DecodePanel, HeaderBar, PrefillPanel, SystemPanel
from tests.helpers import HeldInCapture, replay_app, until
from tests.replay import DATA, FixedSampler, ReplaySession, from_json

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


def tiny_session(tmp_path: Path, queue: EventQueue | None = None, **kw: object) -> Session:
    settings: dict[str, object] = {
        "model": "tiny",
        "batch_sizes": (1,),
        "input_lens": (16,),
        "output_lens": (32,),
        "trace_dir": str(tmp_path / "traces"),
        **kw,
    }
    # not `queue or ...`: an empty EventQueue is falsy (it has a length), and a HeldInCapture
    # passed in was swapped for a RecordingQueue that holds nothing
    events = queue if queue is not None else RecordingQueue()
    return Session(RunConfig(**settings), events)  # type: ignore[arg-type]


def panel_text(app: InfertopApp, cls: type) -> str:
    return app.query_one(cls).text


def footer_labels(app: InfertopApp) -> list[str]:
    return [str(k.description) for k in app.query("FooterKey").results()]


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
        # the session freezes what is alive once the engine is ready: full GC passes would
        # otherwise hold the GIL ~100 ms every few seconds (bench/RESULTS.md)
        assert gc.get_freeze_count() > 100_000
        assert app.query_one(DecodePanel).border_title == "Decode step (ms)"
        assert "tok/s" in panel_text(app, PrefillPanel)

        # the footer rebuilds its keys after a bindings change (KeyFooter), a refresh later
        await until(pilot, lambda: "Pause" in footer_labels(app))
        assert "Resume" not in footer_labels(app)
        await pilot.press("space")
        await until(pilot, lambda: app.state == "paused")
        # the footer said "space Pause" while paused
        await until(pilot, lambda: "Resume" in footer_labels(app))
        assert "Pause" not in footer_labels(app)
        frozen = session.steps_done
        await pilot.pause(0.5)
        assert session.steps_done == frozen

        await pilot.press("r")
        assert app.stats.batches == {}
        assert panel_text(app, DecodePanel) == "no decode step yet"
        history = app.query_one(DecodeHistoryChart)  # its axes go too, at the next drain
        await until(pilot, lambda: history.points == [] and "┤" not in str(history.render()))

        await pilot.press("space")
        await until(pilot, lambda: "Pause" in footer_labels(app))
        await until(pilot, lambda: session.steps_done > frozen + 10)
        await until(pilot, lambda: app.stats.steps_seen > 0)

        await pilot.press("q")
        await pilot.pause(0.1)
    assert session.finished.is_set()
    assert app.return_code == 0


@pytest.mark.parametrize("sizes", [(1, 8), (1, 4, 8)])
async def test_plus_and_minus_with_several_batch_sizes(tmp_path: Path, sizes) -> None:
    """The default sweep has two batch sizes: + rebuilt the tabs before the old ones were
    gone (DuplicateIds) and the app died. The engine takes the new sweep from the next run."""
    session = tiny_session(tmp_path, batch_sizes=sizes, output_lens=(8,), warmup=False)
    app = InfertopApp(session, refresh_hz=10)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: len(session.events.runs) >= 1)

        def tabs() -> list[str]:
            return [str(t.label) for t in app.query("#batches Tab").results()]

        await pilot.press("plus")  # bs 1 -> 2
        await until(pilot, lambda: tabs() == [f"bs {b}" for b in (2, *sizes[1:])])
        assert app.selected_batch == 2
        await until(pilot, lambda: {r.batch_size for r in session.events.runs[-2:]} & {2})
        await pilot.press("right")  # the next tab
        assert app.selected_batch == sizes[1]
        await pilot.press("minus")
        expected = [b for b in dict.fromkeys((2, sizes[1] // 2, *sizes[2:]))]
        await until(pilot, lambda: tabs() == [f"bs {b}" for b in expected])
        await pilot.press("plus")
        await pilot.press("plus")
        await until(pilot, lambda: session.events.runs[-1].batch_size in app.batch_sizes)
        await pilot.press("q")
    assert app.return_code == 0 and app.crash is None


async def test_space_while_still_pausing_takes_the_pause_back_on_screen_at_once() -> None:
    """The engine pauses at its next step boundary, a second away in a batch-8 prefill. A
    second press meanwhile showed nothing (it sent Pause again): the header kept "pausing"
    until the engine answered. Now it takes the pause back, and says so before any answer
    (the replay session never answers)."""
    app = replay_app()
    sent = app.session.sent  # type: ignore[attr-defined]
    async with app.run_test(size=SIZE) as pilot:
        app.drain()
        await pilot.pause()
        header = app.query_one(HeaderBar)
        assert "running" in header.text
        await pilot.press("space")
        assert "pausing" in header.text and sent == [Pause()]
        await pilot.press("space")
        assert "resuming" in header.text and sent == [Pause(), Resume()]
        await pilot.press("space")
        assert "pausing" in header.text and sent == [Pause(), Resume(), Pause()]


async def test_charts_and_panels_follow_the_selected_batch_tab() -> None:
    app = replay_app()
    async with app.run_test(size=SIZE) as pilot:
        app.drain()
        await pilot.pause()
        for batch in (1, 4):
            if app.selected_batch != batch:
                await pilot.press("right")
                await pilot.pause()
            bs = app.stats.batches[batch]
            history, prefill = app.query_one(DecodeHistoryChart), app.query_one(PrefillChart)
            assert history.points == list(bs.decode_history)
            assert prefill.points == list(bs.prefill_history)
            assert app.query_one(LatencyHistogram).values == [v * 1e3 for v in bs.decode.values]
            for chart in (history, prefill, app.query_one(LatencyHistogram)):
                assert str(chart.border_title).endswith(f"· bs {batch}")
            assert [n for n, _, _ in prefill.points] == [1, 2, 3]  # its own runs, numbered
        throughput = app.query_one(ThroughputChart)
        assert "all batch sizes" in str(throughput.border_title)
        assert "bs 1" in str(throughput.border_subtitle) and "bs 4" in str(
            throughput.border_subtitle
        )  # the legend


async def test_profiled_steps_are_marked_on_the_chart_and_left_out_of_the_figures() -> None:
    app = replay_app()
    async with app.run_test(size=SIZE) as pilot:
        app.drain()
        await pilot.press("right")  # bs 4, whose fourth run was captured
        await pilot.pause()
        bs = app.stats.batches[4]
        marked = [v for _, v, m in bs.decode_history if m]
        assert len(marked) == 6
        assert not set(marked) & set(bs.decode.values)  # not in the statistics
        assert bs.runs == 2 and bs.captured_runs == 1
        assert "1 captured" in panel_text(app, PrefillPanel)
        assert all(not r.captured for r in app.stats.results) and len(app.stats.results) == 5
        chart = app.query_one(DecodeHistoryChart)
        assert "captured" in str(chart.border_subtitle)
        assert any(span.style == "red" for span in chart.render().spans)


async def test_export_and_quit_keep_the_results(tmp_path: Path) -> None:
    session = tiny_session(tmp_path)
    app = InfertopApp(session, refresh_hz=10)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: len(app.stats.results) >= 2)
        await pilot.press("e")
        exported = app.last_export
        assert exported is not None
        await until(pilot, lambda: len(app.stats.results) > app.exported)
        await pilot.press("q")
    lines = [json.loads(line) for line in exported.read_text().splitlines()]
    assert len(lines) >= 2 and all(tuple(d) == RESULT_KEYS for d in lines)
    assert exported.parent == tmp_path / "traces" and exported.name.startswith("infertop-results-")
    # q saved everything, including the runs after the export, and says where
    (farewell,) = app.farewell
    saved = Path(farewell.rsplit(" ", 1)[1])
    assert saved != exported and saved.exists()
    rows = saved.read_text().splitlines()
    assert len(rows) == len(app.stats.results) > len(lines)
    assert farewell == f"infertop: {len(rows)} results saved to {saved}"


async def test_quit_with_a_result_file_says_where_the_runs_went(tmp_path: Path) -> None:
    results = tmp_path / "runs.jsonl"
    session = tiny_session(tmp_path, result_filename=str(results))
    app = InfertopApp(session, refresh_hz=10)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: len(app.stats.results) >= 1)
        await pilot.press("q")
    n = len(results.read_text().splitlines())
    assert n == len(app.stats.results)
    assert app.farewell == [f"infertop: {n} result{'s' if n > 1 else ''} appended to {results}"]


async def test_q_during_a_capture_names_the_files_it_saved(tmp_path: Path) -> None:
    """q while a capture records saves it ("saving the capture before quitting…"), but the
    lines left in the terminal named only the results file."""
    results = tmp_path / "runs.jsonl"
    queue = HeldInCapture()
    session = tiny_session(tmp_path, queue, result_filename=str(results))
    app = InfertopApp(session, refresh_hz=10)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: len(app.stats.results) >= 1)
        session.send(StartProfile(CaptureRequest(name="leaving")))
        await until(pilot, lambda: app.capture == "recording")
        assert queue.captured == 0, "the engine should wait in the capture, held by the queue"
        await pilot.press("q")
        await until(pilot, lambda: app.state == "stopping")
        queue.release.set()  # the engine goes on, and takes the quit at its next step
        await until(pilot, lambda: app.farewell)  # once the capture is saved
    said = [line for line in app.farewell if line.startswith("infertop: capture saved to ")]
    paths = [Path(line.rsplit(" ", 1)[1]) for line in said]
    assert {p.name.split(".", 1)[1] for p in paths} == {
        "pt.trace.json.gz",
        "ops.txt",
        "timeline.trace",
    }, app.farewell
    assert all(p.exists() and p.name.startswith("leaving-all-bs1-") for p in paths)
    assert app.farewell[-1].endswith(f"appended to {results}")


async def test_a_stalled_ui_does_not_block_the_engine(tmp_path: Path) -> None:
    session = tiny_session(tmp_path)
    session.events.max_samples = 50
    app = InfertopApp(session, refresh_hz=10)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: session.steps_done > 10)
        before = session.steps_done
        # the UI thread is stuck (nothing drains the queue) until the engine has run more
        # steps than the queue holds: it never waited for the UI
        deadline = time.monotonic() + 60
        while session.steps_done <= before + 60:
            assert time.monotonic() < deadline, "the engine stalled with the UI"
            time.sleep(0.01)

        def shown_drops() -> int:
            found = re.search(r"UI dropped\s+([\d,]+)", panel_text(app, SystemPanel))
            return int(found[1].replace(",", "")) if found else 0

        await until(pilot, lambda: shown_drops() > 0)  # the panel counts what was lost
        assert shown_drops() <= session.events.dropped
        await pilot.press("q")


async def test_threads_flag_sets_the_engines_threads_and_the_header_says_so(
    tmp_path: Path,
) -> None:
    session = tiny_session(tmp_path, threads=1)
    app = InfertopApp(session, refresh_hz=10)
    async with app.run_test(size=SIZE) as pilot:
        # and the kernel chosen at load (on tiny's small matrices F.linear and the C matmul
        # are within microseconds, and timing picks either)
        await until(pilot, lambda: "CPU (1 thread) [torch · " in app.query_one(HeaderBar).text)
        assert app.ready is not None and app.ready.kernel
        header = app.query_one(HeaderBar).text
        assert f"CPU (1 thread) [torch · {app.ready.kernel}]" in header
        cc = fused_build.compiler()
        if fused_build.torch_runs_on_libgomp() and cc and not fused_build.is_clang(cc):
            await pilot.pause()  # a GCC build: its C ops on torch's threads, and no warning
            assert not any("one thread" in str(n.message) for n in app._notifications)
        await pilot.press("q")


@pytest.mark.skipif(shutil.which("clang") is None, reason="no clang here")
async def test_c_ops_on_one_thread_are_a_warning_naming_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With CC=clang the decode step's C ops run on one thread (clang cannot build for
    torch's GNU OpenMP, engine/backends/torch/fused_build.py): once loaded, the live screen
    says so and names the fix, as `infertop bench` does in its ops line."""
    if not fused_build.torch_runs_on_libgomp():
        pytest.skip("torch runs on another OpenMP runtime here")
    monkeypatch.setenv("CC", str(shutil.which("clang")))
    monkeypatch.setenv("INFERTOP_CACHE_DIR", str(tmp_path / "cache"))
    app = InfertopApp(tiny_session(tmp_path), refresh_hz=10)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: any("set CC=gcc" in str(n.message) for n in app._notifications))
        await pilot.press("q")


def test_header_words_are_spaced() -> None:
    from infertop.engine.events import EngineReady

    header = HeaderBar()
    ready = EngineReady("smollm2-135m", 134_515_008, "float32", "CPU (2 threads)", "torch", 8192)
    header.refresh_from(ready, "smollm2-135m", "running", "")
    assert header.text == (
        " infertop  ● running  │ smollm2-135m 134.5M float32 │ CPU (2 threads) [torch]"
    )


async def test_at_80_columns_the_header_keeps_the_kernel_whole() -> None:
    """The default model's header ran past 80 columns and was cut to "[torch · o…": there
    it leaves out the parameter count and the backend's name instead."""
    from infertop.engine.events import EngineReady

    class OneHeader(App[None]):
        def compose(self) -> ComposeResult:
            yield HeaderBar()

    ready = EngineReady("smollm2-135m", 134_515_008, "float32", "CPU (2 threads)", "torch",
                        8192, kernel="oneDNN packed")  # fmt: skip
    app = OneHeader()
    async with app.run_test(size=(80, 3)) as pilot:
        header = app.query_one(HeaderBar)
        header.refresh_from(ready, "smollm2-135m", "running", "")
        assert header.text == (
            " infertop  ● running  │ smollm2-135m float32 │ CPU (2 threads) [oneDNN packed]"
        )
        await pilot.resize_terminal(120, 3)
        await pilot.pause()
        header.refresh_from(ready, "smollm2-135m", "running", "")
        assert header.text.endswith("134.5M float32 │ CPU (2 threads) [torch · oneDNN packed]")


def test_main_screen_snapshot(snap_compare) -> None:
    """Two batch tabs, bs 1 selected: every chart shows bs 1 only."""
    app = replay_app()

    async def drained(pilot) -> None:
        app.drain()
        await pilot.pause()
        app.clear_notifications()
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=drained)


def test_main_screen_snapshot_80x24(snap_compare) -> None:
    app = replay_app()

    async def drained(pilot) -> None:
        app.drain()
        await pilot.pause()
        app.clear_notifications()
        await pilot.press("right")  # bs 4, with the captured steps marked
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=drained)


async def test_at_80x24_numbers_fit_and_the_footer_keeps_the_main_keys() -> None:
    app = replay_app()
    async with app.run_test(size=(80, 24)) as pilot:
        app.drain()
        await pilot.pause()
        for cls in (PrefillPanel, DecodePanel, SystemPanel):
            panel = app.query_one(cls)
            width = panel.content_size.width
            assert all(len(row) <= width for row in panel.text.split("\n")), (cls, width)
            assert "…" not in panel.text
        shown = [
            key.key_display
            for key in app.query("FooterKey").results()
            if key.region.right <= 80 and key.region.width > 0
        ]
        assert {"space", "p", "?", "q"} <= set(shown), shown
        assert app.query_one(DecodeHistoryChart).content_size.height >= 4  # room to draw
        charts_tab = app.query_one("TabbedContent").get_tab("tab-charts")  # type: ignore[attr-defined]
        assert str(charts_tab.label) == "Charts (2 more at 34+ rows)"  # says what is hidden
        await pilot.resize_terminal(120, 40)
        await until(pilot, lambda: str(charts_tab.label) == "Charts")
        assert app.query_one(ThroughputChart).region.height > 0


async def test_at_60_columns_short_values_stay_whole_beside_a_long_one() -> None:
    """Values were aligned on the widest: at 60x20 the System panel's "6.0/24.0 GiB" pushed
    every value out of it ("process CPU      …"); now only the values too long are cut."""
    app = replay_app()
    async with app.run_test(size=(60, 20)) as pilot:
        app.drain()
        await pilot.pause()
        panel = app.query_one(SystemPanel)
        width = panel.content_size.width
        short = ("process CPU", "system CPU", "UI dropped")
        lines = [line for line in panel.text.splitlines() if line.startswith(short)]
        assert len(lines) == 3 and all(len(line) <= width for line in lines), (width, lines)
        assert lines[0].endswith("%") and lines[2].endswith("0")


@pytest.mark.parametrize(("kind", "shown"), [("cpu", False), ("cuda", True), ("metal", True)])
async def test_device_memory_rows_follow_the_engines_device_kind(kind: str, shown: bool) -> None:
    """Device memory is shown from the engine's kind (on a CPU it would repeat the RSS)."""
    import dataclasses

    from infertop.engine.events import EngineReady

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


async def test_minus_merging_into_an_existing_size_says_so() -> None:
    app = replay_app()
    async with app.run_test(size=SIZE) as pilot:
        app.drain()
        await pilot.press("right")  # bs 4
        await pilot.press("minus")  # 4 -> 2: sent; the tabs change when the engine takes it
        assert app.session.sent[-1] == SetSweep(batch_sizes=(1, 2))
        assert app.batch_sizes == [1, 4]
        app.session.events.put(SweepChanged((1, 2), (32,), (24,)))  # the engine's answer
        app.drain()
        await until(pilot, lambda: app.batch_sizes == [1, 2] and app.selected_batch == 2)
        await pilot.press("minus")  # 2 -> 1, which is in the sweep already
        assert app.session.sent[-1] == SetSweep(batch_sizes=(1,))
        assert any("already in the sweep" in n.message for n in app._notifications)


async def test_presses_before_the_engine_answers_build_on_each_other() -> None:
    """The engine takes a sweep at its next step boundary (seconds away in a long prefill):
    each press says it was taken, and a press builds on the one before, also once the
    engine has answered an earlier one (it answers each in turn: taking the first answer as
    the last dropped the presses after it, and `+ + +` on bs 8 changed bs 1)."""
    app = replay_app()
    async with app.run_test(size=SIZE) as pilot:
        app.drain()
        await pilot.press("plus")  # bs 1 -> 2, not answered yet
        assert any("bs 1 → 2" in n.message for n in app._notifications)
        await pilot.press("plus")  # 2 -> 4, which is in the sweep: they merge
        assert app.session.sent[-2:] == [SetSweep(batch_sizes=(2, 4)), SetSweep(batch_sizes=(4,))]
        assert app.batch_sizes == [1, 4]  # the tabs wait for the engine
        app.session.events.put(SweepChanged((2, 4), (32,), (24,)))  # it answers each in turn
        app.drain()
        await pilot.press("minus")  # 4 -> 2: on the last press, not on the first answer
        assert app.session.sent[-1] == SetSweep(batch_sizes=(2,))
        app.session.events.put(SweepChanged((4,), (32,), (24,)))
        app.session.events.put(SweepChanged((2,), (32,), (24,)))
        app.drain()
        await until(pilot, lambda: app.batch_sizes == [2] and app.selected_batch == 2)
        await pilot.press("minus")  # answered: from the engine's sweep again
        assert app.session.sent[-1] == SetSweep(batch_sizes=(1,))


async def test_the_engine_answering_an_earlier_press_keeps_the_later_ones() -> None:
    """`+ + +` on bs 8 in the real app: the engine's answer to the first press came after
    the second, and the third changed bs 1 (the answer was taken as the last, and the
    selection fell back to the first tab). And `- ← +` changed the first tab's target, not
    the tab that ← selected."""
    app = replay_app()
    async with app.run_test(size=SIZE) as pilot:
        app.drain()
        await pilot.press("right", "plus", "plus")  # bs 4 -> 8 -> 16, sent in turn
        app.session.events.put(SweepChanged((1, 8), (32,), (24,)))  # the first one's answer
        app.drain()
        await pilot.press("plus")  # 16 -> 32
        assert app.session.sent[-1] == SetSweep(batch_sizes=(1, 32))
        for sizes in ((1, 16), (1, 32)):
            app.session.events.put(SweepChanged(sizes, (32,), (24,)))
        app.drain()
        tabs = app.query_one("#batches", Tabs)
        await until(pilot, lambda: (app.selected_batch, tabs.active) == (32, "bs-32"))
        await pilot.pause(0.2)  # the tab activations the rebuild posted
        assert [str(t.label) for t in tabs.query(Tab)] == ["bs 1", "bs 32"]
        assert (app.batch_sizes, app.selected_batch, tabs.active) == ([1, 32], 32, "bs-32")
        # another tab picked while a change is pending: the next press is on that tab
        await pilot.press("minus", "left", "plus")  # 32 -> 16; then bs 1 -> 2
        assert app.session.sent[-2:] == [SetSweep(batch_sizes=(1, 16)), SetSweep((2, 16))]
        for sizes in ((1, 16), (2, 16)):
            app.session.events.put(SweepChanged(sizes, (32,), (24,)))
        app.drain()
        await until(pilot, lambda: (app.selected_batch, tabs.active) == (2, "bs-2"))
        await pilot.pause(0.2)


async def test_a_burst_of_arrow_then_plus_changes_the_tab_the_arrow_showed() -> None:
    """`← +` typed in one burst (as a terminal delivers them): the focused tab bar takes ←
    itself, and its TabActivated reached the app after the +, which changed the tab just
    left (bs 4 -> 8 with bs 1 shown, in the real app)."""
    app = replay_app()
    async with app.run_test(size=SIZE) as pilot:
        app.drain()
        await pilot.press("right")  # bs 4
        await until(pilot, lambda: app.selected_batch == 4)
        for key, char in (("left", None), ("plus", "+")):  # queued together, no wait
            app.post_message(events.Key(key, char))
        await until(pilot, lambda: len(app.session.sent) >= 1)
        assert app.session.sent[-1] == SetSweep(batch_sizes=(2, 4))


async def test_keys_pressed_before_the_tabs_are_rebuilt_act_on_the_new_sweep() -> None:
    """Fast presses: the engine's answer is taken at once, the tabs rebuilt later. A press in
    between changed the old selection's size (`+ +` on bs 2 gave bs 1 -> 2), and the rebuild
    left the first tab selected."""
    app = replay_app()
    async with app.run_test(size=SIZE) as pilot:
        app.drain()
        await pilot.press("right")  # bs 4
        await pilot.press("plus")  # 4 -> 8
        app.session.events.put(SweepChanged((1, 8), (32,), (24,)))
        app.drain()  # as the refresh timer does; the rebuild of the tabs comes after it
        await app.run_action("batch(2)")  # pressed before the rebuild: 8 -> 16
        assert app.session.sent[-1] == SetSweep(batch_sizes=(1, 16))
        app.session.events.put(SweepChanged((1, 16), (32,), (24,)))
        app.drain()
        await app.run_action("select_batch(1)")  # -> bs 1 (wraps), then at once:
        await app.run_action("batch(2)")  # 1 -> 2
        assert app.session.sent[-1] == SetSweep(batch_sizes=(2, 16))
        await pilot.pause(0.3)  # the rebuilds and the activations they post
        tabs = app.query_one("#batches", Tabs)
        assert (app.selected_batch, tabs.active) == (1, "bs-1")
        assert [str(t.label) for t in tabs.query(Tab)] == ["bs 1", "bs 16"]
        app.session.events.put(SweepChanged((2, 16), (32,), (24,)))
        app.drain()
        await pilot.press("left")  # wraps to bs 16, before the tabs show bs 2
        await pilot.pause(0.3)
        assert (app.selected_batch, tabs.active) == (16, "bs-16")


@pytest.mark.parametrize("capture, says", [("armed", False), ("recording", True)])
async def test_q_says_it_saves_a_capture_only_when_one_records(capture: str, says: bool) -> None:
    """An armed capture has no steps yet: q said "saving the capture" for it too."""
    app = replay_app()
    said: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        app.drain()
        app.capture = capture
        app.notify = lambda message, **kw: said.append(message)  # type: ignore[method-assign]
        await pilot.press("q")
        await pilot.pause(0.2)
    assert any("saving the capture" in m for m in said) is says, said


def test_header_names_the_cpu_threads_beside_a_device() -> None:
    from infertop.engine.events import EngineReady

    header = HeaderBar()
    ready = EngineReady("qwen2.5-0.5b", 494_032_768, "bfloat16", "NVIDIA H100", "torch", 32768,
                        device_kind="cuda", threads=1)  # fmt: skip
    header.refresh_from(ready, "qwen2.5-0.5b", "running", "")
    assert header.text.endswith("NVIDIA H100 [torch] · 1 CPU thread")


@pytest.mark.parametrize("before_q", [(), ("minus",)], ids=["q", "minus-then-q"])
async def test_q_during_a_long_prefill_waits_for_it_and_exits_0(
    tmp_path: Path, before_q: tuple[str, ...]
) -> None:
    """A prefill cannot stop half way: q while one is in flight (the default model's batch-8
    prefill takes seconds) waits for it, then quits with status 0. It exited with status 1
    when the prefill outlasted a 2 s grace (a CI run of the real-terminal key test met it),
    and crashed (MountError) when a batch change was pending: the engine takes it at the
    step's end, and the tabs were rebuilt while the app exited."""
    session = tiny_session(
        tmp_path, batch_sizes=(96,), input_lens=(2040,), output_lens=(4,), warmup=False
    )
    app = InfertopApp(session, refresh_hz=10)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: len(session.events.runs) >= 1)
        pressed = time.monotonic()
        await pilot.press(*before_q, "q")
        await until(pilot, lambda: session.finished.is_set())
        waited = time.monotonic() - pressed
        await pilot.pause(0.2)
    assert waited > 2.0, f"the prefill took {waited:.1f} s: too short to test the wait"
    assert app.return_code == 0 and app.crash is None
    assert not app.stats.results  # the run in flight ended at its prefill, unmeasured
