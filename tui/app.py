"""The live screen. The engine session runs in a Textual thread worker; a timer drains its
event queue a few times a second and repaints what changed. Keys become engine commands."""

from __future__ import annotations

import asyncio
import gc
import signal
import time
from pathlib import Path
from typing import ClassVar, Protocol

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.widgets import Footer, Tab, TabbedContent, TabPane, Tabs

from engine.backend import MemoryStats
from engine.channel import EventQueue
from engine.commands import Command, Pause, Resume, SetSweep, StartProfile, StopProfile
from engine.config import RunConfig
from engine.events import (
    EngineError,
    EngineReady,
    Event,
    LoadProgress,
    Notice,
    ProfileSaving,
    ProfileStarted,
    ProfileStopped,
    RunSkipped,
    Sample,
    StateChanged,
    TraceSaved,
)
from engine.profiling.naming import safe_name, trace_stem, unique_path
from engine.profiling.request import CaptureRequest
from engine.results import append_results
from engine.stats import LiveStats
from engine.sysmon import SystemMonitor, SystemSample
from tui.charts import HistoryChart, LatencyHistogram, PrefillChart, ThroughputChart
from tui.messages import BatchSelected
from tui.panels import DecodePanel, HeaderBar, PrefillPanel, ProgressLine, SystemPanel
from tui.screens import HelpScreen, ProfileDialog
from tui.traces import TracesView


class SessionLike(Protocol):
    """What the app needs from the engine side (engine.session.Session implements it)."""

    cfg: RunConfig
    events: EventQueue

    def run(self) -> None: ...
    def send(self, cmd: Command) -> None: ...
    def stop(self, timeout: float = 2.0) -> bool: ...
    def memory(self) -> MemoryStats | None: ...
    def capture_steps(self) -> int: ...


class Sampler(Protocol):
    def sample(self) -> SystemSample: ...


