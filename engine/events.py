"""Frozen dataclasses the runner emits. Samples (per step) may be dropped under load; every
other event is control information and is never dropped."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

RESULT_KEYS = (
    "run_name",
    "batch_size",
    "input_len",
    "output_len",
    "prefill_latency",
    "prefill_throughput",
    "median_decode_latency",
    "median_decode_throughput",
    "total_latency",
    "overall_throughput",
)


def tokens_per_second(tokens: int, seconds: float) -> float:
    """The one throughput formula (bench_one_batch.py's): tokens over the seconds they took;
    NaN when there is no time to divide by."""
    return tokens / seconds if seconds and not math.isnan(seconds) else math.nan


# error: resumable; failed: the model never loaded (nothing can resume)
EngineState = Literal["loading", "warming up", "running", "paused", "stopped", "error", "failed"]


@dataclass(frozen=True)
class Event:
    """Base of every event the engine side emits."""


@dataclass(frozen=True)
class Sample(Event):
    """A per-step measurement: may be dropped (and counted) when the consumer falls behind."""


@dataclass(frozen=True)
class LoadProgress(Event):
    stage: str  # "loading weights", "compiling the decode step", "warming up"
    done: int
    total: int  # 0: no count, just the stage


@dataclass(frozen=True)
class StateChanged(Event):
    state: EngineState


@dataclass(frozen=True)
class EngineReady(Event):
    model_name: str
    param_count: int
    dtype: str
    device_name: str
    backend: str
    max_positions: int
    device_kind: str = "cpu"  # the engine's: cpu | cuda | npu | metal
    layers: int = 1  # decoder layers (open-ended captures are capped in layer-steps)
    threads: int = 0  # CPU threads the engine computes with (0: not known)
    server_kind: str = ""  # with --server: vllm | sglang | openai ("": in-process)
    kernel: str = ""  # the matmul kernel chosen at load (torch), else ""
    kernel_choices: tuple[str, ...] = ()  # per projection: the choice and its timings
    thread_choice: str = ""  # the decode step's CPU thread count chosen at load, and why
    decode_ops: str = ""  # how a decode step runs the ops between its matmuls (torch), and why


@dataclass(frozen=True)
class RunStarted(Event):
    run_index: int
    batch_size: int
    input_len: int
    output_len: int


@dataclass(frozen=True)
class PrefillDone(Sample):
    run_index: int
    batch_size: int
    input_len: int
    latency: float  # seconds
    profiled: bool = False  # ran under a capture: shown marked, kept out of the statistics


@dataclass(frozen=True)
class DecodeStep(Sample):
    run_index: int
    batch_size: int
    step: int  # 1 .. output_len - 1
    position: int
    latency: float  # seconds
    profiled: bool = False  # ran under a capture: shown marked, kept out of the statistics


@dataclass(frozen=True)
class RunResult:
    """One run, with bench_one_batch.py's definitions (latencies in seconds)."""

    run_name: str
    batch_size: int
    input_len: int
    output_len: int
    prefill_latency: float
    decode_latencies: tuple[float, ...] = field(repr=False)
    # Some step ran under a capture: its figures carry the profiler's overhead, so the run is
    # shown marked and left out of the statistics and the JSONL results.
    captured: bool = False
    # A server's run: the wall time until the last token of the batch (its requests overlap,
    # so it is not prefill plus the sum of the steps).
    wall_latency: float | None = None

    @property
    def prefill_throughput(self) -> float:
        return tokens_per_second(self.input_len * self.batch_size, self.prefill_latency)

    @property
    def median_decode_latency(self) -> float | None:
        if not self.decode_latencies:
            return None
        s = sorted(self.decode_latencies)
        n = len(s)
        return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2

    @property
    def median_decode_throughput(self) -> float | None:
        med = self.median_decode_latency
        return tokens_per_second(self.batch_size, med) if med else None

    @property
    def total_latency(self) -> float:
        if self.wall_latency is not None:
            return self.wall_latency
        return self.prefill_latency + sum(self.decode_latencies)

    @property
    def overall_throughput(self) -> float:
        tokens = (self.input_len + self.output_len) * self.batch_size
        return tokens_per_second(tokens, self.total_latency)

    def to_json_dict(self) -> dict[str, Any]:
        """Exactly the keys of bench_one_batch.py's --result-filename lines: with no decode
        step (output length 1) it leaves the two decode keys out, as SGLang does."""
        out = {k: getattr(self, k) for k in RESULT_KEYS}
        if not self.decode_latencies:
            del out["median_decode_latency"], out["median_decode_throughput"]
        return out


@dataclass(frozen=True)
class RunDone(Event):
    run_index: int
    result: RunResult


@dataclass(frozen=True)
class RunSkipped(Event):
    batch_size: int
    input_len: int
    output_len: int
    reason: str


@dataclass(frozen=True)
class SweepChanged(Event):
    """The engine took a new sweep (SetSweep); it runs from the next run on."""

    batch_sizes: tuple[int, ...]
    input_lens: tuple[int, ...]
    output_lens: tuple[int, ...]


@dataclass(frozen=True)
class Notice(Event):
    """A one-line message for the user (a rejected command, a hint)."""

    message: str
    level: str = "info"  # info | warning | error


@dataclass(frozen=True)
class EngineError(Event):
    """The engine stopped: `message` is one line naming the fix. `fatal`: the model never
    loaded, so nothing can resume; otherwise a resume (space) retries."""

    message: str
    traceback: str = ""  # empty for bad input; else also written to <trace-dir>/infertop.log
    fatal: bool = False


def event_dict(ev: Event) -> dict[str, Any]:
    return {"type": type(ev).__name__, **asdict(ev)}


@dataclass(frozen=True)
class ProfileArmed(Event):
    """The engine accepted a capture request; it starts at the next step of its stage."""

    name: str
    stage: str
    steps: int | None
    left_out: tuple[str, ...] = ()  # why an activity asked for is not recorded here


@dataclass(frozen=True)
class ProfileFailed(Event):
    """A capture could not be armed or started: nothing is recording, `message` says why."""

    message: str


@dataclass(frozen=True)
class ProfileStarted(Event):
    name: str
    stage: str
    kind: str  # torch | npu | metal | timeline
    batch_size: int
    input_len: int
    output_len: int


@dataclass(frozen=True)
class ProfileSaving(Event):
    """A line of progress while a capture is written (big traces take seconds)."""

    message: str


@dataclass(frozen=True)
class TraceSaved(Event):
    path: str
    kind: str  # torch | npu | metal | timeline | ops
    stage: str
    size: int  # bytes (a directory: the sum of its files)
    steps: int
    top_ops: tuple[tuple[str, float, int], ...] = ()


@dataclass(frozen=True)
class ProfileStopped(Event):
    reason: str
    steps: int
