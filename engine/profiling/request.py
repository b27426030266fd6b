"""What the user asked to capture: name, stage, step window, activities."""

from __future__ import annotations

from dataclasses import dataclass

from infertop.engine.errors import UserError

STAGES = ("all", "prefill", "decode")
ACTIVITIES = ("cpu", "device", "cuda_profiler", "timeline")


@dataclass(frozen=True)
class CaptureRequest:
    name: str = "infertop"
    stage: str = "all"  # all | prefill | decode: a stage capture holds only that stage
    start_step: int = 0  # steps (of the stage) to let pass before starting
    steps: int | None = None  # stop by itself after this many steps; None: until stopped
    activities: tuple[str, ...] = ("cpu", "device", "timeline")
    record_shapes: bool = True
    with_stack: bool = False
    profile_memory: bool = False

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise UserError(f"profile stage {self.stage!r} is unknown; use {', '.join(STAGES)}")
        if self.start_step < 0:
            raise UserError(f"profile start step {self.start_step} is invalid; use 0 or more")
        if self.steps is not None and not 1 <= self.steps <= 500:
            raise UserError(f"profile steps {self.steps} is invalid; use 1 to 500")
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
