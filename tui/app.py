"""The live screen. The engine session runs in a Textual thread worker; a timer drains its
event queue a few times a second and repaints what changed. Keys become engine commands, and
what the screen says about the engine (state, capture) comes from the engine's answers."""

from __future__ import annotations

import asyncio
import os
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, Literal, Protocol

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.driver import Driver
from textual.notifications import SeverityLevel
from textual.widgets import DataTable, Tab, TabbedContent, TabPane, Tabs
from textual.worker import Worker, WorkerState

from infertop.engine.backend import MemoryStats
from infertop.engine.backends.server.metrics import ServerMetrics
from infertop.engine.backends.server.profiler import no_profiler_routes
from infertop.engine.channel import EventQueue
from infertop.engine.commands import Command, Pause, Resume, SetSweep, StartProfile, StopProfile
from infertop.engine.config import RunConfig
from infertop.engine.events import (
    EngineError,
    EngineReady,
    EngineState,
    Event,
    LoadProgress,
    Notice,
    ProfileArmed,
    ProfileFailed,
    ProfileSaving,
    ProfileStarted,
    ProfileStopped,
    RunSkipped,
    Sample,
    StateChanged,
    SweepChanged,
    TraceSaved,
)
from infertop.engine.profiling.controller import open_ended_cap
from infertop.engine.profiling.request import CaptureRequest
from infertop.engine.results import export_results
from infertop.engine.session import append_to_log, log_path
from infertop.engine.stats import LiveStats
from infertop.engine.sysmon import SystemMonitor, SystemSample
from infertop.engine.text import plural
from infertop.tui import leaving
from infertop.tui.charts import (
    Chart,
    DecodeHistoryChart,
    LatencyHistogram,
    PrefillChart,
    ThroughputChart,
)
from infertop.tui.footer import KeyFooter
from infertop.tui.keys import bindings
from infertop.tui.messages import BatchSelected, ServerScraped
from infertop.tui.panels import (
    DecodePanel,
    HeaderBar,
    PrefillPanel,
    ServerPanel,
    StatusLine,
    SystemPanel,
)
from infertop.tui.screens import HelpScreen, ProfileDialog, capture_kind
from infertop.tui.traces import TracesView
from infertop.tui.views import Views


class SessionLike(Protocol):
    """What the app needs from the engine side (engine.session.Session implements it)."""

    cfg: RunConfig
    events: EventQueue

    def run(self) -> None: ...
    def send(self, cmd: Command) -> None: ...
    def stop(self, timeout: float = 2.0) -> bool: ...
    def memory(self) -> MemoryStats | None: ...
    def capture_steps(self) -> int: ...
    def server_metrics(self) -> ServerMetrics | None: ...


class Sampler(Protocol):
    def sample(self) -> SystemSample: ...


# seconds between chart redraws with --low-bandwidth (bench/ssh_bytes.py measures it)
LOW_BANDWIDTH_CHART_INTERVAL = 5.0
# how long q waits for the engine to stop before exiting with status 1: saving an active
# capture, or the step in flight (a big model's prefill)
CAPTURE_SAVE_S = 120.0
STEP_IN_FLIGHT_S = 60.0

# the engine's states, and the app's own while it waits for the engine to act on a key
AppState = EngineState | Literal["starting", "pausing", "resuming", "stopping"]


