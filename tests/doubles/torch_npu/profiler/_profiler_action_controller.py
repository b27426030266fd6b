"""Schedule state machine: which trace actions run on each ProfilerAction transition.

Mirrors torch_npu 2.14.0 (wheel torch_npu-2.14.0-cp311-cp311-manylinux_2_28_x86_64.whl),
torch_npu/profiler/_profiler_action_controller.py: the same action map, entry for entry.
`on_trace_ready(prof)` runs after finalize on RECORD_AND_SAVE -> anything, and on stop
(`-> None`) from RECORD or RECORD_AND_SAVE; stopping in WARMUP deletes the raw directory
and does not call it; stopping in NONE does nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from ._common import print_warn_msg
from .profiler_interface import _ProfInterface
from .scheduler import ProfilerAction

__all__: list[str] = []


class ProfActionController:
    def __init__(
        self,
        prof: Any,
        prof_inst: _ProfInterface,
        on_trace_ready: Callable[..., Any] | None = None,
    ) -> None:
        self.prof = prof
        self.prof_inst = prof_inst
        self.action_map = self._init_action_map()
        self.on_trace_ready = on_trace_ready

    def transit_action(
        self, prev_action: ProfilerAction | None, current_action: ProfilerAction | None
    ) -> None:
        action_list = self.action_map.get((prev_action, current_action))
        if action_list:
            for action in action_list:
                action()

    def _trace_ready(self) -> None:
        if self.on_trace_ready:
            self.on_trace_ready(self.prof)

    def _init_action_map(
        self,
    ) -> dict[tuple[ProfilerAction, ProfilerAction | None], list[Callable[[], Any]]]:
        p = self.prof_inst
        a = ProfilerAction
        return {
            (a.NONE, a.NONE): [],
            (a.NONE, a.WARMUP): [p.init_trace, p.warmup_trace],
            (a.NONE, a.RECORD): [p.init_trace, p.start_trace],
            (a.NONE, a.RECORD_AND_SAVE): [p.init_trace, p.start_trace],
            (a.WARMUP, a.NONE): [
                partial(print_warn_msg, "Incorrect schedule: WARMUP followed by NONE"),
                p.start_trace,
                p.stop_trace,
                p.finalize_trace,
            ],
            (a.WARMUP, a.WARMUP): [],
            (a.WARMUP, a.RECORD): [p.start_trace],
            (a.WARMUP, a.RECORD_AND_SAVE): [p.start_trace],
            (a.RECORD, a.NONE): [
                partial(print_warn_msg, "Incorrect schedule: RECORD followed by NONE"),
                p.stop_trace,
                p.finalize_trace,
            ],
            (a.RECORD, a.WARMUP): [
                partial(print_warn_msg, "Incorrect schedule: RECORD followed by WARMUP"),
                p.stop_trace,
                p.finalize_trace,
            ],
            (a.RECORD, a.RECORD): [],
            (a.RECORD, a.RECORD_AND_SAVE): [],
            (a.RECORD_AND_SAVE, a.NONE): [p.stop_trace, p.finalize_trace, self._trace_ready],
            (a.RECORD_AND_SAVE, a.WARMUP): [
                p.stop_trace,
                p.finalize_trace,
                self._trace_ready,
                p.init_trace,
                p.warmup_trace,
            ],
            (a.RECORD_AND_SAVE, a.RECORD): [
                p.stop_trace,
                p.finalize_trace,
                self._trace_ready,
                p.init_trace,
                p.start_trace,
            ],
            (a.RECORD_AND_SAVE, a.RECORD_AND_SAVE): [
                p.stop_trace,
                p.finalize_trace,
                self._trace_ready,
                p.init_trace,
                p.start_trace,
            ],
            (a.WARMUP, None): [
                partial(
                    print_warn_msg,
                    "Incorrect schedule: Stop profiler while current state is WARMUP "
                    "which will result in empty parsed data.",
                ),
                p.finalize_trace,
                p.delete_prof_dir,
            ],
            (a.RECORD, None): [
                partial(
                    print_warn_msg,
                    "Incorrect schedule: Stop profiler while current state is RECORD "
                    "which may result in incomplete parsed data.",
                ),
                p.stop_trace,
                p.finalize_trace,
                self._trace_ready,
            ],
            (a.RECORD_AND_SAVE, None): [
                partial(
                    print_warn_msg,
                    "Stop profiler while current state is RECORD_AND_SAVE, "
                    "perhaps the scheduling cycle has not yet completed.",
                ),
                p.stop_trace,
                p.finalize_trace,
                self._trace_ready,
            ],
        }
