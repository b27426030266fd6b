"""Constants, messages and the exception-swallowing decorator the profiler uses.

Mirrors torch_npu 2.14.0 (wheel torch_npu-2.14.0-cp311-cp311-manylinux_2_28_x86_64.whl),
torch_npu/profiler/analysis/prof_common_func/_constant.py (class `Constant`, only the
members the public API uses, same values; `print_info_msg`, `print_warn_msg`,
`print_error_msg`), torch_npu/profiler/analysis/prof_common_func/_utils.py
(`no_exception_func`), torch_npu/profiler/analysis/prof_bean/_op_statistic_bean.py
(`OpStatisticBean.HEADERS`) and torch_npu/profiler/analysis/prof_common_func/_csv_headers.py
(`CsvHeaders.OP_SUMMARY_KERNEL_BASE_HEADERS`).

The real `print_warn_msg` can be silenced by torch_npu's warning settings; this one always
prints.
"""

from __future__ import annotations

import functools
import inspect
import os
import time
from collections.abc import Callable
from typing import Any

# Every call the double sees, in order: (name, {argument: value as passed}).
# Re-exported as torch_npu.profiler.CALLS. Not part of the real API.
CALLS: list[tuple[str, dict[str, Any]]] = []


class Constant:
    DEFAULT_PROCESS_NUMBER = os.cpu_count() // 2
    MAX_WORKER_NAME_LENGTH = 226

    FRAMEWORK_DIR = "FRAMEWORK"
    OUTPUT_DIR = "ASCEND_PROFILER_OUTPUT"
    ASCEND_WORK_PATH = "ASCEND_WORK_PATH"
    PROFILING_WORK_PATH = "profiling_data"
    PROFILER_META_DATA = "profiler_metadata.json"
    TRACE_VIEW = "trace_view.json"

    TENSORBOARD_TRACE_HANDLER = "tensorboard_trace_handler"
    EXPORT_CHROME_TRACE = "export_chrome_trace"
    EXPORT_STACK = "export_stack"
    EXPORT_MEMORY_TIMELINE = "export_memory_timeline"

    CONFIG = "config"
    COMMON_CONFIG = "common_config"
    EXPERIMENTAL_CONFIG = "experimental_config"
    TORCH_NPU_VERSION = "torch_npu_version"

    LEVEL0 = "Level0"
    LEVEL1 = "Level1"
    LEVEL2 = "Level2"
    LEVEL_NONE = "Level_none"
    AicPipeUtilization = "ACL_AICORE_PIPE_UTILIZATION"
    AicArithmeticUtilization = "ACL_AICORE_ARITHMETIC_UTILIZATION"
    AicMemory = "ACL_AICORE_MEMORY_BANDWIDTH"
    AicMemoryL0 = "ACL_AICORE_L0B_AND_WIDTH"
    AicMemoryUB = "ACL_AICORE_MEMORY_UB"
    AicResourceConflictRatio = "ACL_AICORE_RESOURCE_CONFLICT_RATIO"
    AicL2Cache = "ACL_AICORE_L2_CACHE"
    AicMemoryAccess = "ACL_AICORE_MEMORY_ACCESS"
    AicMetricsNone = "ACL_AICORE_NONE"
    Db = "db"
    Text = "text"
    CPU = "cpu"
    MEM = "mem"
    DISK = "disk"
    NETWORK = "network"
    OSRT = "osrt"
    NUMA = "numa"

    METRIC_CPU_TIME = "self_cpu_time_total"
    METRIC_NPU_TIME = "self_npu_time_total"


# analysis/prof_bean/_op_statistic_bean.py: OpStatisticBean.HEADERS. The real
# ASCEND_PROFILER_OUTPUT/op_statistic.csv copies the header row of CANN's
# op_statistic_*.csv files (csv.DictReader keys); this list is what torch_npu declares.
OP_STATISTIC_HEADERS = [
    "OP Type",
    "Core Type",
    "Count",
    "Total Time(us)",
    "Min Time(us)",
    "Avg Time(us)",
    "Max Time(us)",
    "Ratio(%)",
]

# analysis/prof_common_func/_csv_headers.py: CsvHeaders.OP_SUMMARY_KERNEL_BASE_HEADERS,
# the kernel_details.csv columns (CANN may add shape/format columns after these).
KERNEL_DETAILS_HEADERS = [
    "Device_id",
    "Name",
    "Type",
    "Accelerator Core",
    "Start Time(us)",
    "Duration(us)",
    "Wait Time(us)",
    "Block Num",
]


def _stamp() -> str:
    return time.strftime("[%Y-%m-%d %H:%M:%S]", time.localtime())


def print_info_msg(message: str) -> None:
    print(f"{_stamp()} [INFO] [{os.getpid()}] profiler.py: {message}", flush=True)


def print_warn_msg(message: str) -> None:
    print(f"{_stamp()} [WARNING] [{os.getpid()}] profiler.py: {message}", flush=True)


def print_error_msg(message: str) -> None:
    print(f"{_stamp()} [ERROR] [{os.getpid()}] profiler.py: {message}", flush=True)


def no_exception_func(default_ret: Any = None) -> Callable[[Callable[..., Any]], Any]:
    """Like the real decorator: any Exception is printed as an error and swallowed."""

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                result = func(*args, **kwargs)
            except Exception as ex:
                print_error_msg(f"Call {func.__name__} failed. Exception: {str(ex)}")
                return default_ret
            return result

        return wrapper

    return decorator


def record_call(name: str) -> Callable[[Callable[..., Any]], Any]:
    """Append (name, the arguments as the caller passed them) to CALLS, then call.

    Arguments left at their default are not recorded, so a test can tell "not passed"
    from "passed None". `functools.wraps` keeps `inspect.signature` exact.
    """

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(func)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                bound = signature.bind_partial(*args, **kwargs).arguments
            except TypeError:
                bound = dict(kwargs)
            passed = {k: v for k, v in bound.items() if k not in ("self", "cls")}
            CALLS.append((name, passed))
            return func(*args, **kwargs)

        return wrapper

    return decorator
