# ruff: noqa: UP045, UP007
"""`profile`, `_KinetoProfile`, `tensorboard_trace_handler` and `analyse`.

Mirrors torch_npu 2.14.0 (wheel torch_npu-2.14.0-cp311-cp311-manylinux_2_28_x86_64.whl),
torch_npu/profiler/profiler.py: same signatures (annotations copied verbatim, hence the
same ruff noqa line as the real file), same control flow, same warnings. As in the real
code, every public method except `profile.__init__` is wrapped in `no_exception_func`:
errors are printed as "[ERROR] ... Call <name> failed. Exception: ..." and the call returns
None; nothing raises to the caller.

Behaviour worth knowing (all copied from the real code):

- `tensorboard_trace_handler(dir_name)` sets the output directory process-wide when it is
  called, and returns `handler_fn(prof)`, which runs the analysis of `prof`'s raw data into
  `<raw dir>/ASCEND_PROFILER_OUTPUT/` (if `analyse_flag`). If `dir_name` is an existing
  file, the error is swallowed and the handler is None.
- `profile.stop()` calls `on_trace_ready(prof)` when the schedule's current action is
  RECORD or RECORD_AND_SAVE (the default schedule always RECORDs). stop() does not check
  `self.stopped`: a second stop() runs the handler again. `__del__` calls stop() if the
  profile was never stopped, even if it was never started.
- `export_chrome_trace(path)` needs the profiler to have been started (else a warning
  "Invalid profiling path."), refuses a directory (swallowed error), and otherwise writes
  a plain-text JSON array to `path`: a `.gz` name is neither refused nor gzipped.
- `profile.start()` without `on_trace_ready` writes raw data under
  `./export_only_prof_dir/` (or `$ASCEND_WORK_PATH/profiling_data/`); `profile` never
  deletes it (only `_KinetoProfile.__del__` does).

Test-only addition: `CALLS`, the list of (name, arguments as passed) for profile(),
start, stop, step, export_*, tensorboard_trace_handler, the handler's runs ("on_trace_ready")
and _ExperimentalConfig(). No device, no torch: nothing is actually profiled.
"""

from __future__ import annotations

import json
import os.path
from collections.abc import Callable, Iterable
from sys import getsizeof
from typing import TYPE_CHECKING, Any, Optional, Union

from .._C._profiler import ProfilerActivity
from . import _fake_analysis
from ._common import (
    CALLS,
    Constant,
    no_exception_func,
    print_warn_msg,
    record_call,
)
from ._profiler_action_controller import ProfActionController
from ._profiler_path_creator import ProfPathCreator, _get_realpath
from .experimental_config import _ExperimentalConfig
from .profiler_interface import _ProfInterface, supported_activities
from .scheduler import ProfilerAction, _default_schedule_fn

if TYPE_CHECKING:
    from torch.profiler.profiler import _ITraceObserver

__all__ = ["supported_activities", "analyse", "tensorboard_trace_handler", "profile", "CALLS"]


def _check_input_file_path(path: str) -> None:
    # torch_npu/utils/_path_manager.py: PathManager.check_input_file_path (the real
    # message has no f-prefix, so "{path}" is printed literally).
    if os.path.isdir(path):
        raise RuntimeError("Invalid input path is a directory path: {path}")


