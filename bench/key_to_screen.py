"""Key-to-screen while the app drives 256 streams: the real app (`infertop --server URL`) in a
real terminal (tmux) against the SGLang double streaming as fast as it can (no token
interval), 256 requests of 128 tokens per run. Keys are sent with tmux, and the pane is read
until it changed: `space` (the header's state, as bench/ui_overhead.py times it) and `t`
(the view below the panels swapped). The same keys are timed with the load paused, in
turns, in the same session. Two apps, in alternate rounds: as shipped (the load generator
in a child process) and with the load generator in the app's worker thread
(bench/app_in_thread.py, as before engine/backends/server/process.py).
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
from bench.quantiles import quantile  # noqa: E402
from bench.tmux import pane, wait_for  # noqa: E402
from tests.server.conftest import Server, free_port, sglang_running  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def press_t(session: str) -> float:
    """Seconds from sending `t` to the pane showing the other view."""
    traces = "Saved traces" in pane(session)
    t0 = time.perf_counter()
    subprocess.run(["tmux", "send-keys", "-t", session, "t"], check=True)
    wait_for(session, lambda s: ("Saved traces" in s) != traces)
    return time.perf_counter() - t0


APPS = {
    "child process": [sys.executable, "-m", "infertop"],
    "worker thread": [sys.executable, str(ROOT / "bench" / "app_in_thread.py")],
}


def header_changes(session: str, away_from: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(["tmux", "send-keys", "-t", session, "Space"], check=True)
    wait_for(session, lambda s: away_from not in s.splitlines()[0])
    return time.perf_counter() - t0


def one_round(
    app: str, url: str, a: argparse.Namespace, base: Path, found: dict[str, list[float]]
) -> list[float]:
    """One app started, its presses timed into found[f"{key}, {state}"]; the requests in
    flight at each loaded press."""
    session = f"infertop-bench-{os.getpid()}-{time.monotonic_ns()}"
    cmd = " ".join(APPS[app]) + (
        f" --server {url} --batch-size {a.streams} --input-len 16 --output-len {a.tokens} "
        f"--trace-dir {base / 'traces'}; sleep 60"
    )
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "48", cmd], check=True
    )
    busy = f"{a.streams} streams, {app}"
    in_flight: list[float] = []

    def loaded() -> None:
        wait_for(session, lambda s: sglang_running(url) >= a.streams)
        time.sleep(0.3)

    try:
        wait_for(session, lambda s: "● running" in s.splitlines()[0])
        loaded()
        for _ in range(a.presses):  # space: the header's state, as bench/ui_overhead.py
            in_flight.append(sglang_running(url))
            found[f"space, {busy}"].append(header_changes(session, "● running"))
            wait_for(session, lambda s: "● paused" in s.splitlines()[0])
            time.sleep(0.3)
            found["space, paused"].append(header_changes(session, "● paused"))
            loaded()
        for _ in range(a.presses):  # t: the view below the panels is swapped
            in_flight.append(sglang_running(url))
            found[f"t, {busy}"].append(press_t(session))
            time.sleep(0.2)
        subprocess.run(["tmux", "send-keys", "-t", session, "Space"], check=True)
        wait_for(session, lambda s: "● paused" in s.splitlines()[0])
        for _ in range(a.presses):
            time.sleep(0.2)
            found["t, paused"].append(press_t(session))
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        time.sleep(2)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    return in_flight


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--streams", type=int, default=256)
    p.add_argument("--tokens", type=int, default=128)
    p.add_argument("--presses", type=int, default=10, help="per round and state")
    p.add_argument("--rounds", type=int, default=3, help="per app")
    a = p.parse_args()
    port = free_port()
    base = Path(tempfile.mkdtemp(prefix="infertop-keys-"))
    cmd = [sys.executable, "-m", "tests.doubles.sglang_server", "--port", str(port)]
    server = Server(
        [*cmd, "--enable-metrics"], "/health", port, base / "double.log", {**os.environ}, 30
    )
    found: dict[str, list[float]] = {}
    for key in ("space", "t"):
        found[f"{key}, paused"] = []
        for app in APPS:
            found[f"{key}, {a.streams} streams, {app}"] = []
    in_flight: list[float] = []
    try:
        for _ in range(a.rounds):
            for app in APPS:
                in_flight += one_round(app, server.url, a, base, found)
    finally:
        server.stop()

    def ms(xs: list[float], q: float) -> float:
        return quantile(xs, q) * 1e3

    print(f"machine: {cpu_model()}, {os.cpu_count()} CPUs (app, double and tmux share them)")
    print(
        f"{a.streams} streams x {a.tokens} tokens, streamed as fast as the double can; "
        f"requests in flight at the loaded presses: median {statistics.median(in_flight):.0f}"
    )
    print(f"{'key, while':<40}presses  p50 ms  p90 ms  max ms")
    for name, xs in found.items():
        print(f"{name:<40}{len(xs):>7}{ms(xs, 0.5):>8.1f}{ms(xs, 0.9):>8.1f}{max(xs) * 1e3:>8.1f}")
    for key in ("space", "t"):
        child = found[f"{key}, {a.streams} streams, child process"]
        thread = found[f"{key}, {a.streams} streams, worker thread"]
        print(
            f"{key}: child process / worker thread, p50 "
            f"{statistics.median(child) / statistics.median(thread):.2f}, p90 "
            f"{ms(child, 0.9) / ms(thread, 0.9):.2f}"
        )


if __name__ == "__main__":
    main()
