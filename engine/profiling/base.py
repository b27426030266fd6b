"""What every device profiler implements, and what a saved trace is."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

SaveProgress = Callable[[str], None]  # a short line saying what is being written
TopOps = tuple[tuple[str, float, int], ...]  # (op, self time in microseconds, calls)
Counters = list[dict[str, Any]]  # Chrome-trace "C" events, `ts` in wall-clock nanoseconds


@dataclass(frozen=True)
class SavedTrace:
    path: Path
    kind: str  # torch | npu | metal | timeline | ops
    top_ops: TopOps = ()


class Capture(Protocol):
    """One capture of a device profiler, started and stopped in the engine thread."""

    kind: str
    base_ns: int | None  # the saved trace's clock (baseTimeNanoseconds), where it has one

    def start(self, directory: Path, stem: str) -> None: ...

    def annotate(self, stage: str, index: int) -> AbstractContextManager[object]:
        """The ranges around captured step `index` (engine/profiling/steps.py)."""
        ...

    def stop_and_save(
        self, progress: SaveProgress, steps: int, counters: Counters
    ) -> list[SavedTrace]:
        """Stop, write the trace under a temporary name, check it holds the `steps` captured,
        and publish it; return what was saved (all of it, or raise and publish nothing).
        `counters`: the step timeline's, for a trace that can hold them."""
        ...

    def abandon(self) -> None:
        """Stop without saving (after a failure); remove temporary files."""
        ...
