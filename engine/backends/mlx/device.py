"""MLX's default device: Metal on Apple silicon, the CPU elsewhere; its name and memory.

mx.device_info(), not mx.metal.device_info(): deprecated since mlx 0.30.4, that one prints a
warning on stderr (in the middle of `infertop bench`'s output)."""

from __future__ import annotations

import mlx.core as mx

from infertop.engine.backend import MemoryStats
from infertop.engine.footprint import cpu_available_bytes


class MlxDevice:
    """Name and memory of MLX's default device."""

    @property
    def name(self) -> str:
        if mx.metal.is_available():
            return str(mx.device_info().get("device_name", "Apple GPU"))
        return "CPU (MLX, reference BLAS)"

    def free_bytes(self) -> int:
        """MLX's recommended working set less what is in use on Metal; the CPU's otherwise."""
        if mx.metal.is_available():
            limit = int(mx.device_info().get("max_recommended_working_set_size", 0))
            if limit:
                return max(limit - int(mx.get_active_memory()), 0)
        return cpu_available_bytes()

    def memory(self) -> MemoryStats:
        active, peak = mx.get_active_memory(), mx.get_peak_memory()
        return MemoryStats(allocated=active, reserved=active + mx.get_cache_memory(), peak=peak)

    def reset_peak(self) -> None:
        mx.reset_peak_memory()
