"""StepGate: lets a live UI hold the engine between steps, briefly and never for long."""

from __future__ import annotations

import threading
import time

MAX_HOLD_S = 0.2  # however often hold() is called, a stalled holder costs the engine this once


class StepGate:
    """Open by default. `hold()` (any thread) closes it; the runner then waits before its next
    timed step until `release()` or until MAX_HOLD_S after the hold, whichever comes first,
    so no step is stretched and a UI that stalls cannot slow the engine down for long."""

    def __init__(self, max_hold_s: float = MAX_HOLD_S) -> None:
        self.max_hold_s = max_hold_s
        self._open = threading.Event()
        self._open.set()
        self._deadline = 0.0

    def hold(self) -> None:
        if self._open.is_set():  # a hold while held does not push the deadline out
            self._deadline = time.monotonic() + self.max_hold_s
            self._open.clear()

    def release(self) -> None:
        self._open.set()

    def wait(self) -> None:
        """Called by the runner between steps: returns at once unless held."""
        if self._open.is_set():
            return
        remaining = self._deadline - time.monotonic()
        if remaining > 0:
            self._open.wait(remaining)
