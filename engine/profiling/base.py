"""What every device profiler implements, and what a saved trace is."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

SaveProgress = Callable[[str], None]  # a short line saying what is being written
TopOps = tuple[tuple[str, float, int], ...]  # (op, self time in microseconds, calls)


@dataclass(frozen=True)
class SavedTrace:
    path: Path
    kind: str  # torch | npu | metal | timeline | ops
    top_ops: TopOps = ()


class Capture(Protocol):
    """One capture of a device profiler, started and stopped in the engine thread."""

    kind: str

    def start(self, directory: Path, stem: str) -> None: ...

    def annotate(self, name: str) -> AbstractContextManager[object]: ...

    def stop_and_save(self, progress: SaveProgress, steps: int) -> list[SavedTrace]:
        """Stop, write the trace under a temporary name, check it holds the `steps` captured,
        and publish it; return what was saved (all of it, or raise and publish nothing)."""
        ...

    def abandon(self) -> None:
        """Stop without saving (after a failure); remove temporary files."""
        ...
