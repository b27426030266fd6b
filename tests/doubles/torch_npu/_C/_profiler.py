"""Stand-in for `torch_npu._C._profiler` (a pybind11 module in the real package).

Mirrors torch_npu 2.14.0 (wheel torch_npu-2.14.0-cp311-cp311-manylinux_2_28_x86_64.whl),
whose `ProfilerActivity` lives in the compiled torch_npu/_C.cpython-311-x86_64-linux-gnu.so
and lib/libtorch_npu.so, so it cannot be read from the wheel's Python files. Its members
come from the C++ source of the same project (Ascend/pytorch):
torch_npu/csrc/profiler/init.cpp binds

    py::enum_<NpuActivityType>(m, "ProfilerActivity")
        .value("CPU", NpuActivityType::CPU)
        .value("NPU", NpuActivityType::NPU);

and torch_npu/csrc/profiler/npu_profiler.h declares
`enum class NpuActivityType { NONE = 0, CPU, NPU }`, so CPU == 1 and NPU == 2 (NONE is
not exposed). `_supported_npu_activities()` returns {CPU, NPU}.

A pybind11 enum is not an IntEnum: `str(ProfilerActivity.CPU)` is
"ProfilerActivity.CPU", and `int()` works. A plain Enum with `__int__` matches that.
"""

from __future__ import annotations

import enum


class ProfilerActivity(enum.Enum):
    CPU = 1
    NPU = 2

    def __int__(self) -> int:
        return int(self.value)

    def __index__(self) -> int:
        return int(self.value)


def _supported_npu_activities() -> set[ProfilerActivity]:
    return {ProfilerActivity.CPU, ProfilerActivity.NPU}


class _ExperimentalConfig:
    """The C-side config that `torch_npu.profiler._ExperimentalConfig.__call__` builds.

    The real one is a pybind11 class; this stand-in keeps the keywords it was given
    (trace_level, metrics, l2_cache, record_op_args, msprof_tx, op_attr, host_sys,
    mstx_domain_include, mstx_domain_exclude, sys_io, sys_interconnection).
    """

    def __init__(self, **kwargs: object) -> None:
        self.kwargs = dict(kwargs)
        for name, value in kwargs.items():
            setattr(self, name, value)
