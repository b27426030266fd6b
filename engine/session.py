"""One engine for the life of a UI: load it, run the sweep round and round, survive errors.

`Session.run` is the body of the worker thread. It talks to its consumer only through the
EventQueue (never blocks on it) and a command queue (read at step boundaries).
"""

from __future__ import annotations

import gc
import logging
import queue
import threading
import traceback
from pathlib import Path

from infertop.engine.backend import Engine, MemoryStats, ready_event
from infertop.engine.backends.server.metrics import MetricsScraper, ServerMetrics
from infertop.engine.backends.server.probe import ServerInfo, probe, server_ready
from infertop.engine.backends.server.process import ServerProcess
from infertop.engine.backends.server.runner import ServerRunner
from infertop.engine.channel import EventQueue
from infertop.engine.commands import Command, Stop
from infertop.engine.config import RunConfig
from infertop.engine.errors import UserError
from infertop.engine.events import (
    EngineError,
    LoadProgress,
    Notice,
    StateChanged,
)
from infertop.engine.loader import load_engine
from infertop.engine.runner import Runner, StopRequested, SweepRunner

log = logging.getLogger("infertop")

LOG_NAME = "infertop.log"  # in the trace dir: tracebacks, load failures, native stderr


def log_path(cfg: RunConfig) -> Path:
    return Path(cfg.trace_dir) / LOG_NAME


def append_to_log(cfg: RunConfig, text: str) -> bool:
    """Append to <trace-dir>/infertop.log; False when it cannot be written."""
    path = log_path(cfg)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            f.write(text.rstrip("\n") + "\n")
    except OSError:
        log.exception("could not write %s", path)
        return False
    return True


