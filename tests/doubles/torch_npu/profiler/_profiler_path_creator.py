"""Where raw profiling data goes: the process-wide `ProfPathCreator` singleton.

Mirrors torch_npu 2.14.0 (wheel torch_npu-2.14.0-cp311-cp311-manylinux_2_28_x86_64.whl),
torch_npu/profiler/_profiler_path_creator.py. As in the real code:

- `tensorboard_trace_handler(dir_name, worker_name)` configures this singleton when the
  handler is *created*, for the whole process (the last call wins);
  `profile.start()` without `on_trace_ready` re-inits it in export-only mode, which resets
  dir and worker name to None.
- The `*_ascend_pt` directory is created when recording starts (`init_trace`), not when the
  handler runs. Its name is `{worker_name or hostname}_{pid}_{YYYYmmddHHMMSSfff}_ascend_pt`
  inside dir_name; with no dir_name it goes to `$ASCEND_WORK_PATH/profiling_data`, else to
  `./export_only_prof_dir` in export-only mode, else to the current directory.
"""

from __future__ import annotations

import os
import shutil
import socket
from datetime import datetime, timezone

from ._common import Constant, print_warn_msg


def _check_input_directory_path(path: str) -> None:
    # torch_npu/utils/_path_manager.py: PathManager.check_input_directory_path
    if os.path.isfile(path):
        raise RuntimeError("Invalid input path is a file path: {path}")


def _get_realpath(path: str) -> str:
    # torch_npu/profiler/analysis/prof_common_func/_path_manager.py: get_realpath
    if not path:
        raise RuntimeError("Input path is empty, please check. ErrorType: ")
    return os.path.realpath(os.path.expanduser(path))


class ProfPathCreator:
    _instance: ProfPathCreator | None = None

    def __new__(cls) -> ProfPathCreator:
        if cls._instance is None:
            instance = super().__new__(cls)
            instance._reset()
            cls._instance = instance
        return cls._instance

    def _reset(self) -> None:
        self._prof_path: str | None = None
        self._worker_name: str | None = None
        self._dir_path: str | None = None
        self._export_only_mode = False
        self._export_only_prof_dir = "export_only_prof_dir"
        self.is_prof_inited = False

    def init(
        self,
        worker_name: str | None = None,
        dir_name: str | None = None,
        export_only_mode: bool = False,
    ) -> None:
        self._export_only_mode = export_only_mode
        valid_wk_name = worker_name and isinstance(worker_name, str)
        valid_wk_len = (
            isinstance(worker_name, str) and len(worker_name) < Constant.MAX_WORKER_NAME_LENGTH
        )
        if (valid_wk_name and valid_wk_len) or worker_name is None:
            self._worker_name = worker_name
        else:
            print_warn_msg("Invalid parameter worker_name, reset it to default.")
            self._worker_name = None

        if dir_name and isinstance(dir_name, str):
            dir_path = _get_realpath(dir_name)
            _check_input_directory_path(dir_path)
            self._dir_path = dir_path
        elif dir_name is None:
            self._dir_path = None
        else:
            print_warn_msg("Invalid parameter dir_name, reset it to default.")
            self._dir_path = None

    def delete_export_only_prof(self) -> None:
        if not self._export_only_mode:
            return
        self.delete_prof_dir()

    def create_prof_dir(self) -> None:
        if not self._dir_path:
            dir_path = os.getenv(Constant.ASCEND_WORK_PATH, default=None)
            self._export_only_mode = self._export_only_mode and (dir_path is None)
            if dir_path:
                dir_path = os.path.join(os.path.abspath(dir_path), Constant.PROFILING_WORK_PATH)
            elif self._export_only_mode:
                dir_path = os.path.join(os.getcwd(), self._export_only_prof_dir)
            else:
                dir_path = os.getcwd()
        else:
            dir_path = self._dir_path
        worker_name = f"{self._worker_name or socket.gethostname()}_{os.getpid()}"
        current_time = datetime.now(tz=timezone.utc).astimezone()
        span_name = f"{worker_name}_{current_time.strftime('%Y%m%d%H%M%S%f')[:-3]}_ascend_pt"
        self._prof_path = os.path.join(dir_path, span_name)
        _check_input_directory_path(self._prof_path)
        os.makedirs(self._prof_path, mode=0o750, exist_ok=True)
        self.is_prof_inited = True

    def get_prof_dir(self) -> str | None:
        return self._prof_path

    def delete_prof_dir(self) -> None:
        try:
            shutil.rmtree(self._prof_path or "")
        except Exception:
            print_warn_msg("Remove temporary profiling data saving path failed.")
