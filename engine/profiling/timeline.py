"""infertop's own step timeline as Chrome-trace JSON (opens in Perfetto), on every backend:
one slice per prefill and decode step captured, and counter tracks for process CPU%, RSS
and device memory sampled during the capture."""

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


class Timeline:
    def __init__(self) -> None:
        self.pid = os.getpid()
        self.events: list[dict[str, Any]] = []
        self.proc = psutil.Process(self.pid)
        self.proc.cpu_percent(None)
        self._last_sample = 0.0
        self._t0 = time.perf_counter()
        self.events.append(
            {
                "ph": "M",
                "name": "process_name",
                "pid": self.pid,
                "tid": 0,
                "args": {"name": "infertop engine"},
            }
        )

    def _us(self, t: float) -> float:
        return (t - self._t0) * 1e6

    def step(self, stage: str, t0: float, t1: float, args: dict[str, Any]) -> None:
        self.events.append(
            {
                "ph": "X",
                "name": stage,
                "cat": "step",
                "pid": self.pid,
                "tid": 1,
                "ts": self._us(t0),
                "dur": (t1 - t0) * 1e6,
                "args": args,
            }
        )

    def maybe_sample(self, memory: MemoryStats | None) -> None:
        now = time.perf_counter()
        if now - self._last_sample < SAMPLE_EVERY:
            return
        self._last_sample = now
        ts = self._us(now)
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

    def _counter(self, name: str, ts: float, values: dict[str, float]) -> None:
        self.events.append({"ph": "C", "name": name, "pid": self.pid, "ts": ts, "args": values})

    def save(self, directory: Path, stem: str) -> SavedTrace:
        path = unique_path(directory, stem, "timeline.json")
        data = json.dumps({"traceEvents": self.events, "displayTimeUnit": "ms"})
        write_bytes_atomically(path, data.encode())
        return SavedTrace(path, "timeline")
