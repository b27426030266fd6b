"""torch.profiler on CPU and CUDA: a gzip Chrome trace plus a key_averages table beside it.

Only generic torch.profiler arguments are built here; NPU-only keywords such as
`experimental_config` live in npu_profiler.py and are never passed to this profiler.
"""

from __future__ import annotations

import secrets
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import torch
from torch.profiler import ProfilerActivity, record_function

from engine.profiling.base import Progress, SavedTrace, TopOps
from engine.profiling.naming import publish, unique_path, write_bytes_atomically
from engine.profiling.request import CaptureRequest

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


class TorchCapture:
    kind = "torch"

    def __init__(self, request: CaptureRequest, device_kind: str) -> None:
        self.device_kind = device_kind
        self.sort_key = "self_cuda_time_total" if device_kind == "cuda" else "self_cpu_time_total"
        self.cuda_profiler = "cuda_profiler" in request.activities and device_kind == "cuda"
        self.prof = torch.profiler.profile(**profiler_kwargs(request, device_kind))
        self.final: Path | None = None
        self.tmp: Path | None = None

    def start(self, directory: Path, stem: str) -> None:
        self.final = unique_path(directory, stem, "trace.json.gz")
        # the temporary name keeps the suffix: export_chrome_trace gzips by suffix
        self.tmp = self.final.with_name(f".tmp-{secrets.token_hex(3)}-{self.final.name}")
        self.prof.start()
        if self.cuda_profiler:  # brackets the capture for Nsight Systems' cudaProfilerApi
            torch.cuda.profiler.start()

    def annotate(self, name: str) -> AbstractContextManager[object]:
        return record_function(name)

    def stop_and_save(self, progress: Progress) -> list[SavedTrace]:
        assert self.final is not None and self.tmp is not None
        if self.cuda_profiler:
            torch.cuda.profiler.stop()
        progress("stopping the profiler")
        self.prof.stop()
        progress("writing the trace")
        try:
            self.prof.export_chrome_trace(str(self.tmp))
            publish(self.tmp, self.final)
        finally:
            self.tmp.unlink(missing_ok=True)
        progress("summarising ops")
        averages = self.prof.key_averages()
        table = averages.table(sort_by=self.sort_key, row_limit=100)
        ops_path = self.final.with_name(self.final.name.removesuffix(".trace.json.gz") + ".ops.txt")
        write_bytes_atomically(ops_path, table.encode())
        top = top_ops(averages, self.device_kind)
        return [SavedTrace(self.final, "torch", top), SavedTrace(ops_path, "ops", top)]

    def abandon(self) -> None:
        try:
            self.prof.stop()
        except Exception:  # noqa: BLE001 - already stopped or never started
            pass
        if self.tmp:
            self.tmp.unlink(missing_ok=True)


def top_ops(averages: Any, device_kind: str, n: int = TOP_OPS) -> TopOps:
    """The n ops with the most self time (device time on a GPU), our step annotations left out."""
    attr = "self_device_time_total" if device_kind == "cuda" else "self_cpu_time_total"
    rows = [
        (e.key, float(getattr(e, attr)), int(e.count))
        for e in averages
        if not e.key.startswith("infertop.")
    ]
    rows.sort(key=lambda r: r[1], reverse=True)
    return tuple(rows[:n])
