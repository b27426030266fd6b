# ruff: noqa: UP045
"""`supported_activities` and `_ProfInterface`, the layer `profile` drives.

Mirrors torch_npu 2.14.0 (wheel torch_npu-2.14.0-cp311-cp311-manylinux_2_28_x86_64.whl),
torch_npu/profiler/profiler_interface.py: same constructor, same parameter checks and
warnings, same trace life cycle (init_trace creates the `*_ascend_pt` directory,
finalize_trace writes profiler_info.json, analyse() swallows every error as a warning).
Nothing is recorded: start/stop talk to no device. analyse() writes the fake layout of
`_fake_analysis.py`; export_stacks / export_memory_timeline analyses write nothing.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterable
from typing import Optional

from .._C._profiler import ProfilerActivity, _supported_npu_activities
from . import _fake_analysis
from ._common import Constant, print_warn_msg
from ._profiler_path_creator import ProfPathCreator, _get_realpath
from .experimental_config import ExportType, _default_config_unrecorded, _ExperimentalConfig
from .scheduler import ProfilerAction

__all__ = ["supported_activities"]

MSPROF_STATIC_ENV = "PROFILER_SAMPLECONFIG"
MSPROF_DYNAMIC_ENV = "PROFILING_MODE"


def _check_msprof_env() -> bool:
    # analysis/prof_common_func/_utils.py: check_msprof_env (uncached here).
    static_env = os.getenv(MSPROF_STATIC_ENV)
    dynamic_env = os.getenv(MSPROF_DYNAMIC_ENV)
    if static_env:
        print_warn_msg(
            "If performance data is collected using the 'msprof' tool. "
            "torch_npu profiler api is not effective."
        )
    if dynamic_env:
        print_warn_msg(
            f"Environment variable '{MSPROF_DYNAMIC_ENV}' is set. "
            f"torch_npu profiler api is not effective. "
            f"Please execute 'unset {MSPROF_DYNAMIC_ENV}'."
        )
    return not (static_env or dynamic_env)


class _ProfInterface:
    def __init__(
        self,
        activities: Optional[Iterable[ProfilerActivity]] = None,
        record_shapes: bool = False,
        profile_memory: bool = False,
        with_stack: bool = False,
        with_flops: bool = False,
        with_modules: bool = False,
        schedule: Optional[Callable[[int], ProfilerAction]] = None,
        metadata: Optional[dict] = None,
        experimental_config: Optional[_ExperimentalConfig] = None,
        custom_trace_id_callback: Optional[Callable[[], str]] = None,
    ) -> None:
        self._is_env_valid = _check_msprof_env()
        self.prof_path = ""
        self.activities = set(activities) if activities else supported_activities()
        self.record_shapes = record_shapes
        self.profile_memory = profile_memory
        self.with_stack = with_stack
        self.with_flops = with_flops
        self.with_modules = with_modules
        if experimental_config is None:
            experimental_config = _default_config_unrecorded()
        self.experimental_config = experimental_config
        self.schedule = schedule
        self.metadata = metadata
        self.custom_trace_id_callback = custom_trace_id_callback
        self.trace_id = ""
        self.recording = False
        self._check_params()

    def init_trace(self) -> None:
        if not self._is_env_valid:
            return
        ProfPathCreator().create_prof_dir()
        self.prof_path = ProfPathCreator().get_prof_dir() or ""
        self.trace_id = self.create_trace_id()

    def warmup_trace(self) -> None:
        if not self._is_env_valid:
            return

    def start_trace(self) -> None:
        if not self._is_env_valid:
            return
        self.recording = True

    def stop_trace(self) -> None:
        if not self._is_env_valid:
            return
        self.recording = False

    def finalize_trace(self) -> None:
        if not self._is_env_valid:
            return
        self._dump_profiler_info()
        self._dump_metadata()
        ProfPathCreator().is_prof_inited = False

    def delete_prof_dir(self) -> None:
        if not self._is_env_valid:
            return
        ProfPathCreator().delete_prof_dir()

    def analyse(
        self,
        analysis_type: str = Constant.TENSORBOARD_TRACE_HANDLER,
        output_path: Optional[str] = None,
        **kwargs,
    ):
        if not self._is_env_valid:
            return
        try:
            self._fake_analyse(analysis_type, output_path)
        except Exception as e:
            print_warn_msg(f"Profiling data parsing failed, error: {e}")

    def _fake_analyse(self, analysis_type: str, output_path: Optional[str]) -> None:
        prof_path = _get_realpath(self.prof_path)
        if not os.path.exists(prof_path):
            raise RuntimeError(f"The path does not exist: {prof_path}")
        export_type = list(self.experimental_config.export_type)
        if analysis_type == Constant.TENSORBOARD_TRACE_HANDLER:
            _fake_analysis.write_tensorboard_output(
                prof_path,
                self.activities,
                self.experimental_config._profiler_level,
                export_type,
            )
        elif analysis_type == Constant.EXPORT_CHROME_TRACE and output_path:
            if ExportType.Db in export_type:
                print_warn_msg(
                    "The setting of type in experimental_config as db will be ignored while set "
                    "export_chrome_trace or export_stacks"
                )
            _fake_analysis.write_chrome_trace(output_path)

    def default_trace_id(self) -> str:
        return f"{uuid.uuid4().int:032X}"

    def create_trace_id(self) -> str:
        if not self.custom_trace_id_callback:
            return self.default_trace_id()
        try:
            trace_id = self.custom_trace_id_callback()
            if isinstance(trace_id, str) and len(trace_id) <= 1024:
                return trace_id
            print_warn_msg(
                "Parameter custom_trace_id_callback should return str(max length: 1024), "
                "reset it to default."
            )
        except Exception as e:
            print_warn_msg(
                f"Parameter custom_trace_id_callback raised an exception: {e}, reset it to default."
            )
        return self.default_trace_id()

    def _check_params(self) -> None:
        for activity in self.activities:
            if activity in supported_activities():
                continue
            print_warn_msg(
                "Invalid activities, only CPU and NPU are supported, reset it to default."
            )
            self.activities = supported_activities()
            break
        for name in ("record_shapes", "profile_memory", "with_stack", "with_flops", "with_modules"):
            if not isinstance(getattr(self, name), bool):
                print_warn_msg(f"Parameter {name} is of boolean type, reset it to False.")
                setattr(self, name, False)
        if not isinstance(self.experimental_config, _ExperimentalConfig):
            print_warn_msg(
                "Parameter experimental_config is an instance of _ExperimentalConfig, "
                "reset it to default."
            )
            self.experimental_config = _default_config_unrecorded()
        if ProfilerActivity.NPU not in self.activities and self.experimental_config is not None:
            print_warn_msg(
                "Experimental config will not be used while ProfilerActivity.NPU is not set."
            )
        if ProfilerActivity.CPU not in self.activities and self.experimental_config.with_gc:
            print_warn_msg("GC detect will not take effect while ProfilerActivity.CPU is not set.")

    def _dump_profiler_info(self) -> None:
        def _trans_obj2cfg(obj: object) -> dict | None:
            if not obj:
                return None
            return dict(getattr(obj, "__dict__", {}))

        common_config = {
            "activities": sorted(map(str, self.activities)),
            "schedule": _trans_obj2cfg(self.schedule),
            "record_shapes": self.record_shapes,
            "profile_memory": self.profile_memory,
            "with_stack": self.with_stack,
            "with_flops": self.with_flops,
            "with_modules": self.with_modules,
        }
        total_info = {
            Constant.CONFIG: {
                Constant.COMMON_CONFIG: common_config,
                Constant.EXPERIMENTAL_CONFIG: _trans_obj2cfg(self.experimental_config),
            },
            Constant.TORCH_NPU_VERSION: "2.14.0",
        }
        rank_id = os.environ.get("RANK")
        name = "profiler_info.json" if rank_id is None else f"profiler_info_{rank_id}.json"
        if rank_id is not None:
            total_info["rank_id"] = rank_id
        if not self.prof_path or not os.path.isdir(self.prof_path):
            return
        with open(os.path.join(os.path.realpath(self.prof_path), name), "w") as f:
            json.dump(total_info, f, indent=4, default=str)

    def _dump_metadata(self) -> None:
        if not self.metadata or not self.prof_path or not os.path.isdir(self.prof_path):
            return
        with open(os.path.join(self.prof_path, Constant.PROFILER_META_DATA), "w") as f:
            json.dump(self.metadata, f, default=str)
        self.metadata.clear()


def supported_activities():
    return _supported_npu_activities()
