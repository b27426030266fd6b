"""Test double of `torch_npu.profiler`.

Mirrors torch_npu 2.14.0 (wheel torch_npu-2.14.0-cp311-cp311-manylinux_2_28_x86_64.whl),
torch_npu/profiler/__init__.py: the same public names, imported from the same submodules
(profiler.py, profiler_interface.py, scheduler.py, experimental_config.py; ProfilerActivity
from torch_npu._C._profiler). Left out: `_NonIntrusiveProfile` and dynamic_profile.

Test-only additions (not in the real package): `CALLS`, the ordered list of
(name, arguments as passed) the double has seen, and `_reset_double()`.
"""

from .._C._profiler import ProfilerActivity
from ._common import CALLS
from ._profiler_path_creator import ProfPathCreator
from .experimental_config import (
    AiCMetrics,
    ExportType,
    HostSystem,
    ProfilerLevel,
    _ExperimentalConfig,
    supported_ai_core_metrics,
    supported_export_type,
    supported_profiler_level,
)
from .profiler import _KinetoProfile as _KinetoProfile
from .profiler import profile, tensorboard_trace_handler
from .profiler_interface import supported_activities
from .scheduler import ProfilerAction
from .scheduler import Schedule as schedule


def _reset_double() -> None:
    """Clear CALLS and the process-wide output-path state (test helper, not real API)."""
    CALLS.clear()
    ProfPathCreator()._reset()


__all__ = [
    "profile",
    "ProfilerActivity",
    "supported_activities",
    "tensorboard_trace_handler",
    "schedule",
    "ProfilerAction",
    "_ExperimentalConfig",
    "supported_profiler_level",
    "supported_ai_core_metrics",
    "supported_export_type",
    "ProfilerLevel",
    "AiCMetrics",
    "ExportType",
    "HostSystem",
]
