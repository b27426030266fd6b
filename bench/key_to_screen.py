"""Key-to-screen while the app drives 256 streams: the real app (`infertop --server URL`) in a
real terminal (tmux) against the SGLang double streaming as fast as it can (no token
interval), 256 requests of 128 tokens per run. Keys are sent with tmux, and the pane is read
until it changed: `space` (the header's state, as bench/ui_overhead.py times it) and `t`
(the view below the panels swapped). The same keys are timed with the load paused, in
turns, in the same session: the ratio is what the 256 streams cost the screen.
Reading the pane (a tmux subprocess every 2 ms) is inside every figure.

    python bench/key_to_screen.py [--streams 256] [--presses 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import cpu_model  # noqa: E402
from tests.server.conftest import Server, free_port, sglang_running  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def pane(session: str) -> str:
    done = subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True)
    return done.stdout.decode(errors="replace")


def wait_for(session: str, pred: object, timeout: float = 120) -> float:
    """Seconds until pred(pane) holds."""
    t0 = time.perf_counter()
    while True:
        if pred(pane(session)):  # type: ignore[operator]
            return time.perf_counter() - t0
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError(pane(session))
        time.sleep(0.002)


def press_t(session: str) -> float:
    """Seconds from sending `t` to the pane showing the other view."""
    traces = "Saved traces" in pane(session)
    t0 = time.perf_counter()
    subprocess.run(["tmux", "send-keys", "-t", session, "t"], check=True)
    wait_for(session, lambda s: ("Saved traces" in s) != traces)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--streams", type=int, default=256)
    p.add_argument("--tokens", type=int, default=128)
    p.add_argument("--presses", type=int, default=10, help="per round and state")
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    port = free_port()
    base = Path(tempfile.mkdtemp(prefix="infertop-keys-"))
    cmd = [sys.executable, "-m", "tests.doubles.sglang_server", "--port", str(port)]
    server = Server(
        [*cmd, "--enable-metrics"], "/health", port, base / "double.log", {**os.environ}, 30
    )
    session = f"infertop-bench-{os.getpid()}"
    app = (
        f"{sys.executable} -m infertop --server {server.url} --batch-size {a.streams} "
        f"--input-len 16 --output-len {a.tokens} --trace-dir {base / 'traces'}; sleep 60"
    )
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "48", app], check=True
    )
    found: dict[str, list[float]] = {
        "space, paused (no streams)": [],
        f"space, {a.streams} streams": [],
        "t, paused (no streams)": [],
        f"t, {a.streams} streams": [],
    }
    in_flight: list[float] = []

    def header_changes(session: str, away_from: str) -> float:
        t0 = time.perf_counter()
        subprocess.run(["tmux", "send-keys", "-t", session, "Space"], check=True)
        wait_for(session, lambda s: away_from not in s.splitlines()[0])
        return time.perf_counter() - t0

    def loaded() -> None:
        wait_for(session, lambda s: sglang_running(server.url) >= a.streams)
        time.sleep(0.3)

    try:
        wait_for(session, lambda s: "● running" in s.splitlines()[0])
        loaded()
        for _ in range(a.rounds):
            for _ in range(a.presses):  # space: the header's state, as bench/ui_overhead.py
                in_flight.append(sglang_running(server.url))
                found[f"space, {a.streams} streams"].append(header_changes(session, "● running"))
                wait_for(session, lambda s: "● paused" in s.splitlines()[0])
                time.sleep(0.3)
                found["space, paused (no streams)"].append(header_changes(session, "● paused"))
                loaded()
            for _ in range(a.presses):  # t: the view below the panels is swapped
                in_flight.append(sglang_running(server.url))
                found[f"t, {a.streams} streams"].append(press_t(session))
                time.sleep(0.2)
            subprocess.run(["tmux", "send-keys", "-t", session, "Space"], check=True)
            wait_for(session, lambda s: "● paused" in s.splitlines()[0])
            for _ in range(a.presses):
                time.sleep(0.2)
                found["t, paused (no streams)"].append(press_t(session))
            subprocess.run(["tmux", "send-keys", "-t", session, "Space"], check=True)
            loaded()
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        time.sleep(2)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
        server.stop()

    def ms(xs: list[float], q: float) -> float:
        return sorted(xs)[min(len(xs) - 1, int(len(xs) * q))] * 1e3

    print(f"machine: {cpu_model()}, {os.cpu_count()} CPUs (app, double and tmux share them)")
    print(
        f"{a.streams} streams x {a.tokens} tokens, streamed as fast as the double can; "
        f"requests in flight at the loaded presses: median {statistics.median(in_flight):.0f}"
    )
    print("key, while                 presses  p50 ms  p90 ms  max ms")
    for name, xs in found.items():
        print(f"{name:<27}{len(xs):>8}{ms(xs, 0.5):>8.1f}{ms(xs, 0.9):>8.1f}{max(xs) * 1e3:>8.1f}")
    for key in ("space", "t"):
        idle, busy = found[f"{key}, paused (no streams)"], found[f"{key}, {a.streams} streams"]
        print(
            f"{key}: p50 with streams / paused "
            f"{statistics.median(busy) / statistics.median(idle):.2f}"
        )


if __name__ == "__main__":
    main()
