"""Starts and stops captures in the engine thread, at step boundaries.

The runner asks `busy` once per step; when no capture is armed that is all it costs.
A stage capture ("prefill" or "decode") starts at the next step of its stage and is saved
when that stage ends, so it holds only that stage. Every capture is saved when the run shape
changes, so a trace never holds a shape its name does not list.

A request while idle gets an answer the UI can show: ProfileArmed, or ProfileFailed with the
reason; then ProfileStarted, ProfileSaving..., TraceSaved, ProfileStopped. A request while a
capture is busy leaves that capture alone and says so (a Notice).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from infertop.engine.backend import MemoryStats
from infertop.engine.errors import UserError
from infertop.engine.events import (
    Event,
    Notice,
    ProfileArmed,
    ProfileFailed,
    ProfileSaving,
    ProfileStarted,
    ProfileStopped,
    TraceSaved,
)
from infertop.engine.memory import release_freed_memory
from infertop.engine.profiling.base import Capture, SavedTrace
from infertop.engine.profiling.factory import activities_left_out, make_capture
from infertop.engine.profiling.naming import remove_path, trace_stem
from infertop.engine.profiling.request import CaptureRequest
from infertop.engine.profiling.timeline import Timeline
from infertop.engine.text import plural

Shape = tuple[int, int, int]  # batch, input, output
# An open-ended capture stops after this many layer-steps (steps x decoder layers): torch's
# profiler takes ~13 ms per layer-step to stop and export here, so a save stays near 2 s
# (a signal must be handled within 5 s).
MAX_LAYER_STEPS = 150


def open_ended_cap(layers: int) -> int:
    """Steps an open-ended capture of a model with `layers` decoder layers records at most."""
    return max(5, MAX_LAYER_STEPS // max(layers, 1))


class ProfileController:
    def __init__(
        self,
        sink: Callable[[Event], None],
        trace_dir: str | Path,
        device_kind: str,
        memory: Callable[[], MemoryStats | None] = lambda: None,
        layers: int = 1,
    ) -> None:
        self.sink = sink
        self.trace_dir = Path(trace_dir)
        self.device_kind = device_kind
        self.memory = memory
        self.max_steps = open_ended_cap(layers)
        self.busy = False  # armed or recording
        self.recording = False
        self.steps = 0  # steps captured so far
        self.request: CaptureRequest | None = None
        self.capture: Capture | None = None
        self.timeline: Timeline | None = None
        self._to_skip = 0
        self._stem = ""
        self._shape: Shape | None = None  # the shape being recorded (the trace's name says it)
        self._queued: list[CaptureRequest] = []  # armed in turn as each capture ends

    # -- commands -----------------------------------------------------------------------
    def arm(self, request: CaptureRequest) -> None:
        if self.busy:
            self.sink(Notice("a capture is already running; stop it first (p)", "warning"))
            return
        try:
            check_trace_dir(self.trace_dir)
            self.capture = make_capture(request, self.device_kind)
        except UserError as e:
            self.sink(ProfileFailed(str(e)))
            return
        except Exception as e:  # a vendor profiler that cannot start here
            self.sink(ProfileFailed(f"profiler unavailable: {e}"))
            return
        self.request, self.busy, self.steps, self._to_skip = request, True, 0, request.start_step
        left_out = tuple(activities_left_out(request, self.device_kind))
        self.sink(ProfileArmed(request.name, request.stage, request.steps, left_out))

    def arm_each(self, requests: list[CaptureRequest]) -> None:
        """Arm the first request now and each next one as the one before it ends (bench's
        prefill file, then its decode file)."""
        self.arm(requests[0])
        if self.busy:
            self._queued = list(requests[1:])

    def stop(self, reason: str = "stopped") -> None:
        self._queued = []
        if not self.busy:
            self.sink(Notice("no capture is running", "warning"))
            return
        if not self.recording:
            self._reset()
            self.sink(ProfileStopped("cancelled before it started", 0))
            return
        self.finish(reason)

    # -- called by the runner around each step (only while busy) ------------------------
    def begin_step(self, stage: str, shape: Shape) -> AbstractContextManager[object]:
        if self.recording:
            if self.request is not None and self.request.stage not in ("all", stage):
                self.finish(f"{self.request.stage} stage ended")
            elif shape != self._shape:
                self.finish("its run shape ended")
            if not self.busy:  # ended, and nothing queued: this step runs as it is
                return nullcontext()
        req = self.request
        assert req is not None
        if not self.recording:  # armed (perhaps just now, from the queue)
            if req.stage not in ("all", stage):
                return nullcontext()
            if self._to_skip > 0:
                self._to_skip -= 1
                return nullcontext()
            if not self._start(req, shape):
                return nullcontext()
        if self.capture is None:
            return nullcontext()
        return self.capture.annotate(stage, self.steps)

    def end_step(self, stage: str, t0: float, t1: float, args: dict[str, Any]) -> None:
        if not self.recording:
            return
        if self.timeline is not None:
            self.timeline.step(stage, t0, t1, args)
            self.timeline.maybe_sample(self.memory())
        self.steps += 1
        req = self.request
        if req is not None and req.steps is not None and self.steps >= req.steps:
            self.finish(f"{plural(req.steps, 'step')} captured")
        elif req is not None and req.steps is None and self.steps >= self.max_steps:
            self.finish(f"stopped at {self.max_steps} steps (open-ended captures are capped)")

    # -- start / save ---------------------------------------------------------------------
    def _start(self, req: CaptureRequest, shape: Shape) -> bool:
        self._stem, self._shape = trace_stem(req.name, req.stage, *shape), shape
        try:
            if self.capture is not None:
                self.capture.start(self.trace_dir, self._stem)
        except Exception as e:
            self._fail(f"profiler did not start: {e}")
            return False
        self.timeline = Timeline() if req.timeline else None
        self.recording = True
        kind = self.capture.kind if self.capture else "timeline"
        self.sink(ProfileStarted(req.name, req.stage, kind, *shape))
        return True

    def finish(self, reason: str) -> list[SavedTrace]:
        """Stop and save everything captured, all of it or nothing: a failure removes what
        this save already published and is one line."""
        req, steps = self.request, self.steps
        assert req is not None
        saved: list[SavedTrace] = []
        try:
            counters = self.timeline.counters if self.timeline is not None else []
            base_ns = None
            if self.capture is not None:
                progress = lambda m: self.sink(ProfileSaving(m))  # noqa: E731
                saved += self.capture.stop_and_save(progress, steps, counters)
                base_ns = self.capture.base_ns
            if self.timeline is not None:
                self.sink(ProfileSaving("writing the step timeline"))
                saved.append(self.timeline.save(self.trace_dir, self._stem, base_ns))
        except (OSError, UserError, RuntimeError) as e:
            if self.capture is not None:
                self.capture.abandon()
            for s in saved:
                with contextlib.suppress(OSError):
                    remove_path(s.path)
            saved = []
            detail = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            self.sink(
                Notice(
                    f"trace not saved: {detail}; free space or pass another --trace-dir", "error"
                )
            )
        self._reset()
        # the profiler's events are garbage now: give their memory back (bench/RESULTS.md)
        release_freed_memory()
        for s in saved:
            self.sink(TraceSaved(str(s.path), s.kind, req.stage, size_of(s.path), steps, s.top_ops))
        self.sink(ProfileStopped(reason, steps))
        if self._queued:
            self.arm(self._queued.pop(0))
        return saved

    def _fail(self, message: str) -> None:
        self._queued = []  # the next would fail the same way
        if self.capture is not None:
            self.capture.abandon()
        self._reset()
        self.sink(ProfileFailed(message))

    def _reset(self) -> None:
        self.busy = self.recording = False
        self.capture = self.timeline = None
        self.request = self._shape = None


def check_trace_dir(path: Path) -> None:
    """The trace directory exists (created if need be) and takes new files (tried, not
    guessed from permissions, which root bypasses and read-only mounts ignore); else a
    UserError naming the fix. Checked before a run starts and again when a capture is armed."""
    if path.is_symlink() and not path.exists():
        raise UserError(
            f"--trace-dir {path} is a dangling symlink; point it at a directory or pass another"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UserError(f"--trace-dir {path} is a file; pass a directory") from None
    except OSError as e:
        raise UserError(f"--trace-dir {path}: {e.strerror}; pass a writable directory") from None
    probe = path / f".tmp-{os.getpid()}-probe"
    try:
        probe.open("x").close()
        probe.unlink()
    except OSError as e:
        raise UserError(
            f"--trace-dir {path} is not writable ({e.strerror}); pass a writable directory"
        ) from None


def size_of(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size if path.exists() else 0