class Session:
    def __init__(
        self,
        cfg: RunConfig,
        events: EventQueue | None = None,
        engine: Engine | None = None,
        server: ServerInfo | None = None,
        own_process: bool = False,
    ) -> None:
        """`engine`: an already loaded engine to reuse (benchmarks, tests); else cfg's model.
        `server`: the probed server of cfg.server (probed again when not given).
        `own_process`: drive the server from a child process (the live screen's choice,
        engine/backends/server/process.py); `bench` drives it from the calling thread."""
        self.cfg = cfg
        self.events = events if events is not None else EventQueue()
        self.commands: queue.SimpleQueue[Command] = queue.SimpleQueue()
        self.engine: Engine | None = engine
        self.server = server
        self.runner: SweepRunner | None = None
        self._scraper: MetricsScraper | None = None
        self.finished = threading.Event()
        self.thread_id = 0  # native id of the engine thread once it runs
        self._stop = threading.Event()
        self.own_process = own_process
        self.child: ServerProcess | None = None  # set once the child takes the commands
        self._child_capture_steps = 0
        self._send_lock = threading.Lock()

    # -- called from the UI thread ------------------------------------------------------
    def send(self, cmd: Command) -> None:
        if isinstance(cmd, Stop):
            self._stop.set()
        with self._send_lock:
            if self.child is not None:
                self.child.send(cmd)
            else:
                self.commands.put(cmd)

    def stop(self, timeout: float = 2.0) -> bool:
        """Ask the worker to stop at the next step boundary; True when it has finished."""
        self.send(Stop())
        return self.finished.wait(timeout)

    def memory(self) -> MemoryStats | None:
        engine = self.engine
        return engine.memory() if engine is not None else None

    def server_metrics(self) -> ServerMetrics | None:
        """Scrape the server's /metrics (blocking: call it off the UI thread); None when
        there is no server or it has no metrics."""
        if self.server is None or not self.server.has_metrics:
            return None
        if self._scraper is None:
            self._scraper = MetricsScraper(self.server)
        return self._scraper.scrape()

    def capture_steps(self) -> int:
        """Steps captured so far by the active capture (read across threads: an int)."""
        if self.child is not None:
            return self._child_capture_steps
        return self.runner.profiler.steps if self.runner else 0

    @property
    def steps_done(self) -> int:
        return self.runner.steps_done if self.runner else 0

    # -- the worker thread --------------------------------------------------------------
    def run(self) -> None:
        self.thread_id = threading.get_native_id()
        loaded = False
        try:
            loaded = self._run()
        finally:
            if loaded:  # a failed load keeps showing "failed" with its message
                self.events.put(StateChanged("stopped"))
            self.finished.set()

    def _run(self) -> bool:
        """False when the model could not be loaded."""
        emit = self.events.put
        emit(StateChanged("loading"))
        if self.cfg.server is not None:
            return self._drive_server()
        try:
            if self.engine is None:
                self.engine = load_engine(
                    self.cfg,
                    progress=lambda d, t: emit(LoadProgress("loading weights", d, t)),
                    stage=lambda name: emit(LoadProgress(name, 0, 0)),
                )
        except UserError as e:
            return self._not_started(f"the model did not load: {e}", e)
        except Exception as e:
            self._report(e, fatal=True)
            return False
        # Everything alive now (torch, the model, the UI) lives as long as the session: keep
        # it out of the GC's full passes. Under a flat-out engine those ran every ~5 s over
        # ~220k objects, holding the GIL (and a pending key in the live screen) for 75-105 ms.
        gc.collect()  # free what loading left unreachable (the compile's graphs) first
        gc.freeze()
        emit(ready_event(self.engine))
        for line in self.engine.warnings:
            emit(Notice(line, "warning"))
        self.runner = Runner(
            self.engine, self.cfg, emit, self.commands, repeat=True, pause_on_oom=True
        )
        return self._run_sweeps(self.runner)

    def _drive_server(self) -> bool:
        """--server: probe it (unless the caller has), then run the sweep against it."""
        assert self.cfg.server is not None
        try:
            if self.server is None:
                self.server = probe(self.cfg.server)
        except UserError as e:
            return self._not_started(f"the server could not be reached: {e}", e)
        if self.own_process:
            return self._drive_from_child()
        self.events.put(server_ready(self.server))
        self.runner = ServerRunner(
            self.server, self.cfg, self.events.put, self.commands, repeat=True
        )
        return self._run_sweeps(self.runner)

    def _drive_from_child(self) -> bool:
        """Relay the child's batches until its session is done. False either way: the child
        has said "stopped" itself, or its death is reported here as the reason it stopped."""
        assert self.server is not None
        child = ServerProcess(self.cfg, self.server)
        with self._send_lock:  # what was sent before the child ran goes first, in order
            while not self.commands.empty():
                child.send(self.commands.get_nowait())
            self.child = child
        while (batch := child.recv()) is not None:
            self.events.extend(batch.events)
            self._child_capture_steps = batch.capture_steps
            if batch.done:
                child.exit_code()
                return False
        code = child.exit_code()
        self.events.put(
            EngineError(
                f"the load generator's process ended (exit code {code}); what it printed "
                f"is in {log_path(self.cfg)}; results so far are kept, restart to go on",
                fatal=True,
            )
        )
        self.events.put(StateChanged("failed"))
        return False

    def _run_sweeps(self, runner: SweepRunner) -> bool:
        """Run until stopped; an error holds the runner until resumed (a retry)."""
        emit = self.events.put
        while not self._stop.is_set():
            try:
                runner.run()
                return True
            except StopRequested:
                return True
            except UserError as e:
                emit(EngineError(str(e)))
                emit(StateChanged("error"))
            except Exception as e:
                self._report(e)
            self.cfg = runner.cfg  # sweep changes made before the failure stay
            if not runner.hold():  # commands go to the runner's one handler meanwhile
                return True
        return True

    def _not_started(self, logged: str, e: UserError) -> bool:
        """Bad input before anything ran: the line on screen (nothing can resume), and in
        the log. False, for _run."""
        append_to_log(self.cfg, logged)
        self.events.put(EngineError(str(e), fatal=True))
        self.events.put(StateChanged("failed"))
        return False

    def _report(self, e: BaseException, fatal: bool = False) -> None:
        """An unexpected exception: one line on screen, the traceback in the log."""
        tb = traceback.format_exc()
        line = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".rstrip(": ")
        append_to_log(self.cfg, tb)
        self.events.put(EngineError(line, tb, fatal))
        self.events.put(StateChanged("failed" if fatal else "error"))