class _KinetoProfile:
    def __init__(
        self,
        *,
        activities: Optional[Iterable[ProfilerActivity]] = None,
        record_shapes: bool = False,
        profile_memory: bool = False,
        with_stack: bool = False,
        with_flops: bool = False,
        with_modules: bool = False,
        experimental_config: Optional[_ExperimentalConfig] = None,
        custom_trace_id_callback: Optional[Callable[[], str]] = None,
    ):
        self.metadata = {}
        self.prof_if = _ProfInterface(
            activities=activities,
            record_shapes=record_shapes,
            profile_memory=profile_memory,
            with_stack=with_stack,
            with_flops=with_flops,
            with_modules=with_modules,
            experimental_config=experimental_config,
            metadata=self.metadata,
            custom_trace_id_callback=custom_trace_id_callback,
        )
        self.max_meta_size = 50 * 1024
        self.max_str_len = 4096

    @no_exception_func()
    def __del__(self):
        ProfPathCreator().delete_export_only_prof()

    @no_exception_func()
    @record_call("start")
    def start(self):
        ProfPathCreator().init(export_only_mode=True)
        self.prof_if.init_trace()
        self.prof_if.start_trace()

    @no_exception_func()
    @record_call("stop")
    def stop(self):
        self.prof_if.stop_trace()
        self.prof_if.finalize_trace()

    @no_exception_func()
    @record_call("export_chrome_trace")
    def export_chrome_trace(self, output_path: str):
        output_path = _get_realpath(output_path)
        _check_input_file_path(output_path)
        if not self.prof_if.prof_path:
            print_warn_msg("Invalid profiling path.")
            return
        self.prof_if.analyse(Constant.EXPORT_CHROME_TRACE, output_path)

    @no_exception_func()
    @record_call("add_metadata")
    def add_metadata(self, key: str, value: str):
        if not isinstance(key, str) or not isinstance(value, str):
            print_warn_msg("The key and value of metadata must be string. Skip this metadata.")
            return
        if not self._check_str_valid(key) or not self._check_str_valid(value):
            print_warn_msg("Invalid input key or value. Skip this metadata.")
            return
        add_size = getsizeof(key) + getsizeof(value)
        if getsizeof(self.metadata) + add_size < self.max_meta_size:
            if key in self.metadata:
                print_warn_msg(f"{key} is already saved as metadata, override it.")
            self.metadata[key] = value
        else:
            print_warn_msg("Too many metadata added. Skip this metadata")

    @no_exception_func()
    @record_call("add_metadata_json")
    def add_metadata_json(self, key: str, value: str):
        if not isinstance(key, str) or not isinstance(value, str):
            print_warn_msg("The key and value of metadata must be string. Skip this metadata.")
            return
        if not self._check_str_valid(key) or not self._check_str_valid(value):
            print_warn_msg("Invalid input key or value. Skip this metadata.")
            return
        add_size = getsizeof(key) + getsizeof(value)
        if getsizeof(self.metadata) + add_size < self.max_meta_size:
            try:
                if key in self.metadata:
                    print_warn_msg(f"{key} is already saved as metadata, override it.")
                self.metadata[key] = json.loads(value)
            except ValueError:
                print_warn_msg("The metadata value must be json format string. Skip this metadata")
        else:
            print_warn_msg("Too many metadata added. Skip this metadata")

    @no_exception_func()
    @record_call("export_stacks")
    def export_stacks(self, output_path: str, metric: str = Constant.METRIC_CPU_TIME):
        output_path = _get_realpath(output_path)
        _check_input_file_path(output_path)
        if not self.prof_if.with_stack:
            print_warn_msg("Function export_stacks() requires with_stack=True.")
            return
        if metric not in self._support_export_stacks_metrics():
            print_warn_msg(
                "Metric should be self_cpu_time_total or self_npu_time_total."
                "Here it is presumed to be self_cpu_time_total."
            )
            metric = Constant.METRIC_CPU_TIME
        if not self.prof_if.prof_path:
            print_warn_msg("Invalid profiling path.")
            return
        self.prof_if.analyse(Constant.EXPORT_STACK, output_path, metric=metric)

    @no_exception_func()
    @record_call("export_memory_timeline")
    def export_memory_timeline(self, output_path: str, device: Optional[str] = None) -> None:
        if device is None:
            device = "cpu"  # real: "npu:0" if torch_npu.npu.is_available() else "cpu"
        missing = []
        if not self.prof_if.record_shapes:
            missing.append("record_shapes=True")
        if not self.prof_if.profile_memory:
            missing.append("profile_memory=True")
        if not (self.prof_if.with_stack or self.prof_if.with_modules):
            missing.append("with_stack=True or with_modules=True")
        if missing:
            print_warn_msg(f"{', '.join(missing)} required for memory profiling.")
            return
        if not self.prof_if.prof_path:
            print_warn_msg("Invalid profiling path.")
            return
        self.prof_if.analyse(Constant.EXPORT_MEMORY_TIMELINE, output_path, device=device)

    def _check_str_valid(self, input_str: str):
        if len(input_str) > self.max_str_len:
            return False
        return True

    def _support_export_stacks_metrics(self):
        return [Constant.METRIC_CPU_TIME, Constant.METRIC_NPU_TIME]


