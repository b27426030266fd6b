"""The timed loop: warmup, then prefill + decode for every shape of the sweep, with the device
synchronized before every timer read (a server's runs: engine/backends/server/runner.py).
Runs in a worker thread: events go to a sink that never blocks, commands are taken between
steps."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from infertop.engine.backend import Engine
from infertop.engine.commands import (
    Command,
    Pause,
    Resume,
    SetSweep,
    StartProfile,
    Stop,
    StopProfile,
    checked_sweep,
)
from infertop.engine.config import RunConfig, kv_cache_bytes
from infertop.engine.errors import UserError
from infertop.engine.events import (
    DecodeStep,
    EngineState,
    Event,
    LoadProgress,
    Notice,
    PrefillDone,
    ProfileFailed,
    RunDone,
    RunResult,
    RunSkipped,
    RunStarted,
    StateChanged,
    SweepChanged,
)
from infertop.engine.footprint import DTYPE_BYTES, check_shape_fits
from infertop.engine.profiling.controller import ProfileController
from infertop.engine.profiling.request import CaptureRequest
from infertop.engine.profiling.sweep_capture import SweepCapture
from infertop.engine.results import append_result
from infertop.engine.text import plural

Sink = Callable[[Event], None]

OOM_MARKERS = ("out of memory", "not enough memory", "failed to allocate", "cannot allocate")


def is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError) or any(m in str(exc).lower() for m in OOM_MARKERS)


class StopRequested(Exception):
    pass


class CaptureControl(Protocol):
    """What the runner asks of a profiler (ProfileController in-process; the server's own
    profiler behind its routes in server mode)."""

    busy: bool  # armed or recording
    recording: bool
    steps: int  # steps captured so far

    def arm(self, request: CaptureRequest) -> None: ...

    def stop(self, reason: str = "stopped") -> None: ...


class SweepRunner:
    """Runs `cfg`'s sweep once (bench) or round and round until stopped (repeat=True, the
    TUI): the commands, pauses and results every backend shares. Subclasses time the runs."""

    def __init__(
        self,
        cfg: RunConfig,
        sink: Sink,
        profiler: CaptureControl,
        commands: queue.SimpleQueue[Command] | None = None,
        repeat: bool = False,
        pause_on_oom: bool = False,
    ) -> None:
        self.cfg = cfg
        self.sink = sink
        self.commands: queue.SimpleQueue[Command] = (
            commands if commands is not None else queue.SimpleQueue()
        )
        self.repeat = repeat
        self.pause_on_oom = pause_on_oom  # live use: let the user lower the batch size
        self.paused = False
        self.held = False  # stopped by an engine error, waiting in hold()
        self.phase: EngineState = "running"  # what a resume returns to (or "warming up")
        self.stopping = False
        self.run_index = 0
        self.steps_done = 0  # decode steps ever run, warmup excluded
        self.prefills_done = 0
        self.results: list[RunResult] = []
        self.profiling_pass = False  # bench's extra, captured run of a sweep point
        self._skipped: set[tuple[int, int, int]] = set()  # shapes that cannot run, said once
        self.profiler = profiler

    def skip_once(self, b: int, i: int, o: int, reason: str) -> None:
        """A shape that cannot run is skipped; the first time, the user is told why."""
        if (b, i, o) not in self._skipped:
            self._skipped.add((b, i, o))
            self.sink(RunSkipped(b, i, o, reason))

    # -- what a backend implements --------------------------------------------------------
    # bench --profile: True, an extra captured run after each timed one (this process's
    # profiler); False, one capture armed after the warmup (a server's profiler)
    profiles_each_point = True

    def profiled_run(self, plan: SweepCapture, b: int, i: int, o: int) -> None:
        raise NotImplementedError

    def warmup(self) -> None:
        raise NotImplementedError

    def run_shape(self, b: int, i: int, o: int) -> RunResult | None:
        raise NotImplementedError

    def checked_sweep(self, cmd: SetSweep) -> RunConfig:
        """The config `cmd` asks for, or a UserError naming why it cannot run."""
        raise NotImplementedError

    # -- commands -----------------------------------------------------------------------
    def send(self, cmd: Command) -> None:
        """Thread-safe: queue a command for the next step boundary."""
        self.commands.put(cmd)

    def _apply(self, cmd: Command) -> None:
        match cmd:
            case Pause() if not self.paused:
                self.paused = True
                self.sink(StateChanged("paused"))
            case Resume() if self.paused:
                self.paused = False
                if not self.held:  # after an error, run() says "running" as it starts again
                    self.sink(StateChanged(self.phase))
            case Stop():
                self.stopping = True
            case SetSweep():
                self._set_sweep(cmd)
            case StartProfile() if self.held:
                self.sink(
                    ProfileFailed("the engine is stopped by an error; resume (space), then capture")
                )
            case StartProfile(request=request):
                self.profiler.arm(request)
            case StopProfile() if not self.held:  # nothing runs while held
                self.profiler.stop()

    def hold(self) -> bool:
        """After an engine error: wait here, applying commands as at any step boundary, until
        resumed (True) or stopped (False). The same handler as while running."""
        self.paused, self.phase, self.held = True, "running", True
        self.cfg = self.cfg.with_changes(warmup=False)
        try:
            self.step_boundary()
        except StopRequested:
            return False
        finally:
            self.held = False
        return True

    def _set_sweep(self, cmd: SetSweep) -> None:
        try:
            self.cfg = self.checked_sweep(cmd)
        except UserError as e:
            self.sink(Notice(f"{e} (the sweep is unchanged)", "error"))
        # the answer either way: the sweep it runs from now on (unchanged when refused)
        self.sink(SweepChanged(self.cfg.batch_sizes, self.cfg.input_lens, self.cfg.output_lens))

    def step_boundary(self) -> None:
        """Apply pending commands; while paused, wait here (only for commands)."""
        while True:
            try:
                cmd = self.commands.get(block=self.paused and not self.stopping, timeout=0.05)
            except queue.Empty:
                if not self.paused or self.stopping:
                    break
                continue
            self._apply(cmd)
        if self.stopping:
            raise StopRequested

    # -- the loop -----------------------------------------------------------------------
    def shapes(self) -> Iterator[tuple[int, int, int]]:
        while True:
            yield from self.cfg.sweep()
            if not self.repeat:
                return
            if all(s in self._skipped for s in self.cfg.sweep()):
                self.paused = True  # nothing fits: wait for a smaller sweep (- or r)
                self.sink(StateChanged("paused"))
                self.step_boundary()

    def run(self) -> list[RunResult]:
        """Warm up, then run the sweep (its shapes checked by preflight, a new sweep's by
        checked_sweep). Returns the results of the completed runs."""
        try:
            if self.cfg.warmup:
                self.phase = "warming up"
                self.warmup()
            if self.cfg.profile is not None and not self.profiles_each_point:
                self.profiler.arm(self.cfg.profile.whole_request())
            self.phase = "running"
            self.sink(StateChanged("running"))
            for b, i, o in self.shapes():
                self.step_boundary()
                timed = self.run_shape(b, i, o)
                if timed is not None and self.cfg.profile is not None and self.profiles_each_point:
                    self.profiled_run(self.cfg.profile, b, i, o)
        except StopRequested:
            pass
        finally:
            if self.profiler.busy:  # stopping, or an engine error: keep what was captured
                self.profiler.stop("engine stopped")
        self.sink(StateChanged("stopped"))
        return self.results

    def _write_result(self, path: Path, result: RunResult) -> None:
        """Append the run to the result file; a failed write (a full disk) stops the sweep
        with one line, and every line written before it stays whole."""
        try:
            append_result(path, result)
        except OSError as e:
            kept = sum(not r.captured for r in self.results) - 1
            raise UserError(
                f"--result-filename {path}: {e.strerror or e}; free space and run again "
                f"({plural(kept, 'earlier run')} kept in it)"
            ) from None


class Runner(SweepRunner):
    """The sweep on an engine loaded in this process, one step at a time."""

    def __init__(
        self,
        engine: Engine,
        cfg: RunConfig,
        sink: Sink,
        commands: queue.SimpleQueue[Command] | None = None,
        repeat: bool = False,
        pause_on_oom: bool = False,
        profiler: ProfileController | None = None,
    ) -> None:
        self.engine = engine
        self._prepared: tuple[int, int] | None = None  # (batch, length) of the KV cache
        super().__init__(
            cfg,
            sink,
            profiler
            or ProfileController(
                sink,
                cfg.trace_dir,
                engine.device_kind,
                engine.memory,
                layers=engine.config.num_hidden_layers,
            ),
            commands,
            repeat,
            pause_on_oom,
        )
        self.profiler: ProfileController

    def checked_sweep(self, cmd: SetSweep) -> RunConfig:
        return checked_sweep(cmd, self.cfg, self.engine, self._held_bytes())

    def _held_bytes(self) -> int:
        """The KV cache allocated for the last shape: given back before the next one."""
        if self._prepared is None:
            return 0
        b, length = self._prepared
        return kv_cache_bytes(self.engine.config, b, length, DTYPE_BYTES[self.engine.dtype_name])

    def fits(self, b: int, i: int, o: int) -> str | None:
        """None when the shape fits in memory now; else the one line that says it does not."""
        try:
            check_shape_fits(self.engine, b, i, o, self._held_bytes())
        except UserError as e:
            return str(e)
        return None

    def warmup(self) -> None:
        """One untimed run on the first shape, as bench_one_batch.py does."""
        self.sink(StateChanged("warming up"))
        b, i, o = self.cfg.sweep()[0]
        o = min(o, 16)
        self.sink(LoadProgress("warming up", 0, o))
        self.engine.prepare(b, i + o)
        tokens = self.engine.prefill(self.engine.random_prompts(b, i, self.cfg.seed))
        for step in range(o - 1):
            self.step_boundary()
            tokens = self.engine.decode(tokens, i + step)
            self.sink(LoadProgress("warming up", step + 2, o))
        self.engine.wait(tokens)
        self.sink(LoadProgress("warming up", o, o))

    def run_shape(self, b: int, i: int, o: int) -> RunResult | None:
        """One timed run. A shape that does not fit in memory is skipped before anything is
        allocated (said once); an out-of-memory failure skips it too; the loop goes on."""
        reason = self.fits(b, i, o)
        if reason is not None:
            self.skip_once(b, i, o, reason)
            return None
        try:
            return self._timed_run(b, i, o)
        except StopRequested:
            raise
        except Exception as e:
            if not is_out_of_memory(e):
                raise
            self.engine.release()
            reason = f"out of memory at batch {b}, input {i}, output {o}; lower the batch size"
            self.sink(RunSkipped(b, i, o, reason))
            if self.pause_on_oom and not self.paused:
                self.paused = True
                self.sink(StateChanged("paused"))
            return None

    def _timed_run(self, b: int, i: int, o: int) -> RunResult:
        engine, sink, clock = self.engine, self.sink, time.perf_counter
        engine.prepare(b, i + o)
        self._prepared = (b, i + o)
        prompts = engine.random_prompts(b, i, self.cfg.seed)
        run = self.run_index
        prof = self.profiler
        sink(RunStarted(run, b, i, o))
        engine.wait(prompts)
        captured = False  # any step of this run recorded by a capture
        if prof.busy:
            tokens, prefill, recorded = self._profiled(
                "prefill", (b, i, o), engine.prefill, prompts
            )
            captured |= recorded
        else:
            t0 = clock()
            tokens = engine.prefill(prompts)
            engine.wait(tokens)
            prefill, recorded = clock() - t0, False
        self.prefills_done += 1
        sink(PrefillDone(run, b, i, prefill, recorded))
        decode: list[float] = []
        for step in range(1, o):
            if not self.commands.empty() or self.paused:
                self.step_boundary()
            if prof.busy:
                tokens, lat, recorded = self._profiled(
                    "decode", (b, i, o), engine.decode, tokens, i + step - 1
                )
                captured |= recorded
            else:
                t0 = clock()
                tokens = engine.decode(tokens, i + step - 1)
                engine.wait(tokens)
                lat, recorded = clock() - t0, False
            decode.append(lat)
            self.steps_done += 1
            sink(DecodeStep(run, b, step, i + step - 1, lat, recorded))
        captured |= self.profiling_pass
        result = RunResult(self.cfg.run_name, b, i, o, prefill, tuple(decode), captured)
        self.results.append(result)
        if self.cfg.result_filename and not captured:  # profiler overhead stays out of the JSONL
            self._write_result(Path(self.cfg.result_filename), result)
        self.run_index += 1
        sink(RunDone(run, result))
        return result

    def profiled_run(self, plan: SweepCapture, b: int, i: int, o: int) -> None:
        """bench_one_batch's capture of a sweep point, in a run of its own after the timed
        one: its figures carry the profiler's overhead, so they stay out of the result file."""
        why = plan.missing_decode(o)
        if why is not None:
            self.sink(ProfileFailed(why))
        requests = plan.requests(o)
        if not requests:
            return
        self.profiler.arm_each(requests)
        if not self.profiler.busy:  # could not arm: said
            return
        self.profiling_pass = True
        try:
            self.run_shape(b, i, o)
        finally:
            self.profiling_pass = False
        if self.profiler.busy:  # the run ended first (a capture ends with its shape anyway)
            self.profiler.stop("its run ended")

    def _profiled(
        self, stage: str, shape: tuple[int, int, int], fn: Callable[..., Any], *args: Any
    ) -> tuple[Any, float, bool]:
        """One step inside the capture's annotation; the capture starts/stops outside the timer.
        Also says whether the step was recorded (a capture may end or not yet start here)."""
        prof, engine, clock = self.profiler, self.engine, time.perf_counter
        ctx = prof.begin_step(stage, shape)
        recorded = prof.recording
        with ctx:
            t0 = clock()
            out = fn(*args)
            engine.wait(out)
            t1 = clock()
        b, i, o = shape
        prof.end_step(
            stage, t0, t1, {"batch_size": b, "input_len": i, "output_len": o, "run": self.run_index}
        )
        return out, t1 - t0, recorded
