"""Metal GPU capture through MLX: a .gputrace bundle for Xcode.

Where Metal is unavailable (Linux) mx.metal.start_capture silently does nothing, so asking
for a capture there is a clear error, and a .gputrace is reported only if it was written.
"""

from __future__ import annotations

import os
import shutil
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from infertop.engine.errors import UserError
from infertop.engine.profiling.base import Counters, SavedTrace, SaveProgress
from infertop.engine.profiling.naming import publish, temp_path_for, unique_path

CAPTURE_ENV = "MTL_CAPTURE_ENABLED"


def enable_capture_env() -> None:
    """Metal reads MTL_CAPTURE_ENABLED when it starts: set it before MLX is imported."""
    os.environ.setdefault(CAPTURE_ENV, "1")


class MetalCapture:
    kind = "metal"
    base_ns: int | None = None  # a .gputrace bundle has no Chrome-trace clock

    def __init__(self, mx: Any | None = None) -> None:
        """`mx`: mlx.core, or a double of it (tests/doubles: this machine has no Metal)."""
        if mx is None:
            import mlx.core

            mx = mlx.core
        self.mx: Any = mx
        if not mx.metal.is_available():
            raise UserError(
                "Metal capture needs Apple silicon with Metal; here use the timeline trace "
                "(profile activity 'timeline')"
            )
        if os.environ.get(CAPTURE_ENV) != "1":
            raise UserError(
                f"Metal capture needs {CAPTURE_ENV}=1 set before launch; restart with it"
            )
        self.final: Path | None = None
        self.tmp: Path | None = None

    def start(self, directory: Path, stem: str) -> None:
        self.final = unique_path(directory, stem, "gputrace")
        self.tmp = temp_path_for(self.final)  # must not exist
        self.mx.metal.start_capture(str(self.tmp))

    def annotate(self, stage: str, index: int) -> AbstractContextManager[object]:
        return nullcontext()

    def stop_and_save(
        self, progress: SaveProgress, steps: int, counters: Counters
    ) -> list[SavedTrace]:
        assert self.final is not None and self.tmp is not None
        progress("stopping the Metal capture")
        self.mx.metal.stop_capture()
        if not self.tmp.exists():
            raise UserError("Metal wrote no .gputrace; run with MTL_CAPTURE_ENABLED=1 on a Mac")
        publish(self.tmp, self.final)
        return [SavedTrace(self.final, "metal")]

    def abandon(self) -> None:
        if self.tmp and self.tmp.exists():
            shutil.rmtree(self.tmp, ignore_errors=True)