class InfertopApp(App[int]):
    CSS_PATH = "infertop.tcss"
    TITLE = "infertop"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "toggle_pause", "Pause/Resume"),
        Binding("r", "reset", "Reset stats"),
        Binding("plus,equals_sign", "batch(2)", "Batch ×2", key_display="+"),
        Binding("minus", "batch(0.5)", "Batch ÷2", key_display="-"),
        Binding("p", "profile", "Profile"),
        Binding("e", "export", "Export"),
        Binding("t", "toggle_view", "Charts/Traces"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(
        self,
        session: SessionLike,
        refresh_hz: float = 3.0,
        sampler: Sampler | None = None,
        start_worker: bool = True,
        handle_signals: bool = False,
    ) -> None:
        super().__init__()
        self.session = session
        self.cfg = session.cfg
        self.refresh_hz = refresh_hz
        self.sampler = sampler
        self.start_worker = start_worker
        self.handle_signals = handle_signals
        self.last_export: Path | None = None
        self.stats = LiveStats()
        self.ready: EngineReady | None = None
        self.state = "starting"
        self.load: tuple[str, int, int] | None = None
        self.selected_batch = self.cfg.batch_sizes[0]
        self.sweep = tuple(self.cfg.sweep())
        self.batch_sizes = list(self.cfg.batch_sizes)
        self.system: SystemSample | None = None
        self.capture = ""  # "" | armed | recording | saving
        self.saving_line = ""
        self._last_system = 0.0

    # -- layout ---------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield HeaderBar(id="header")
        yield Tabs(*[Tab(f"bs {b}", id=f"bs-{b}") for b in self.batch_sizes], id="batches")
        with Horizontal(id="numbers"):
            yield PrefillPanel("Prefill", id="prefill")
            yield DecodePanel("Decode", id="decode")
            yield SystemPanel("System", id="system")
        with TabbedContent(id="views"):
            with TabPane("Charts", id="tab-charts"), Horizontal(id="charts"):
                with Vertical(id="time-charts"):
                    yield HistoryChart(id="history")
                    yield PrefillChart(id="prefill-history")
                with Vertical(id="side-charts"):
                    yield LatencyHistogram(id="histogram")
                    yield ThroughputChart(id="throughput")
            with TabPane("Traces", id="tab-traces"):
                yield TracesView(id="traces")
        yield ProgressLine(id="progress")
        yield Footer()

    def on_mount(self) -> None:
        if self.sampler is None:
            self.sampler = SystemMonitor()
        if self.start_worker:
            self.run_worker(self.session.run, thread=True, name="engine", exit_on_error=False)
        self.set_interval(1.0 / self.refresh_hz, self.drain)
        if self.handle_signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGHUP):
                loop.add_signal_handler(sig, lambda s=sig: asyncio.ensure_future(self.hang_up(s)))
        self.repaint(changed=True)

    # -- the timer ------------------------------------------------------------------------
    def drain(self) -> None:
        """Fold every queued engine event into the statistics, then repaint once."""
        events = self.session.events.drain()
        for ev in events:
            if not isinstance(ev, Sample):
                self.handle_control(ev)
        changed = self.stats.apply(events)
        now = time.monotonic()
        if now - self._last_system >= 1.0 and self.sampler is not None:
            self.system = self.sampler.sample()
            self._last_system = now
        try:
            self.repaint(changed or bool(events))
        except NoMatches:  # the screen is being torn down (quitting): nothing to paint
            return

    def handle_control(self, ev: Event) -> None:
        if isinstance(ev, StateChanged):
            self.state = ev.state
        elif isinstance(ev, LoadProgress):
            self.load = (ev.stage, ev.done, ev.total)
        elif isinstance(ev, EngineReady):
            self.ready = ev
            # Everything alive now (torch, the model, Textual) lives as long as the app: keep
            # it out of the GC's full passes. Under a flat-out engine those ran every ~5 s over
            # ~220k objects, holding the GIL (and a pending key) for 75-105 ms each.
            gc.collect()  # free what loading left unreachable (the compile's graphs) first
            gc.freeze()
        elif isinstance(ev, Notice):
            self.notify(ev.message, severity=_SEVERITY.get(ev.level, "information"))
        elif isinstance(ev, RunSkipped):
            self.notify(ev.reason, severity="error", timeout=8)
        elif isinstance(ev, ProfileStarted):
            self.capture = "recording"
            self.notify(f"capturing {ev.stage} with the {ev.kind} profiler (p to stop)")
        elif isinstance(ev, ProfileSaving):
            self.capture, self.saving_line = "saving", ev.message
        elif isinstance(ev, TraceSaved):
            self.query_one(TracesView).add(ev)
            if ev.kind != "ops":
                self.notify(f"saved {ev.path}", timeout=6)
        elif isinstance(ev, ProfileStopped):
            self.capture, self.saving_line = "", ""
            if ev.steps == 0:
                self.notify(f"capture {ev.reason}", severity="warning")
        elif isinstance(ev, EngineError):
            self.notify(
                f"{ev.message} (press space to resume, - to lower the batch size)",
                severity="error",
                timeout=10,
            )

    def repaint_state(self) -> None:
        """Only the lines that show the engine's state: what a key must update at once."""
        self.query_one(HeaderBar).refresh_from(self.ready, self.cfg.model, self.state, self.rec())
        self.query_one(ProgressLine).refresh_from(
            self.stats.progress, self.sweep, self.state, self.load
        )

    def repaint(self, changed: bool) -> None:
        bs = self.stats.batches.get(self.selected_batch)
        self.repaint_state()
        mem = self.session.memory() if self.ready else None
        kind = self.ready.device_kind if self.ready else "cpu"
        self.query_one(SystemPanel).refresh_from(
            self.system, mem, self.session.events.dropped, kind
        )
        # charts check their own cheap keys and throttle, so they are asked every tick
        self.query_one(HistoryChart).refresh_from(self.stats)
        self.query_one(PrefillChart).refresh_from(self.stats)
        self.query_one(LatencyHistogram).refresh_from(bs)
        self.query_one(ThroughputChart).refresh_from(self.stats)
        if changed:
            self.query_one(PrefillPanel).refresh_from(bs)
            self.query_one(DecodePanel).refresh_from(bs)

    # -- keys -----------------------------------------------------------------------------
    def action_toggle_pause(self) -> None:
        if self.state in ("paused", "error"):
            self.session.send(Resume())
            self.state = "resuming"
        else:
            self.session.send(Pause())
            self.state = "pausing"
        self.repaint_state()

    def action_reset(self) -> None:
        self.stats.reset()
        self.repaint(changed=True)
        self.notify("statistics reset")

    def action_batch(self, factor: float) -> None:
        old = self.selected_batch
        new = max(1, int(old * factor))
        if new == old:
            self.notify("batch size is already 1", severity="warning")
            return
        sizes = [new if b == old else b for b in self.batch_sizes]
        sizes = list(dict.fromkeys(sizes))  # no duplicate tabs
        self.session.send(SetSweep(batch_sizes=tuple(sizes)))
        self.set_batch_sizes(sizes, select=new)

    def set_batch_sizes(self, sizes: list[int], select: int) -> None:
        self.batch_sizes = sizes
        self.sweep = tuple(self.cfg.with_changes(batch_sizes=tuple(sizes)).sweep())
        tabs = self.query_one(Tabs)
        tabs.clear()
        for b in sizes:
            tabs.add_tab(Tab(f"bs {b}", id=f"bs-{b}"))
        tabs.active = f"bs-{select}"
        self.selected_batch = select

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        if event.tab is not None and event.tab.id:
            self.post_message(BatchSelected(int(event.tab.id.removeprefix("bs-"))))

    def on_batch_selected(self, message: BatchSelected) -> None:
        self.selected_batch = message.batch_size
        self.repaint(changed=True)

    def rec(self) -> str:
        if self.capture == "recording":
            return f"{self.session.capture_steps()} steps"
        if self.capture == "saving":
            return f"saving: {self.saving_line}"
        return "armed" if self.capture == "armed" else ""

    def action_profile(self) -> None:
        if self.capture in ("armed", "recording"):
            self.session.send(StopProfile())
            return
        if self.capture == "saving":
            self.notify("a trace is being saved; wait for it", severity="warning")
            return
        device = self.ready.device_name if self.ready else "device"
        self.push_screen(ProfileDialog(self.cfg.run_name, device), self._start_capture)

    def _start_capture(self, request: CaptureRequest | None) -> None:
        if request is None:
            return
        self.session.send(StartProfile(request))
        self.capture = "armed"
        self.repaint_state()

    def action_toggle_view(self) -> None:
        views = self.query_one(TabbedContent)
        views.active = "tab-traces" if views.active == "tab-charts" else "tab-charts"

    def action_export(self) -> None:
        self.export_results(quiet=False)

    def export_results(self, quiet: bool) -> None:
        results = list(self.stats.results)
        if not results:
            if not quiet:
                self.notify("no completed run to export yet", severity="warning")
            return
        directory = Path(self.cfg.trace_dir)
        try:
            directory.mkdir(parents=True, exist_ok=True)
            b, i, o = self.sweep[0]
            stem = trace_stem(safe_name(self.cfg.run_name), "results", b, i, o)
            path = unique_path(directory, stem, "jsonl")
            append_results(path, results)
        except OSError as e:
            self.notify(
                f"export failed: {e.strerror or e}; pass a writable --trace-dir", severity="error"
            )
            return
        self.last_export = path
        self.notify(f"{len(results)} results → {path}")

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    async def hang_up(self, sig: int) -> None:
        """SIGTERM or SIGHUP (an SSH link that dropped): save the capture and the results,
        then exit with status 0, within a few seconds."""
        self.state = "stopping"
        await asyncio.to_thread(self.session.stop, 4.0)
        self.drain()  # fold in the last results and the saved traces
        if self.stats.results:
            self.export_results(quiet=True)
        self.exit(0)

    def on_unmount(self) -> None:
        # However the app ends (q, an exception, a test failure), the engine thread stops.
        self.session.stop(timeout=2.0)

    async def action_quit(self) -> None:
        self.state = "stopping"
        self.repaint_state()
        # an active capture is saved before the engine stops: give that time, and keep
        # the screen live meanwhile (the wait runs off the event loop)
        timeout = 120.0 if self.capture else 2.0
        if self.capture:
            self.notify("saving the capture before quitting…", timeout=timeout)
        stopped = await asyncio.to_thread(self.session.stop, timeout)
        self.exit(0 if stopped else 1)


_SEVERITY = {"info": "information", "warning": "warning", "error": "error"}