@no_exception_func()
@record_call("tensorboard_trace_handler")
def tensorboard_trace_handler(
    dir_name: Optional[str] = None,
    worker_name: Optional[str] = None,
    analyse_flag: bool = True,
    async_mode: bool = False,
):
    ProfPathCreator().init(worker_name=worker_name, dir_name=dir_name)
    if not isinstance(analyse_flag, bool):
        print_warn_msg("analyse_flag is not bool, set by default.")
        analyse_flag = True
    if not isinstance(async_mode, bool):
        print_warn_msg("async_mode is not bool, set by default.")
        async_mode = False

    def handler_fn(prof_inst) -> None:
        CALLS.append(("on_trace_ready", {"prof_path": prof_inst.prof_if.prof_path}))
        if analyse_flag:
            prof_inst.prof_if.analyse(async_mode=async_mode)

    return handler_fn


class profile(_KinetoProfile):
    @record_call("profile")
    def __init__(
        self,
        *,
        activities: Optional[Iterable[ProfilerActivity]] = None,
        schedule: Optional[Callable[[int], ProfilerAction]] = None,
        on_trace_ready: Optional[Callable[..., Any]] = None,
        record_shapes: bool = False,
        profile_memory: bool = False,
        with_stack: bool = False,
        with_flops: bool = False,
        with_modules: bool = False,
        experimental_config: Optional[_ExperimentalConfig] = None,
        execution_trace_observer: _ITraceObserver | None = None,
        custom_trace_id_callback: Optional[Callable[[], str]] = None,
        # deprecated:
        use_cuda: Optional[bool] = None,
    ):
        super().__init__(
            activities=activities,
            record_shapes=record_shapes,
            profile_memory=profile_memory,
            with_stack=with_stack,
            with_flops=with_flops,
            with_modules=with_modules,
            experimental_config=experimental_config,
        )
        activities_set = set(activities) if activities else supported_activities()
        if schedule and callable(schedule):
            self.schedule = schedule
            self.record_steps = True
        else:
            if schedule:
                print_warn_msg("schedule is not Callable, set by default.")
            self.schedule = _default_schedule_fn
            self.record_steps = False
        if on_trace_ready and not callable(on_trace_ready):
            print_warn_msg("on_trace_ready is not Callable, set by default.")
            on_trace_ready = None
        self.prof_if = _ProfInterface(
            activities=activities_set,
            record_shapes=record_shapes,
            profile_memory=profile_memory,
            with_stack=with_stack,
            with_flops=with_flops,
            with_modules=with_modules,
            experimental_config=experimental_config,
            schedule=self.schedule,
            metadata=self.metadata,
            custom_trace_id_callback=custom_trace_id_callback,
        )
        self.execution_trace_observer = execution_trace_observer
        self.on_trace_ready = on_trace_ready
        self.step_num = 0
        self.current_action = self.schedule(self.step_num)
        self._step_num_offset = 0
        self.step_names: list[str] = []  # real: record_function("ProfilerStep#N") ranges
        if use_cuda is not None:
            print_warn_msg("This is npu environment, use_cuda is invalid")
        self.stopped = False
        self.action_controller = ProfActionController(self, self.prof_if, self.on_trace_ready)

    @no_exception_func()
    def __enter__(self):
        self.start()
        return self

    @no_exception_func()
    def __exit__(self, exe_type, exe_val, exc_tb):
        self.stop()

    @no_exception_func()
    def __del__(self):
        if not self.stopped:
            CALLS.append(("__del__", {}))
            self.stop()

    @no_exception_func()
    @record_call("start")
    def start(self):
        self.stopped = False
        if not self.on_trace_ready:
            ProfPathCreator().init(export_only_mode=True)
        self.action_controller.transit_action(ProfilerAction.NONE, self.current_action)
        if self.record_steps:
            self.step_names.append("ProfilerStep#" + str(self.step_num + self._step_num_offset))
        if self.execution_trace_observer:
            self.execution_trace_observer.start()

    @no_exception_func()
    @record_call("stop")
    def stop(self):
        self.action_controller.transit_action(self.current_action, None)
        self.stopped = True
        if self.execution_trace_observer:
            self.execution_trace_observer.stop()

    @no_exception_func()
    @record_call("step")
    def step(self):
        if self.stopped:
            print_warn_msg("Profiler is stopped, step takes no effect!")
            return
        prev_action = self.current_action
        self.step_num += 1
        self.current_action = self.schedule(self.step_num)
        self.action_controller.transit_action(prev_action, self.current_action)
        if self.record_steps:
            self.step_names.append("ProfilerStep#" + str(self.step_num + self._step_num_offset))

    @no_exception_func()
    def set_custom_trace_id_callback(self, callback: Callable[[], str]) -> None:
        self.prof_if.custom_trace_id_callback = callback

    @no_exception_func()
    def get_trace_id(self) -> str:
        return self.prof_if.trace_id

    @classmethod
    @no_exception_func()
    @record_call("enable_profiler_in_child_thread")
    def enable_profiler_in_child_thread(
        cls,
        record_shapes: bool = False,
        profile_memory: bool = False,
        with_stack: bool = False,
        with_flops: bool = False,
        with_modules: bool = False,
    ):
        params = {
            "record_shapes": record_shapes,
            "profile_memory": profile_memory,
            "with_stack": with_stack,
            "with_flops": with_flops,
            "with_modules": with_modules,
        }
        for param_name, param_value in params.items():
            if not isinstance(param_value, bool):
                print_warn_msg(
                    f"{param_name} in enable_profiler_in_child_thread is not bool, "
                    "reset it to False."
                )

    @classmethod
    @no_exception_func()
    @record_call("disable_profiler_in_child_thread")
    def disable_profiler_in_child_thread(cls):
        return None


