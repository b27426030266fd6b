"""Fake offline analysis: writes the files the real parser would, with made-up rows.

Mirrors torch_npu 2.14.0 (wheel torch_npu-2.14.0-cp311-cp311-manylinux_2_28_x86_64.whl),
the output layout of torch_npu/profiler/analysis/_npu_profiler.py (NpuProfiler.analyse),
analysis/_profiling_parser.py, analysis/_profiler_config.py (LEVEL_PARSER_CONFIG),
analysis/prof_config/_parser_config.py, analysis/prof_view/_trace_view_parser.py,
analysis/prof_view/_kernel_view_parser.py, analysis/prof_view/_integrate_parser.py and
analysis/prof_common_func/_file_manager.py.

Tensorboard mode (`on_trace_ready=tensorboard_trace_handler(dir)`), text export:

    <dir>/<worker>_<pid>_<YYYYmmddHHMMSSfff>_ascend_pt/
        profiler_info.json                      (written at finalize, before analysis)
        ASCEND_PROFILER_OUTPUT/                 (deleted and re-created by each analysis)
            trace_view.json                     a JSON *array* of Chrome trace events
            kernel_details.csv                  only with ProfilerActivity.NPU
            op_statistic.csv                    only with NPU and profiler_level Level1/Level2
            analyse.done                        empty, written last

The real analysis writes more (operator_details.csv, step_trace_time.csv, FRAMEWORK/,
PROF_*/ from CANN, ...): only the files above are faked. Real CSV/JSON writers skip a
file whose data is empty, so a real run can lack any of them. With export_type db only,
the real parser writes an SQLite file instead; this double then writes only analyse.done.

Chrome-trace export (`prof.export_chrome_trace(path)`) writes the same JSON array, as
plain text, to `path` whatever its suffix: a `.gz` name is neither refused nor
compressed (FileManager.create_json_file_by_path uses `open(output_path, "w")`).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Iterable

from .._C._profiler import ProfilerActivity
from ._common import (
    KERNEL_DETAILS_HEADERS,
    OP_STATISTIC_HEADERS,
    Constant,
)

OP_STATISTIC_FILE = "op_statistic.csv"
KERNEL_DETAILS_FILE = "kernel_details.csv"
ANALYSE_DONE_FILE = "analyse.done"

# Three made-up rows (OP Type, Core Type, Count, Total, Min, Avg, Max, Ratio).
FAKE_OP_STATISTIC_ROWS = [
    ["MatMulV2", "AI_CORE", "24", "1200.0", "40.0", "50.0", "70.0", "60.0"],
    ["RmsNorm", "AI_VECTOR_CORE", "48", "480.0", "8.0", "10.0", "14.0", "24.0"],
    ["Add", "AI_VECTOR_CORE", "64", "320.0", "4.0", "5.0", "7.0", "16.0"],
]

FAKE_KERNEL_ROWS = [
    ["0", "aten::mm/MatMulV2", "MatMulV2", "AI_CORE", "1700000000000.000", "50.0", "1.0", "20"],
    ["0", "RmsNorm", "RmsNorm", "AI_VECTOR_CORE", "1700000000060.000", "10.0", "0.5", "40"],
    ["0", "aten::add/Add", "Add", "AI_VECTOR_CORE", "1700000000080.000", "5.0", "0.2", "40"],
]


def fake_trace_events() -> list[dict]:
    """A small list in the shape TraceEventManager writes (ts as strings, in us)."""
    pid = os.getpid()
    return [
        {"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": "Python"}},
        {
            "ph": "X",
            "name": "aten::mm",
            "pid": pid,
            "tid": pid,
            "ts": "1699999999990.000",
            "dur": 12.0,
            "cat": "cpu_op",
            "args": {},
        },
        {
            "ph": "X",
            "name": "MatMulV2",
            "pid": 1,
            "tid": 2,
            "ts": "1700000000000.000",
            "dur": 50.0,
            "cat": "kernel",
            "args": {},
        },
    ]


def _write_csv(path: str, header: list[str], rows: list[list[str]]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def write_tensorboard_output(
    prof_path: str,
    activities: Iterable[ProfilerActivity],
    profiler_level: str,
    export_type: list[str],
) -> str:
    """Write <prof_path>/ASCEND_PROFILER_OUTPUT like the real text parser; return that dir."""
    output = os.path.join(prof_path, Constant.OUTPUT_DIR)
    shutil.rmtree(output, ignore_errors=True)
    os.makedirs(output, mode=0o750)
    npu = ProfilerActivity.NPU in set(activities)
    if Constant.Text in export_type:
        with open(os.path.join(output, Constant.TRACE_VIEW), "w") as f:
            json.dump(fake_trace_events(), f, ensure_ascii=False)
        if npu and profiler_level != Constant.LEVEL_NONE:
            _write_csv(
                os.path.join(output, KERNEL_DETAILS_FILE), KERNEL_DETAILS_HEADERS, FAKE_KERNEL_ROWS
            )
        if npu and profiler_level in (Constant.LEVEL1, Constant.LEVEL2):
            _write_csv(
                os.path.join(output, OP_STATISTIC_FILE),
                OP_STATISTIC_HEADERS,
                FAKE_OP_STATISTIC_ROWS,
            )
    open(os.path.join(output, ANALYSE_DONE_FILE), "w").close()
    return output


def write_chrome_trace(output_path: str) -> None:
    """export_chrome_trace: plain JSON array at output_path, whatever the suffix."""
    dir_name = os.path.dirname(output_path)
    if dir_name:
        os.makedirs(dir_name, exist_ok=True)
    with open(output_path, "w") as f:
        f.write(json.dumps(fake_trace_events(), ensure_ascii=False))
