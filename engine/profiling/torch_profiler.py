r"""torch.profiler on CPU and CUDA: a gzip Chrome trace plus a key_averages table beside it.

The trace is named `<stem>.pt.trace.json.gz`, the only names TensorBoard's profiler plugin
reads (`^(.*?)(\.\d+)?\.pt\.trace\.json(\.gz)?$`); its steps are ProfilerStep#N ranges.

Only generic torch.profiler arguments are built here; NPU-only keywords such as
`experimental_config` live in npu_profiler.py and are never passed to this profiler.
"""

from __future__ import annotations

import gzip
import json
import os
import threading
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import torch
from torch.profiler import ProfilerActivity

from infertop.engine.errors import UserError
from infertop.engine.profiling.base import Counters, SavedTrace, SaveProgress, TopOps
from infertop.engine.profiling.naming import publish_all, temp_path_for, unique_path, write_new
from infertop.engine.profiling.request import DEFAULT_ACTIVITIES, CaptureRequest
from infertop.engine.profiling.steps import is_step_range, step_ranges
from infertop.engine.profiling.torch_trace import (
    Trace,
    add_counters,
    add_step_args,
    distributed_info,
    name_thread,
)

TOP_OPS = 15


def profiler_kwargs(request: CaptureRequest, device_kind: str) -> dict[str, Any]:
    """The arguments for torch.profiler.profile: generic ones only."""
    activities = []
    if "cpu" in request.activities:
        activities.append(ProfilerActivity.CPU)
    if "device" in request.activities and device_kind == "cuda":
        activities.append(ProfilerActivity.CUDA)
    return {
        "activities": activities,
        "record_shapes": request.record_shapes,
        "with_stack": request.with_stack,
        "profile_memory": request.profile_memory,
    }


TRACE_SUFFIX = "pt.trace.json.gz"


def left_out(request: CaptureRequest, device_kind: str) -> list[str]:
    """Why each activity asked for is not recorded on this device, one reason each (the
    default's GPU is not asked for: on a CPU, every default --profile said it)."""
    if device_kind == "cuda":
        return []
    reasons = []
    if "device" in request.activities and request.activities != DEFAULT_ACTIVITIES:
        reasons.append(f"GPU records a device's own activity and this run is on {device_kind}")
    if "cuda_profiler" in request.activities:
        reasons.append(
            "CUDA_PROFILER brackets the steps for Nsight Systems and needs a CUDA device"
        )
    return reasons


def nothing_to_record(request: CaptureRequest, device_kind: str) -> str | None:
    """Why torch's profiler has no activity to record for this request here, else None."""
    if profiler_kwargs(request, device_kind)["activities"]:
        return None
    return (
        "; ".join(left_out(request, device_kind))
        + f"; on {device_kind} use --profile-activities CPU"
    )


class CudaProfilerRange:
    """`--profile-activities CUDA_PROFILER` alone (bench_one_batch's nsys line): the steps
    are bracketed by cudaProfilerStart/Stop for `nsys profile --capture-range=cudaProfilerApi`,
    which writes the report; torch's profiler does not run and nothing is saved here."""

    kind = "cuda_profiler"
    base_ns: int | None = None

    def start(self, directory: Path, stem: str) -> None:
        torch.cuda.profiler.start()  # type: ignore[no-untyped-call]

    def annotate(self, stage: str, index: int) -> AbstractContextManager[object]:
        return step_ranges(stage, index)

    def stop_and_save(
        self, progress: SaveProgress, steps: int, counters: Counters
    ) -> list[SavedTrace]:
        torch.cuda.profiler.stop()  # type: ignore[no-untyped-call]
        return []

    def abandon(self) -> None:
        torch.cuda.profiler.stop()  # type: ignore[no-untyped-call]