def _ascend_pt_dirs(path: str) -> list[str]:
    if path.endswith("_ascend_pt"):
        return [path]
    return sorted(
        os.path.join(path, d)
        for d in os.listdir(path)
        if d.endswith("_ascend_pt") and os.path.isdir(os.path.join(path, d))
    )


@no_exception_func()
@record_call("analyse")
def analyse(
    profiler_path: str,
    max_process_number: int = Constant.DEFAULT_PROCESS_NUMBER,
    export_type: Optional[Union[str, list]] = None,
):
    if not isinstance(max_process_number, int) or max_process_number <= 0:
        print_warn_msg("Invalid max_process_number, reset it to default!")
    if export_type is not None:
        if isinstance(export_type, str):
            export_type = [export_type]
        elif isinstance(export_type, list):
            export_type = list(set(export_type))
        else:
            print_warn_msg(f"Invalid parameter export_type: {export_type}, reset it to None.")
            export_type = None
        if export_type is not None and (
            not export_type
            or not all(_type in [Constant.Text, Constant.Db] for _type in export_type)
        ):
            print_warn_msg(f"Invalid parameter export_type: {export_type}, reset it to None.")
            export_type = None
    for prof_path in _ascend_pt_dirs(_get_realpath(profiler_path)):
        level, activities, types = Constant.LEVEL0, supported_activities(), [Constant.Text]
        info_path = os.path.join(prof_path, "profiler_info.json")
        if os.path.isfile(info_path):
            with open(info_path) as f:
                config = json.load(f).get(Constant.CONFIG, {})
            exp = config.get(Constant.EXPERIMENTAL_CONFIG) or {}
            level = exp.get("_profiler_level", level)
            types = exp.get("_export_type", types)
            names = config.get(Constant.COMMON_CONFIG, {}).get("activities", [])
            activities = {a for a in ProfilerActivity if str(a) in names} or activities
        _fake_analysis.write_tensorboard_output(prof_path, activities, level, export_type or types)
