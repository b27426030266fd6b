"""MLX's default device: Metal on Apple silicon, the CPU elsewhere; its name and memory."""

from __future__ import annotations

import mlx.core as mx

from infertop.engine.backend import MemoryStats


class MlxDevice:
    """Name and memory of MLX's default device."""

    @property
    def name(self) -> str:
        if mx.metal.is_available():
            info = mx.metal.device_info()
            return str(info.get("device_name", "Apple GPU"))
        return "CPU (MLX, reference BLAS)"

    def memory(self) -> MemoryStats:
        active, peak = mx.get_active_memory(), mx.get_peak_memory()
        return MemoryStats(allocated=active, reserved=active + mx.get_cache_memory(), peak=peak)

    def reset_peak(self) -> None:
        mx.reset_peak_memory()