class InfertopApp(App[int]):
    CSS_PATH = "infertop.tcss"
    TITLE = "infertop"
    ENABLE_COMMAND_PALETTE = False  # every action has its own key; ^p would only take room
    BINDINGS: ClassVar[list[BindingType]] = list(bindings())
    # below 34 rows the screen keeps one chart per column (tui/infertop.tcss)
    VERTICAL_BREAKPOINTS = [(0, "-short"), (34, "-tall")]

    def __init__(
        self,
        session: SessionLike,
        refresh_hz: float = 3.0,
        sampler: Sampler | None = None,
        start_worker: bool = True,
        handle_signals: bool = False,
        low_bandwidth: bool = False,
    ) -> None:
        # NO_COLOR (no-color.org): Textual then draws in greys; with its ANSI colours on it
        # drops colour altogether instead, which is what the convention asks
        super().__init__(ansi_color="NO_COLOR" in os.environ)
        if "TEXTUAL_ANIMATIONS" not in os.environ:
            # the Tabs' sliding underline redraws for 0.3 s after each switch: CPU and bytes
            # over SSH for nothing a profiler needs (bench/RESULTS.md)
            self.animation_level = "none"
        self.session = session
        self.cfg = session.cfg
        self.refresh_hz = refresh_hz
        self.low_bandwidth = low_bandwidth
        self.sampler = sampler
        self.start_worker = start_worker
        self.handle_signals = handle_signals
        self.stats = LiveStats()
        self.ready: EngineReady | None = None
        self.state: AppState = "starting"
        self.footer_resumes = False
        self.error: EngineError | None = None  # what stopped the engine, shown until it runs
        self.load: tuple[str, int, int] | None = None
        self.selected_batch = self.cfg.batch_sizes[0]
        self.sweep = tuple(self.cfg.sweep())
        self.batch_sizes = list(self.cfg.batch_sizes)
        self.system: SystemSample | None = None
        self.capture = ""  # "" | requested | armed | recording | saving
        # each shown tab's size -> the size the presses not yet answered make it
        self.pending_of: dict[int, int] = {}
        self.sweeps_unanswered = 0  # SetSweeps sent; the engine answers each in turn
        # while the tabs are rebuilt, the tab that ends it: they activate others on the way
        self.tab_to_come: str | None = None
        self.saving_line = ""
        self.last_export: Path | None = None
        self.exported = 0  # results in the last export
        self.farewell: list[str] = []  # printed once the terminal is restored
        self.saved_on_quit: list[str] = []  # the capture q saved (its toast is gone by then)
        self.crash: str | None = None  # the one line printed after a crash
        self._last_system = 0.0
        self.server_stats: ServerMetrics | None = None  # the last scrape of its /metrics
        self._scraping = False
        self._short = False
        self._leaving = False
        self._restore_signals: Callable[[], None] | None = None
        self._loop_ref: asyncio.AbstractEventLoop

    def get_driver_class(self) -> type[Driver]:
        """Textual's driver for this terminal; on Linux and macOS the one that writes only
        what changed (tui/frugal_driver.py). TEXTUAL_DRIVER still picks one by name."""
        driver = super().get_driver_class()
        if driver.__name__ == "LinuxDriver" and not os.environ.get("TEXTUAL_DRIVER"):
            from infertop.tui.frugal_driver import FrugalDriver

            return FrugalDriver
        return driver

    # -- layout ---------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield HeaderBar(id="header")
        yield Tabs(*[Tab(f"bs {b}", id=f"bs-{b}") for b in self.batch_sizes], id="batches")
        with Horizontal(id="numbers"):
            yield PrefillPanel("Prefill (ms)", id="prefill")
            yield DecodePanel("Decode step (ms)", id="decode")
            if self.cfg.server is not None:
                yield ServerPanel("Server /metrics (ms)", id="system")
            else:
                yield SystemPanel("System", id="system")
        with Views(id="views"):
            with TabPane("Charts", id="tab-charts"), Horizontal(id="charts"):
                with Vertical(id="time-charts"):
                    yield DecodeHistoryChart(id="history")
                    yield PrefillChart(id="prefill-history")
                with Vertical(id="side-charts"):
                    yield LatencyHistogram(id="histogram")
                    yield ThroughputChart(id="throughput")
            with TabPane("Traces", id="tab-traces"):
                yield TracesView(id="traces")
        yield StatusLine(id="status")
        yield KeyFooter()

    def on_mount(self) -> None:
        if self.low_bandwidth:  # the charts are the bytes on a slow link: draw them seldom
            for chart in self.query(Chart):
                chart.min_interval = max(chart.min_interval, LOW_BANDWIDTH_CHART_INTERVAL)
        if self.sampler is None:
            self.sampler = SystemMonitor()
        if self.start_worker:
            self.run_worker(self.session.run, thread=True, name="engine", exit_on_error=False)
        self.refresh_timer = self.set_interval(1.0 / self.refresh_hz, self.drain)
        self._loop_ref = asyncio.get_running_loop()
        if self.handle_signals:  # SIGTERM, SIGHUP, SIGQUIT: save and leave (tui/leaving.py)
            self._restore_signals = leaving.install(self)
        self.query_one("#batches", Tabs).focus()
        self.repaint(changed=True)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The engine thread ended with an exception Session.run did not catch: say so, as a
        failed engine, instead of showing the last state it reported."""
        if event.worker.name != "engine" or event.state != WorkerState.ERROR:
            return
        error = event.worker.error
        assert error is not None
        tb = "".join(traceback.format_exception(error))
        append_to_log(self.cfg, f"the engine thread died\n{tb}")
        first = str(error).splitlines()[0] if str(error) else ""
        self.error = EngineError(f"engine thread died: {type(error).__name__}: {first}", tb, True)
        self.state = "failed"
        self.capture = ""
        self.repaint_state()

    # -- the timer ------------------------------------------------------------------------
    def drain(self) -> None:
        """Fold every queued engine event into the statistics, then repaint once."""
        if self._leaving:
            return
        events = self.session.events.drain()
        for ev in events:
            if not isinstance(ev, Sample):
                self.handle_control(ev)
        changed = self.stats.apply(events)
        now = time.monotonic()
        if now - self._last_system >= 1.0 and self.sampler is not None:
            self.system = self.sampler.sample()
            self._last_system = now
        self.scrape_server()
        try:
            self.repaint(changed or bool(events))
        except NoMatches:  # the screen is being torn down (quitting): nothing to paint
            return

    def scrape_server(self) -> None:
        """One scrape of the server's /metrics per refresh, in a thread, never two at once."""
        if self.cfg.server is None or self._scraping or self.ready is None:
            return
        self._scraping = True
        self.run_worker(self._scrape, thread=True, name="metrics", exit_on_error=False)

    def _scrape(self) -> None:  # a worker thread
        try:
            metrics = self.session.server_metrics()
        finally:
            self._scraping = False
        self.post_message(ServerScraped(metrics))

    def on_server_scraped(self, message: ServerScraped) -> None:
        self.server_stats = message.metrics

    def metrics_missing(self) -> str:
        """Why the Server panel has no server numbers."""
        backend = self.ready.backend if self.ready else ""
        if backend.startswith("SGLang"):
            return "none: start SGLang with --enable-metrics"
        if backend.startswith("vLLM"):
            return "none: /metrics did not answer"
        return "none: not vLLM or SGLang"

    def handle_control(self, ev: Event) -> None:
        match ev:
            case StateChanged(state=state):
                # stopping and a dead engine are final: a late event must not hide them
                if self.state != "stopping" and not self.engine_dead():
                    self.state = state
                if state in ("running", "warming up"):
                    self.error = None
            case LoadProgress(stage=stage, done=done, total=total):
                self.load = (stage, done, total)
            case EngineReady():
                self.ready = ev
            case EngineError(fatal=fatal):
                self.error = ev
                if fatal:
                    self.state = "failed"
            case Notice(message=message, level=level):
                self.notify(message, severity=_SEVERITY.get(level, "information"))
            case RunSkipped(reason=reason):
                self.notify(reason, severity="error", timeout=8)
            case SweepChanged(batch_sizes=sizes):
                # only the answer to the last press says what the engine runs now: taking an
                # earlier one dropped the presses after it (`+ + +` changed bs 1 on the third)
                self.sweeps_unanswered = max(0, self.sweeps_unanswered - 1)
                if self.sweeps_unanswered:
                    return
                pending_of, self.pending_of = self.pending_of, {}
                if list(sizes) != self.batch_sizes:
                    keep = pending_of.get(self.selected_batch, self.selected_batch)
                    keep = keep if keep in sizes else self.selected_batch
                    self.take_sweep(list(sizes), keep if keep in sizes else sizes[0])
            case ProfileArmed(stage=stage, steps=steps, left_out=left_out):
                self.capture = "armed"
                window = plural(steps, "step") if steps else "until p"
                not_here = "".join(f"; not recorded: {why}" for why in left_out)
                self.notify(
                    f"capture armed: {stage}, {window}; it starts at the next step{not_here}"
                )
            case ProfileFailed(message=message):
                self.capture, self.saving_line = "", ""
                self.notify(f"capture not started: {message}", severity="error", timeout=8)
            case ProfileStarted(kind=kind, stage=stage):
                self.capture = "recording"
                self.notify(f"capturing {stage} with the {kind} profiler (p to stop)")
            case ProfileSaving(message=message):
                self.capture, self.saving_line = "saving", message
            case TraceSaved():
                self.query_one(TracesView).add(ev)
                if self.state == "stopping":  # saved on the way out: said after the exit
                    self.saved_on_quit.append(ev.path)
                if ev.kind != "ops":
                    self.notify(f"saved {ev.path}", timeout=6)
            case ProfileStopped(reason=reason, steps=steps):
                self.capture, self.saving_line = "", ""
                if steps == 0:
                    self.notify(f"capture {reason}", severity="warning")
                elif reason == "its run shape ended":  # a trace holds one shape
                    self.notify(f"capture saved after {plural(steps, 'step')}: {reason}")

    def error_line(self) -> tuple[str, str] | None:
        """The persistent line while the engine is stopped by an error: what, and what to do."""
        if self.error is None or (self.state not in ("error", "failed") and not self.engine_dead()):
            return None
        log = f" · traceback in {log_path(self.cfg)}" if self.error.traceback else ""
        if self.error.fatal:
            return self.error.message, f"q quits; fix it and start infertop again{log}"
        return self.error.message, f"space retries; - lowers the batch size{log}"

    def repaint_state(self) -> None:
        """Only the lines that show the engine's state: what a key must update at once."""
        if self.resumes() != self.footer_resumes:  # the footer's space: Pause or Resume
            self.footer_resumes = self.resumes()
            self.refresh_bindings()
        self.label_hidden_charts()
        self.query_one(HeaderBar).refresh_from(self.ready, self.cfg.model, self.state, self.rec())
        self.query_one(StatusLine).refresh_from(
            self.stats.progress, self.sweep, self.state, self.load, self.error_line()
        )

    def repaint(self, changed: bool) -> None:
        batch = self.selected_batch
        bs = self.stats.batches.get(batch)
        self.repaint_state()
        mem = self.session.memory() if self.ready else None
        kind = self.ready.device_kind if self.ready else "cpu"
        if self.cfg.server is not None:
            self.query_one(ServerPanel).refresh_from(
                self.server_stats, self.metrics_missing(), self.system
            )
        else:
            self.query_one(SystemPanel).refresh_from(
                self.system, mem, self.session.events.dropped, kind
            )
        # charts check their own cheap keys and throttle, so they are asked every tick
        self.query_one(DecodeHistoryChart).refresh_from(self.stats, batch)
        self.query_one(PrefillChart).refresh_from(self.stats, batch)
        self.query_one(LatencyHistogram).refresh_from(self.stats, batch)
        self.query_one(ThroughputChart).refresh_from(self.stats, batch)
        if changed:
            self.query_one(PrefillPanel).refresh_from(bs)
            self.query_one(DecodePanel).refresh_from(bs)

    # -- keys -----------------------------------------------------------------------------
    def refused(self, what: str) -> bool:
        """Say why a key cannot apply in the engine's state; True when it cannot."""
        if self.state == "failed":
            self.notify(f"cannot {what}: the engine is not running (see the red line); q quits")
        elif self.state in ("starting", "loading"):
            self.notify(f"cannot {what} yet: the model is still loading", severity="warning")
        elif self.state == "stopping":
            self.notify(f"cannot {what}: quitting", severity="warning")
        else:
            return False
        return True

    def resumes(self) -> bool:
        """Whether space resumes: paused, stopped by an error (it retries), or still pausing
        (the engine ends a long prefill first: Pause then Resume at one step boundary leaves
        the engine running, so a second press takes the pause back)."""
        return self.state in ("paused", "error", "pausing")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """space is bound twice: pause while running, resume while paused (the footer shows
        the one that applies; it said Pause while paused)."""
        if action == "pause":
            return not self.resumes()
        if action == "resume":
            return self.resumes()
        return True

    def action_pause(self) -> None:
        self.toggle_pause()

    def action_resume(self) -> None:
        self.toggle_pause()

    def toggle_pause(self) -> None:
        if self.refused("pause or resume"):
            return
        if self.resumes():
            self.session.send(Resume())
            self.state = "resuming"
        else:
            self.session.send(Pause())
            self.state = "pausing"
        self.repaint_state()

    def action_reset(self) -> None:
        self.stats.reset()
        self.repaint(changed=True)
        self.notify("statistics and charts reset")

    def shown_batch(self) -> int:
        """The batch tab shown now. The focused tab bar takes ← and → itself, and its
        TabActivated reaches the app after a key typed in the same burst: `← +` changed the
        tab just left."""
        active = self.query_one("#batches", Tabs).active
        if self.tab_to_come is None and active.startswith("bs-"):
            shown = int(active.removeprefix("bs-"))
            if shown in self.batch_sizes:
                return shown
        return self.selected_batch

    async def action_batch(self, factor: float) -> None:
        if self.state in ("failed", "stopping") and self.refused("change the batch size"):
            return
        self.selected_batch = self.shown_batch()
        # a press before the engine answered the last one builds on that one (the engine
        # takes a sweep at its next step boundary, seconds away in a long prefill): on the
        # size the selected tab is to become, which may be another tab's than the last press
        base = list(dict.fromkeys(self.pending_of.get(b, b) for b in self.batch_sizes))
        old = self.pending_of.get(self.selected_batch, self.selected_batch)
        new = max(1, int(old * factor))
        if new == old:
            self.notify("batch size is already 1", severity="warning")
            return
        sizes = list(dict.fromkeys(new if b == old else b for b in base))
        if new in base:
            self.notify(f"batch size {new} is already in the sweep: bs {old} merges into it")
        else:
            self.notify(f"bs {old} → {new} from the next run")
        # the tabs change when the engine takes the sweep (SweepChanged): it may refuse one
        # that does not fit in memory, and says why
        for shown in self.batch_sizes:
            if self.pending_of.get(shown, shown) == old:  # a merge moves every tab on it
                self.pending_of[shown] = new
        self.sweeps_unanswered += 1
        self.session.send(SetSweep(batch_sizes=tuple(sizes)))

    def take_sweep(self, sizes: list[int], select: int) -> None:
        """The engine's new sweep, taken at once, so that a key pressed before the tabs are
        rebuilt builds on it (a fast `+ +` changed the wrong size); the tabs follow."""
        self.batch_sizes = sizes
        self.sweep = tuple(self.cfg.with_changes(batch_sizes=tuple(sizes)).sweep())
        self.selected_batch = select
        self.tab_to_come = f"bs-{select}"  # the old tabs show until the rebuild
        # quitting: the app may be gone before they mount (q with a change pending crashed)
        if self.state != "stopping":
            self.call_later(self.rebuild_tabs)  # one after another: each awaits the removal

    async def rebuild_tabs(self) -> None:
        """The batch tabs of the current sweep; the old ones are gone before the new ones
        mount (their ids are the batch sizes, and a size may stay)."""
        if self.state == "stopping":
            return
        self.tab_to_come = f"bs-{self.selected_batch}"
        tabs = self.query_one("#batches", Tabs)
        await tabs.clear()
        for b in self.batch_sizes:
            await tabs.add_tab(Tab(f"bs {b}", id=f"bs-{b}"))
        tabs.active = self.tab_to_come
        self.repaint(changed=True)

    def action_select_batch(self, delta: int) -> None:
        sizes = self.batch_sizes
        k = sizes.index(self.selected_batch) if self.selected_batch in sizes else 0
        self.selected_batch = sizes[(k + delta) % len(sizes)]  # at once, for the next key
        tab = f"bs-{self.selected_batch}"
        if self.tab_to_come is not None:
            self.tab_to_come = tab
        tabs = self.query_one("#batches", Tabs)
        if tabs.query(f"#{tab}"):
            tabs.active = tab
        self.repaint(changed=True)

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        tab = event.tab
        if tab is None or not tab.id or not tab.id.startswith("bs-"):
            return
        if self.tab_to_come is not None:
            if tab.id != self.tab_to_come:
                return  # a rebuild activates the first tab on its way to the selected one
            self.tab_to_come = None
        self.post_message(BatchSelected(int(tab.id.removeprefix("bs-"))))

    def on_batch_selected(self, message: BatchSelected) -> None:
        self.selected_batch = message.batch_size
        self.repaint(changed=True)

    def recorded(self) -> bool:
        """A capture has steps to save (one only requested or armed has none)."""
        return self.capture in ("recording", "saving")

    def rec(self) -> str:
        match self.capture:
            case "recording":
                return plural(self.session.capture_steps(), "step")
            case "saving":
                return f"saving: {self.saving_line}"
            case "requested" | "armed":
                return self.capture
        return ""

    def action_profile(self) -> None:
        # requested: the engine takes commands in order, so the stop follows the start (the
        # app said "waiting for the engine" and dropped it: the capture ran to its cap)
        if self.capture in ("requested", "armed", "recording"):
            self.session.send(StopProfile())
            return
        if self.capture == "saving":
            self.notify("a trace is being saved; wait for it", severity="warning")
            return
        if self.refused("capture"):
            return
        if self.state == "error":
            self.notify("cannot capture: the engine is stopped by an error; space resumes it")
            return
        if self.ready is not None and self.ready.server_kind == "openai":
            self.notify(no_profiler_routes(self.ready.device_name), severity="error")
            return
        cap = open_ended_cap(self.ready.layers if self.ready else 1)
        dialog = ProfileDialog(self.cfg.run_name, capture_kind(self.ready), cap)
        self.push_screen(dialog, self._start_capture)

    def _start_capture(self, request: CaptureRequest | None) -> None:
        if request is None:
            return
        self.session.send(StartProfile(request))
        self.capture = "requested"
        self.repaint_state()

    def action_toggle_view(self) -> None:
        views = self.query_one(TabbedContent)
        views.active = "tab-traces" if views.active == "tab-charts" else "tab-charts"

    def label_hidden_charts(self) -> None:
        """Below 34 rows the prefill and throughput charts are hidden (tui/infertop.tcss):
        the Charts tab says so. Checked on each drain (the app sees no resize event)."""
        short = self.size.height < 34
        if short != self._short:
            self._short = short
            label = "Charts (2 more at 34+ rows)" if short else "Charts"
            self.query_one(TabbedContent).get_tab("tab-charts").label = label

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        # the arrows go where the eyes are: the trace list, or the batch tabs; a short
        # terminal gives the list the number panels' rows (tui/infertop.tcss)
        self.query_one("#numbers").set_class(event.pane.id == "tab-traces", "-under-traces")
        if event.pane.id == "tab-traces":
            self.query_one("#traces-table", DataTable).focus()
        else:
            self.query_one("#batches", Tabs).focus()

    def action_export(self) -> None:
        if not self.stats.results:
            self.notify("no completed run to export yet", severity="warning")
            return
        path = self.export_results()
        if path is not None:
            self.notify(f"{plural(self.exported, 'result')} → {path}")

    def export_results(self, quiet: bool = False) -> Path | None:
        """Write every run result kept so far to a new JSONL file in the trace dir; a
        failure is a notification, or (quiet: from another thread) a farewell line."""
        results = list(self.stats.results)
        try:
            path = export_results(results, Path(self.cfg.trace_dir), self.cfg.run_name)
        except OSError as e:
            message = f"export failed: {e.strerror or e}; pass a writable --trace-dir"
            if quiet:
                self.farewell.append(f"infertop: {message}")
            else:
                self.notify(message, severity="error")
            return None
        self.last_export, self.exported = path, len(results)
        return path

    def engine_dead(self) -> bool:
        """The model never loaded, or the engine thread died: nothing can resume."""
        return self.error is not None and self.error.fatal

    def exit_status(self) -> int:
        """0, or for a dead engine: 2 for bad input, 1 for anything else."""
        if self.error is not None and self.error.fatal:
            return 1 if self.error.traceback else 2
        return 0

    def keep_results(self, quiet: bool = False) -> None:
        """On the way out: make sure the results are on disk, and say where (or why the
        engine never ran)."""
        if self.error is not None and self.error.fatal:
            self.farewell.append(f"infertop: error: {self.error.message}")
            return
        self.farewell += [f"infertop: capture saved to {path}" for path in self.saved_on_quit]
        n = len(self.stats.results)
        if self.cfg.result_filename and n:
            self.farewell.append(
                f"infertop: {plural(n, 'result')} appended to {self.cfg.result_filename}"
            )
        elif n > self.exported:
            path = self.export_results(quiet)
            if path is not None:
                self.farewell.append(f"infertop: {plural(n, 'result')} saved to {path}")
        elif self.last_export is not None:
            self.farewell.append(f"infertop: results exported to {self.last_export}")
        else:
            self.farewell.append("infertop: no run completed; no results to save")

    def action_help(self) -> None:
        self.push_screen(HelpScreen([b for b in self.BINDINGS if isinstance(b, Binding)]))

    # -- leaving on a signal (tui/leaving.py runs these from its own thread) --------------
    def prepare_to_leave(self, timeout: float) -> int:
        """Stop the engine (an active capture is saved), fold in the last events and keep
        the results; returns the exit status. Touches no widget: the screen may be stuck."""
        self._leaving = True  # the timer's drain stands aside
        self.state = "stopping"
        self.session.stop(timeout)
        events = self.session.events.drain()
        self.stats.apply(events)
        self.saved_on_quit += [ev.path for ev in events if isinstance(ev, TraceSaved)]
        self.keep_results(quiet=True)
        return self.exit_status()

    def leave(self, status: int) -> None:
        self._loop_ref.call_soon_threadsafe(lambda: self.exit(return_code=status))

    def terminal_attrs(self) -> list[object] | None:
        return getattr(self._driver, "attrs_before", None)

    def on_unmount(self) -> None:
        # However the app ends (q, an exception, a test failure), the engine thread stops.
        self.session.stop(timeout=2.0)
        if self._restore_signals is not None:
            self._restore_signals()

    async def action_quit(self) -> None:
        self.state = "stopping"
        self.repaint_state()
        # the engine stops at its next step boundary: an active capture is saved first, and
        # a prefill cannot stop half way (the default model's batch-8 prefill takes seconds)
        timeout = CAPTURE_SAVE_S if self.capture else STEP_IN_FLIGHT_S
        if self.recorded():
            self.notify("saving the capture before quitting…", timeout=timeout)
        # a worker, not an await here: the app's own messages (a toast) wait on its actions
        self.run_worker(self._exit_when_stopped(timeout), group="quit", exclusive=True)

    async def _exit_when_stopped(self, timeout: float) -> None:
        stopped = await asyncio.to_thread(self.session.stop, 0.5)
        if not stopped:
            if not self.recorded():
                self.notify("quitting after the step in flight…", timeout=timeout)
            stopped = await asyncio.to_thread(self.session.stop, timeout)
        self.drain()  # the last results and traces
        self.keep_results()
        self.exit(return_code=self.exit_status() if stopped else 1)

    # -- crashes --------------------------------------------------------------------------
    def _handle_exception(self, error: Exception) -> None:
        """A bug in the app: the traceback goes to the log, one line to the terminal once it
        is restored (Textual would print a screenful of traceback), and the exit status is 1.
        Overrides Textual's App._handle_exception (textual/app.py), which sets the status."""
        if self.crash is None:  # the first error is the cause; later ones are its echoes
            tb = "".join(traceback.format_exception(error))
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            written = append_to_log(self.cfg, f"infertop crashed at {stamp}\n{tb}")
            where = f"traceback in {log_path(self.cfg)}" if written else "no log: trace dir"
            first = str(error).splitlines()[0] if str(error) else ""
            self.crash = f"infertop crashed: {type(error).__name__}: {first} ({where})"
        super()._handle_exception(error)
        self._exit_renderables.clear()  # the one line above is printed instead


_SEVERITY: dict[str, SeverityLevel] = {
    "info": "information",
    "warning": "warning",
    "error": "error",
}
