"""Bounded rolling statistics of what the runner measured, per batch size.

Everything here has a fixed upper size, so a process that runs for days does not grow.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from infertop.engine.events import (
    DecodeStep,
    Event,
    PrefillDone,
    RunDone,
    RunResult,
    RunStarted,
    tokens_per_second,
)


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default) of an already sorted list."""
    if not sorted_values:
        return math.nan
    k = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


class Window:
    """The last `size` values, with summary statistics."""

    def __init__(self, size: int) -> None:
        self.values: deque[float] = deque(maxlen=size)
        self.count = 0  # values ever added

    def add(self, v: float) -> None:
        self.values.append(v)
        self.count += 1

    def clear(self) -> None:
        self.values.clear()
        self.count = 0

    @property
    def last(self) -> float:
        return self.values[-1] if self.values else math.nan

    def mean(self) -> float:
        return sum(self.values) / len(self.values) if self.values else math.nan

    def percentiles(self, *qs: float) -> tuple[float, ...]:
        s = sorted(self.values)
        return tuple(percentile(s, q) for q in qs)

    def __len__(self) -> int:
        return len(self.values)


@dataclass
class BatchStats:
    """Rolling figures for one batch size. Steps run under a capture carry the profiler's
    overhead: they stay out of the windows (and their runs out of the results) but are kept,
    marked, in the histories the charts draw."""

    HISTORY = 300  # points kept for the charts

    batch_size: int
    prefill: Window = field(default_factory=lambda: Window(256))
    prefill_tps: Window = field(default_factory=lambda: Window(256))
    decode: Window = field(default_factory=lambda: Window(4096))
    total: Window = field(default_factory=lambda: Window(256))  # run latency
    runs: int = 0  # runs completed without a capture
    captured_runs: int = 0
    # (step number, seconds, profiled) of the latest decode steps, and (run number, seconds,
    # profiled) of the latest prefills; numbers count from 1 for this batch size
    decode_history: deque[tuple[int, float, bool]] = field(
        default_factory=lambda: deque(maxlen=BatchStats.HISTORY)
    )
    prefill_history: deque[tuple[int, float, bool]] = field(
        default_factory=lambda: deque(maxlen=BatchStats.HISTORY)
    )
    decode_steps_seen: int = 0
    prefills_seen: int = 0

    def decode_throughput(self) -> float:
        """Tokens per second from the median decode step (bench_one_batch's definition)."""
        (p50,) = self.decode.percentiles(50)
        return tokens_per_second(self.batch_size, p50)


@dataclass
class RunPosition:
    run_index: int = -1
    batch_size: int = 0
    input_len: int = 0
    output_len: int = 0
    step: int = 0  # decode steps done in this run
    prefilled: bool = False


class LiveStats:
    """Folds runner events into bounded per-batch windows and histories for the charts."""

    RESULTS = 10_000  # run results kept for export (oldest evicted, counted)

    def __init__(self) -> None:
        self.batches: dict[int, BatchStats] = {}
        self.results: deque[RunResult] = deque(maxlen=self.RESULTS)
        self.results_evicted = 0
        self.progress = RunPosition()
        self.steps_seen = 0  # decode samples folded in (captured ones too)
        self.prefills_seen = 0
        self.generation = 0  # bumped by reset(): whatever drew the old figures redraws

    def batch(self, b: int) -> BatchStats:
        if b not in self.batches:
            self.batches[b] = BatchStats(b)
        return self.batches[b]

    def apply(self, events: Iterable[Event]) -> bool:
        """Fold events in; True when any figure changed."""
        changed = False
        for ev in events:
            match ev:
                case DecodeStep():
                    self._decode_step(ev)
                case PrefillDone():
                    self._prefill(ev)
                case RunStarted():
                    self.progress = RunPosition(
                        ev.run_index, ev.batch_size, ev.input_len, ev.output_len
                    )
                case RunDone():
                    self._run_done(ev)
                case _:
                    continue
            changed = True
        return changed

    def _decode_step(self, ev: DecodeStep) -> None:
        bs = self.batch(ev.batch_size)
        if not ev.profiled:
            bs.decode.add(ev.latency)
        bs.decode_steps_seen += 1
        bs.decode_history.append((bs.decode_steps_seen, ev.latency, ev.profiled))
        self.progress.step = ev.step
        self.steps_seen += 1

    def _prefill(self, ev: PrefillDone) -> None:
        bs = self.batch(ev.batch_size)
        if not ev.profiled:
            bs.prefill.add(ev.latency)
            bs.prefill_tps.add(tokens_per_second(ev.batch_size * ev.input_len, ev.latency))
        bs.prefills_seen += 1
        bs.prefill_history.append((bs.prefills_seen, ev.latency, ev.profiled))
        self.prefills_seen += 1
        self.progress.prefilled = True

    def _run_done(self, ev: RunDone) -> None:
        bs = self.batch(ev.result.batch_size)
        if ev.result.captured:
            bs.captured_runs += 1
            return
        bs.total.add(ev.result.total_latency)
        bs.runs += 1
        if len(self.results) == self.results.maxlen:
            self.results_evicted += 1
        self.results.append(ev.result)

    def reset(self) -> None:
        """Empty the statistics and charts; run results stay for export."""
        self.batches.clear()
        self.steps_seen = 0
        self.prefills_seen = 0
        self.generation += 1
