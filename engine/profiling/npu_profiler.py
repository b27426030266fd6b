"""torch_npu's profiler on Ascend NPUs: a directory written by tensorboard_trace_handler,
readable by MindStudio Insight, with op_statistic.csv for the top ops.

The NPU-only `experimental_config` is built here and nowhere else.
"""

from __future__ import annotations

import csv
import shutil
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from infertop.engine.errors import UserError
from infertop.engine.profiling.base import Counters, SavedTrace, SaveProgress, TopOps
from infertop.engine.profiling.naming import publish, temp_path_for, unique_path
from infertop.engine.profiling.request import CaptureRequest
from infertop.engine.profiling.steps import step_ranges


def profiler_kwargs(request: CaptureRequest, output_dir: Path) -> dict[str, Any]:
    """torch_npu.profiler.profile's arguments. Level1 so operator shapes and op_statistic.csv
    are recorded (Level0, the default, writes no op_statistic.csv)."""
    import torch_npu

    p = torch_npu.profiler
    experimental = p._ExperimentalConfig(
        export_type=p.ExportType.Text,
        profiler_level=p.ProfilerLevel.Level1,
        aic_metrics=p.AiCMetrics.AiCoreNone,
        l2_cache=False,
        op_attr=False,
        data_simplification=False,
        record_op_args=False,
        gc_detect_threshold=None,
    )
    activities = []
    if "cpu" in request.activities:
        activities.append(p.ProfilerActivity.CPU)
    if "device" in request.activities:
        activities.append(p.ProfilerActivity.NPU)
    return {
        "activities": activities,
        "on_trace_ready": p.tensorboard_trace_handler(str(output_dir)),
        "record_shapes": request.record_shapes,
        "profile_memory": request.profile_memory,
        "with_stack": request.with_stack,
        "experimental_config": experimental,
    }


OUTPUT_DIR = "ASCEND_PROFILER_OUTPUT"
PARSER_DONE = "analyse.done"


class NpuCapture:
    kind = "npu"
    base_ns: int | None = None  # its trace is written by torch_npu's parser, with its own clock

    def __init__(self, request: CaptureRequest) -> None:
        self.request = request
        self.prof: Any = None
        self.final: Path | None = None
        self.tmp: Path | None = None

    def start(self, directory: Path, stem: str) -> None:
        import torch_npu

        self.final = unique_path(directory, stem, "ascend_pt")
        self.tmp = temp_path_for(self.final)
        self.tmp.mkdir()
        # tensorboard_trace_handler fixes the output folder for the process when called
        self.prof = torch_npu.profiler.profile(**profiler_kwargs(self.request, self.tmp))
        self.prof.start()

    def annotate(self, stage: str, index: int) -> AbstractContextManager[object]:
        return step_ranges(stage, index)

    def stop_and_save(
        self, progress: SaveProgress, steps: int, counters: Counters
    ) -> list[SavedTrace]:
        assert self.final is not None and self.tmp is not None
        progress("stopping the NPU profiler and parsing its data (can take a while)")
        self.prof.stop()  # runs on_trace_ready: the handler writes and parses into tmp
        # torch_npu's @no_exception_func swallows errors in stop() and in its parser, so
        # the call says nothing: the parser's last act is ASCEND_PROFILER_OUTPUT/analyse.done
        # (analysis/_profiling_parser.py, generate_parser_done_file)
        if not any(self.tmp.glob(f"*/{OUTPUT_DIR}/{PARSER_DONE}")):
            raise UserError(
                f"torch_npu's parser did not finish (no {OUTPUT_DIR}/{PARSER_DONE}), so the NPU "
                "trace is not saved; torch_npu printed why (in infertop.log under the screen)"
            )
        publish(self.tmp, self.final)
        return [SavedTrace(self.final, "npu", read_op_statistic(self.final))]

    def abandon(self) -> None:
        if self.tmp and self.tmp.exists():
            shutil.rmtree(self.tmp, ignore_errors=True)


def read_op_statistic(root: Path, n: int = 15) -> TopOps:
    """Top ops by total time from ASCEND_PROFILER_OUTPUT/op_statistic.csv, if it was written."""
    files = sorted(root.glob("**/ASCEND_PROFILER_OUTPUT/op_statistic.csv"))
    if not files:
        return ()
    rows = []
    with files[0].open(newline="") as f:
        for row in csv.DictReader(f):
            try:
                rows.append((row["OP Type"], float(row["Total Time(us)"]), int(row["Count"])))
            except (KeyError, ValueError):
                continue
    rows.sort(key=lambda r: r[1], reverse=True)
    return tuple(rows[:n])