class TorchCapture:
    kind = "torch"

    def __init__(self, request: CaptureRequest, device_kind: str) -> None:
        why = nothing_to_record(request, device_kind)
        if why is not None:
            raise UserError(why)
        self.device_kind = device_kind
        self.sort_key = "self_cuda_time_total" if device_kind == "cuda" else "self_cpu_time_total"
        self.cuda_profiler = "cuda_profiler" in request.activities and device_kind == "cuda"
        self.prof = torch.profiler.profile(**profiler_kwargs(request, device_kind))
        self.final: Path | None = None
        self.temps: list[Path] = []
        self.stages: dict[int, str] = {}  # captured step -> its stage
        self.tid = 0  # the engine thread's (Kineto's tid is the native one)
        self.base_ns: int | None = None

    def start(self, directory: Path, stem: str) -> None:
        self.final = unique_path(directory, stem, TRACE_SUFFIX)
        self.tid = threading.get_native_id()
        self.prof.start()
        self.prof.add_metadata_json("distributedInfo", json.dumps(distributed_info()))
        if self.cuda_profiler:  # brackets the capture for Nsight Systems' cudaProfilerApi
            torch.cuda.profiler.start()  # type: ignore[no-untyped-call]

    def annotate(self, stage: str, index: int) -> AbstractContextManager[object]:
        self.stages[index] = stage
        return step_ranges(stage, index)

    def stop_and_save(
        self, progress: SaveProgress, steps: int, counters: Counters
    ) -> list[SavedTrace]:
        """Export into the trace dir (not $TMPDIR: torch's own .gz export writes the JSON
        there and ignores a failed write), check it holds the captured steps, gzip it, and
        publish it with its ops table, or nothing."""
        final = self.final
        assert final is not None
        if self.cuda_profiler:
            torch.cuda.profiler.stop()  # type: ignore[no-untyped-call]
        progress("stopping the profiler")
        self.prof.stop()
        progress("writing the trace")
        raw = self._temp(final, ".json")
        self.temps.append(raw.with_name(raw.name + ".tmp"))  # Kineto writes there, then renames
        self.prof.export_chrome_trace(str(raw))
        progress("checking the trace")
        trace = load_trace(raw)
        found = add_step_args(trace, self.stages)
        if found < steps:
            raise UserError(
                f"the profiler's trace holds {found} of the {steps} captured steps (a full disk?)"
            )
        name_thread(trace, self.tid, f"infertop engine (thread {self.tid})")
        add_counters(trace, counters, os.getpid())
        self.base_ns = int(trace.get("baseTimeNanoseconds", 0)) or None
        progress("writing the trace")
        gz = self._temp(final)
        write_gzip_json(trace, gz)
        progress("summarising ops")
        averages = self.prof.key_averages()
        ops_final = final.with_name(final.name.removesuffix(f".{TRACE_SUFFIX}") + ".ops.txt")
        ops = self._temp(ops_final)
        write_new(ops, averages.table(sort_by=self.sort_key, row_limit=100).encode())
        published = publish_all([(gz, final), (ops, ops_final)])
        self._remove_temps()
        top = top_ops(averages, self.device_kind)
        return [SavedTrace(published[0], "torch", top), SavedTrace(published[1], "ops", top)]

    def _temp(self, final: Path, suffix: str = "") -> Path:
        path = temp_path_for(final, suffix)
        self.temps.append(path)
        return path

    def _remove_temps(self) -> None:
        for path in self.temps:
            path.unlink(missing_ok=True)
        self.temps = []

    def abandon(self) -> None:
        try:
            self.prof.stop()
        except Exception:  # noqa: BLE001 - already stopped or never started
            pass
        self._remove_temps()


def load_trace(path: Path) -> Trace:
    """The exported trace, parsed; else a UserError (the profiler ignores a failed write and
    leaves a short or empty file)."""
    try:
        with path.open("rb") as f:
            trace = json.load(f)
    except (OSError, ValueError) as e:
        detail = e.strerror if isinstance(e, OSError) else "incomplete or unreadable"
        raise UserError(f"the profiler's trace is {detail} (a full disk?)") from None
    if not isinstance(trace, dict):
        raise UserError("the profiler's trace is incomplete or unreadable (a full disk?)")
    return trace


def write_gzip_json(trace: Trace, dst: Path) -> None:
    with dst.open("xb") as raw, gzip.GzipFile(fileobj=raw, mode="wb") as out:
        out.write(json.dumps(trace).encode())
        out.close()  # the gzip trailer before the fsync
        raw.flush()
        os.fsync(raw.fileno())


def top_ops(averages: Any, device_kind: str, n: int = TOP_OPS) -> TopOps:
    """The n ops with the most self time (device time on a GPU), our step annotations left out."""
    attr = "self_device_time_total" if device_kind == "cuda" else "self_cpu_time_total"
    rows = [
        (e.key, float(getattr(e, attr)), int(e.count)) for e in averages if not is_step_range(e.key)
    ]
    rows.sort(key=lambda r: r[1], reverse=True)
    return tuple(rows[:n])
