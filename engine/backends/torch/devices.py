"""Torch devices, one small class each: a human name, synchronize(), and memory figures.

`torch_npu` is imported only when the NPU is asked for or auto-detection probes for it.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

import psutil
import torch

from infertop.engine.backend import MemoryStats
from infertop.engine.config import DeviceKind
from infertop.engine.errors import UserError
from infertop.engine.footprint import cpu_available_bytes
from infertop.engine.memory import peak_rss
from infertop.engine.text import plural


class TorchDevice:
    kind: DeviceKind = "cpu"

    @property
    def torch_device(self) -> torch.device:
        return torch.device(self.kind)

    @property
    def name(self) -> str:
        raise NotImplementedError

    def synchronize(self) -> None:
        raise NotImplementedError

    def memory(self) -> MemoryStats:
        raise NotImplementedError

    def free_bytes(self) -> int:
        """Memory it can still give (engine/footprint.py checks needs against it)."""
        raise NotImplementedError

    def reset_peak(self) -> None:
        """Start a new peak-memory window (no-op where peaks are not tracked)."""


class CpuDevice(TorchDevice):
    kind = "cpu"

    @property
    def name(self) -> str:
        n = torch.get_num_threads()
        return f"CPU ({plural(n, 'thread')})"

    def synchronize(self) -> None:
        """CPU ops run synchronously; nothing to wait for."""

    def memory(self) -> MemoryStats:
        rss = psutil.Process(os.getpid()).memory_info().rss
        return MemoryStats(allocated=rss, reserved=rss, peak=max(rss, peak_rss()))

    def free_bytes(self) -> int:
        return cpu_available_bytes()


class AcceleratorDevice(TorchDevice):
    """A device behind a torch module with CUDA's API (torch.cuda, or torch.npu)."""

    def __init__(self, api: Any) -> None:
        self._api = api

    @property
    def name(self) -> str:
        return str(self._api.get_device_name(0))

    def synchronize(self) -> None:
        self._api.synchronize()

    def memory(self) -> MemoryStats:
        return MemoryStats(
            allocated=self._api.memory_allocated(),
            reserved=self._api.memory_reserved(),
            peak=self._api.max_memory_allocated(),
        )

    def free_bytes(self) -> int:
        return int(self._api.mem_get_info()[0])

    def reset_peak(self) -> None:
        self._api.reset_peak_memory_stats()


class CudaDevice(AcceleratorDevice):
    kind = "cuda"

    def __init__(self) -> None:
        super().__init__(torch.cuda)


class NpuDevice(AcceleratorDevice):
    """Ascend NPU through torch_npu, which registers `torch.npu` on import."""

    kind = "npu"

    def __init__(self) -> None:
        import torch_npu  # noqa: F401  (registers torch.npu)

        super().__init__(torch.npu)  # type: ignore[attr-defined]


def npu_installed() -> bool:
    return importlib.util.find_spec("torch_npu") is not None


def _npu_usable() -> bool:
    try:
        import torch_npu  # noqa: F401

        return bool(torch.npu.is_available())  # type: ignore[attr-defined]
    except Exception:  # without CANN torch_npu fails in many ways: treat all as "no NPU"
        return False


def select_device(requested: str) -> TorchDevice:
    """auto picks cuda, then npu, then cpu; an explicit choice that cannot run says what to do."""
    if requested == "auto":
        if torch.cuda.is_available():
            return CudaDevice()
        if npu_installed() and _npu_usable():
            return NpuDevice()
        return CpuDevice()
    if requested == "cpu":
        return CpuDevice()
    if requested == "cuda":
        if not torch.cuda.is_available():
            raise UserError(
                "--device cuda: no CUDA GPU visible to torch "
                f"(torch {torch.__version__}); install a CUDA build of torch or use --device cpu"
            )
        return CudaDevice()
    if requested == "npu":
        if not npu_installed():
            raise UserError("--device npu: torch_npu is not installed; pip install infertop[npu]")
        if not _npu_usable():
            raise UserError(
                "--device npu: torch_npu cannot reach an NPU; install Ascend CANN and "
                "source set_env.sh, or use --device cpu"
            )
        return NpuDevice()
    raise UserError(f"unknown device {requested!r}; use auto, cpu, cuda or npu")
