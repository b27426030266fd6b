"""What a captured step is in a torch (or torch_npu) trace: a `ProfilerStep#N` range, the name
TensorBoard's profiler plugin, HTA and MindStudio read as a step, around an
`infertop.<stage>#N` range that names its stage."""

from __future__ import annotations

import re
from contextlib import AbstractContextManager, ExitStack

from torch.profiler import record_function

STEP = re.compile(r"^ProfilerStep#(\d+)$")
OURS = "infertop."  # our stage ranges: `infertop.prefill#0`, `infertop.decode#1`, ...
STAGE_RANGE = re.compile(rf"^{re.escape(OURS)}\w+#(\d+)$")


def step_ranges(stage: str, index: int) -> AbstractContextManager[object]:
    stack = ExitStack()
    stack.enter_context(record_function(f"ProfilerStep#{index}"))
    stack.enter_context(record_function(f"{OURS}{stage}#{index}"))
    return stack


def step_index(name: str) -> int | None:
    """N of a `ProfilerStep#N` or `infertop.<stage>#N` range; None for anything else."""
    m = STEP.match(name) or STAGE_RANGE.match(name)
    return int(m.group(1)) if m else None


def is_step_range(name: str) -> bool:
    """A range of ours (a step or its stage), not an op of the model."""
    return name.startswith(OURS) or STEP.match(name) is not None
