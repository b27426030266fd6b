"""What the user asked to capture: name, stage, step window, activities."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Literal, get_args

from infertop.engine.errors import UserError
from infertop.engine.flags import flag

Stage = Literal["all", "prefill", "decode"]  # a stage capture holds only that stage
STAGES: tuple[Stage, ...] = get_args(Stage)
ACTIVITIES = ("cpu", "device", "cuda_profiler", "timeline")
MAX_STEPS = 500  # a capture's most steps (a save stays a few seconds)
# SGLang's CPU GPU, and the timeline: GPU here is whatever device profiler the run has
DEFAULT_ACTIVITIES = ("cpu", "device", "timeline")


# bench_one_batch's --profile-activities names (GPU: the device's own profiler)
SGLANG_ACTIVITIES = {"CPU": "cpu", "GPU": "device", "CUDA_PROFILER": "cuda_profiler"}


def activity_arg(text: str) -> str:
    """An activity by infertop's name or by SGLang's (CPU, GPU, CUDA_PROFILER)."""
    if text == "XPU":
        raise argparse.ArgumentTypeError(
            "XPU (Intel GPUs) has no profiler here; use CPU, GPU (CUDA, NPU or Metal) or timeline"
        )
    return SGLANG_ACTIVITIES.get(text, text)


def stage_named(text: str) -> Stage:
    for stage in STAGES:
        if stage == text:
            return stage
    raise UserError(f"profile stage {text!r} is unknown; use {', '.join(STAGES)}")


@dataclass(frozen=True)
class CaptureRequest:
    """A capture. Its flagged fields are also `infertop bench`'s --profile-* flags; which
    steps bench captures are engine/profiling/sweep_capture.py's."""

    stage: Stage = "all"
    start_step: int = 0  # steps of the stage to let pass first
    steps: int | None = None  # None: until stopped (capped: controller.open_ended_cap)
    activities: tuple[str, ...] = field(
        default=DEFAULT_ACTIVITIES,
        metadata=flag(
            "--profile-activities",
            "what to record; SGLang's CPU, GPU and CUDA_PROFILER are cpu, device, cuda_profiler",
            nargs="+",
            choices=ACTIVITIES,
            type=activity_arg,
        ),
    )
    record_shapes: bool = field(
        default=True,
        metadata=flag(
            "--profile-record-shapes",
            "record op input shapes (off unless given, as in bench_one_batch; the live "
            "screen's dialog has it on)",
            action=argparse.BooleanOptionalAction,
            default=False,
        ),
    )
    with_stack: bool = field(
        default=False,
        metadata=flag("--profile-with-stack", "record Python stacks", action="store_true"),
    )
    profile_memory: bool = field(
        default=False,
        metadata=flag("--profile-memory", "record tensor allocations", action="store_true"),
    )
    name: str = field(
        default="infertop",
        metadata=flag(
            "--profile-prefix",
            "trace name (default: --run-name)",
            aliases=("--profile-filename-prefix",),  # bench_one_batch's older name
            metavar="NAME",
            default=None,
        ),
    )  # last: --profile-prefix is the last flag

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise UserError(f"profile stage {self.stage!r} is unknown; use {', '.join(STAGES)}")
        if self.start_step < 0:
            raise UserError(f"profile start step {self.start_step} is invalid; use 0 or more")
        if self.steps is not None and not 1 <= self.steps <= MAX_STEPS:
            raise UserError(f"profile steps {self.steps} is invalid; use 1 to {MAX_STEPS}")
        bad = [a for a in self.activities if a not in ACTIVITIES]
        if bad:
            raise UserError(f"profile activity {bad[0]!r} is unknown; use {', '.join(ACTIVITIES)}")

    @property
    def timeline(self) -> bool:
        return "timeline" in self.activities

    @property
    def vendor(self) -> bool:
        """Whether the device's own profiler runs (anything besides the timeline)."""
        return any(a != "timeline" for a in self.activities)
