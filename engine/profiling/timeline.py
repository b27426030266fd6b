"""infertop's own step timeline as Chrome-trace JSON (opens in Perfetto), on every backend:
one slice per prefill and decode step captured, and counter tracks for process CPU%, RSS
and device memory sampled during the capture.

Events are stamped on the wall clock, and saved the way Kineto saves a torch trace: `ts` in
microseconds since the file's `baseTimeNanoseconds`. Saved with the torch trace's base, the
two files of one capture line up, and the counters also go into the torch trace itself
(engine/profiling/torch_trace.py). The file ends in `.timeline.trace`, not `.json`: HTA reads
every `.json` and `.gz` in a trace dir as some rank's torch trace."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import psutil

from infertop.engine.backend import MemoryStats
from infertop.engine.profiling.base import SavedTrace
from infertop.engine.profiling.naming import unique_path, write_bytes_atomically

SAMPLE_EVERY = 0.05  # seconds between counter samples
SUFFIX = "timeline.trace"
STEPS_TID = 1


class Timeline:
    def __init__(self) -> None:
        self.pid = os.getpid()
        self.proc = psutil.Process(self.pid)
        self.proc.cpu_percent(None)
        self._last_sample = 0.0
        # one anchor: perf_counter's readings (the runner's step times) to wall-clock ns
        self._wall0 = time.time_ns()
        self._perf0 = time.perf_counter()
        self.steps: list[dict[str, Any]] = []  # ts in wall-clock ns until saved, dur in us
        self.counters: list[dict[str, Any]] = []

    def wall_ns(self, perf: float) -> int:
        return self._wall0 + round((perf - self._perf0) * 1e9)

    def step(self, stage: str, t0: float, t1: float, args: dict[str, Any]) -> None:
        index = len(self.steps)
        self.steps.append(
            {
                "ph": "X",
                "name": stage,
                "cat": "step",
                "tid": STEPS_TID,
                "ts": self.wall_ns(t0),
                "dur": (t1 - t0) * 1e6,
                "args": {"step": index, "stage": stage, **args},
            }
        )

    def maybe_sample(self, memory: MemoryStats | None) -> None:
        now = time.perf_counter()
        if now - self._last_sample < SAMPLE_EVERY:
            return
        self._last_sample = now
        ts = self.wall_ns(now)
        with self.proc.oneshot():
            cpu = self.proc.cpu_percent(None)
            rss = self.proc.memory_info().rss
        self._counter("process CPU %", ts, {"cpu": cpu})
        self._counter("process RSS MiB", ts, {"rss": rss / 2**20})
        if memory is not None:
            self._counter(
                "device memory MiB",
                ts,
                {"allocated": memory.allocated / 2**20, "reserved": memory.reserved / 2**20},
            )

    def _counter(self, name: str, ts: int, values: dict[str, float]) -> None:
        self.counters.append({"ph": "C", "name": name, "ts": ts, "args": values})

    def save(self, directory: Path, stem: str, base_ns: int | None = None) -> SavedTrace:
        """`base_ns`: the torch trace's baseTimeNanoseconds, when this capture has one."""
        base = self._wall0 if base_ns is None else base_ns
        meta = [
            {"ph": "M", "name": "process_name", "tid": 0, "args": {"name": "infertop engine"}},
            {"ph": "M", "name": "thread_name", "tid": STEPS_TID, "args": {"name": "steps"}},
        ]
        events = [
            {**e, "pid": self.pid, **({"ts": (e["ts"] - base) / 1e3} if "ts" in e else {})}
            for e in (*meta, *self.steps, *self.counters)
        ]
        data = {"traceEvents": events, "displayTimeUnit": "ms", "baseTimeNanoseconds": base}
        path = unique_path(directory, stem, SUFFIX)
        write_bytes_atomically(path, json.dumps(data).encode())
        return SavedTrace(path, "timeline")
