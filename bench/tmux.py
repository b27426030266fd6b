"""Reading a tmux pane from the benches that drive the real app in a real terminal."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable


def pane(session: str) -> str:
    done = subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True)
    return done.stdout.decode(errors="replace")


def wait_for(
    session: str, pred: Callable[[str], object], timeout: float = 120, poll: float = 0.002
) -> float:
    """Seconds until pred(pane) holds, the pane read every `poll` seconds."""
    t0 = time.perf_counter()
    while True:
        if pred(pane(session)):
            return time.perf_counter() - t0
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError(pane(session))
        time.sleep(poll)
