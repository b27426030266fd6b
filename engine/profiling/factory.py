"""The one place that maps a device kind to its profiler module."""

from __future__ import annotations

from collections.abc import Callable

from infertop.engine.profiling.base import Capture
from infertop.engine.profiling.request import CaptureRequest


def _torch(request: CaptureRequest, kind: str) -> Capture:
    from infertop.engine.profiling.torch_profiler import (
        CudaProfilerRange,
        TorchCapture,
        nothing_to_record,
    )

    ranges_only = "cuda_profiler" in request.activities and nothing_to_record(request, kind)
    if kind == "cuda" and ranges_only:  # bench_one_batch's nsys line
        return CudaProfilerRange()
    return TorchCapture(request, kind)


def _npu(request: CaptureRequest, kind: str) -> Capture:
    from infertop.engine.profiling.npu_profiler import NpuCapture

    return NpuCapture(request)


def _metal(request: CaptureRequest, kind: str) -> Capture:
    from infertop.engine.profiling.metal_capture import MetalCapture

    return MetalCapture()


PROFILERS: dict[str, Callable[[CaptureRequest, str], Capture]] = {
    "cpu": _torch,
    "cuda": _torch,
    "npu": _npu,
    "metal": _metal,
}


def activities_left_out(request: CaptureRequest, device_kind: str) -> list[str]:
    """Why each activity asked for is not recorded here (CPU, GPU, CUDA_PROFILER on a CPU: a
    trace of the CPU, and a line each for the other two); [] where all of them are."""
    if device_kind not in ("cpu", "cuda") or not request.vendor:
        return []
    from infertop.engine.profiling.torch_profiler import left_out

    return left_out(request, device_kind)


def make_capture(request: CaptureRequest, device_kind: str) -> Capture | None:
    """The device's own profiler for this request, or None when only the timeline is asked."""
    if not request.vendor:
        return None
    return PROFILERS[device_kind](request, device_kind)
