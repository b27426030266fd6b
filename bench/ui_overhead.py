"""What the live UI costs the engine, measured side by side in one process.

1. Median decode step with the app running (headless Pilot, engine in its thread worker)
   against the headless runner (what `infertop bench` runs), alternating rounds on the same
   loaded engine; plus the UI thread's CPU per refresh.
2. Key-to-screen latency in a real terminal (tmux) while the engine runs `tiny` flat out.
3. RSS growth over 100,000 decode steps of `tiny` in the app.

    python bench/ui_overhead.py [--rounds 5] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import psutil
import torch

from infertop.engine.backends.torch.engine import TorchEngine
from infertop.engine.config import RunConfig
from infertop.engine.runner import Runner
from infertop.engine.session import Session
from infertop.tui.app import InfertopApp

T = TypeVar("T")
POLL_S = 0.002  # between capture-pane polls: the key-to-screen figures' resolution


def in_fresh_thread(fn: Callable[[], T]) -> T:
    """Run fn in a new thread and wait. torch's OpenMP pool belongs to the thread that first
    runs a parallel op, and libgomp stops its workers spinning (they sleep after ~1000 spins)
    once it manages more threads than there are CPUs. In `infertop bench` the engine owns the
    only pool (main thread) and in the TUI too (the engine thread; the UI thread never runs
    torch), so the engine must not leave a pool on this process's main thread: measured
    here, that alone made tiny's steps in the app's worker thread 1.17x slower."""
    box: list[T] = []
    thread = threading.Thread(target=lambda: box.append(fn()))
    thread.start()
    thread.join()
    return box[0]


def median_decode(results: list) -> float:
    return statistics.median(v for r in results for v in r.decode_latencies)


def bench_side(engine: TorchEngine, cfg: RunConfig, runs: int) -> float:
    """What `infertop bench` runs, in a thread of its own (see in_fresh_thread)."""
    cfg = cfg.with_changes(warmup=False)

    def timed() -> float:
        out = []
        for _ in range(runs):
            out += Runner(engine, cfg, lambda ev: None).run()
        return median_decode(out)

    return in_fresh_thread(timed)


async def app_side(
    engine: TorchEngine, cfg: RunConfig, runs: int, hz: float
) -> tuple[float, float]:
    """Median decode step with the app live, and the UI thread's CPU ms per refresh."""
    session = Session(cfg.with_changes(warmup=False), engine=engine)
    app = InfertopApp(session, refresh_hz=hz)
    ticks = 0
    original = app.drain

    def counted() -> None:
        nonlocal ticks
        ticks += 1
        original()

    app.drain = counted  # type: ignore[method-assign]
    async with app.run_test(size=(120, 40)) as pilot:
        # plain sleeps, not pilot.pause(): Pilot's idle-waiting would be billed to the UI
        while len(app.stats.results) < 1:  # the first run absorbs the app's start-up
            await asyncio.sleep(0.1)
        first = len(app.stats.results)
        cpu0, ticks0 = time.thread_time(), ticks
        while len(app.stats.results) < first + runs:
            await asyncio.sleep(0.1)
        cpu = time.thread_time() - cpu0
        n = ticks - ticks0
        results = list(app.stats.results)[first : first + runs]
        await pilot.press("q")
    return median_decode(results), cpu * 1e3 / max(n, 1)


def overhead(preset: str, runs: int, rounds: int, hz: float) -> dict:
    engine = in_fresh_thread(lambda: TorchEngine.load(preset, device="cpu"))
    cfg = RunConfig(model=preset, batch_sizes=(1,), input_lens=(128,), output_lens=(32,))
    in_fresh_thread(lambda: Runner(engine, cfg, lambda ev: None).run())  # warm up once
    ratios, per_refresh, bench_ms, app_ms = [], [], [], []
    for _ in range(rounds):
        b = bench_side(engine, cfg, runs)
        a, ui = asyncio.run(app_side(engine, cfg, runs, hz))
        ratios.append(a / b)
        per_refresh.append(ui)
        bench_ms.append(b * 1e3)
        app_ms.append(a * 1e3)
    return {
        "preset": preset,
        "bench_ms": statistics.median(bench_ms),
        "app_ms": statistics.median(app_ms),
        "ratio": statistics.median(ratios),
        "ratios": ratios,
        "ui_ms_per_refresh": statistics.median(per_refresh),
    }


def key_to_screen(samples: int) -> list[float]:
    """Press space in a real terminal and time until the header shows the new state."""
    if not shutil.which("tmux"):
        return []
    session = "infertop-bench"
    trace_dir = tempfile.mkdtemp()
    cmd = (
        f"{sys.executable} -m infertop --model tiny --batch-size 1 --input-len 16 "
        f"--output-len 256 --trace-dir {trace_dir}"
    )
    subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40", cmd], check=True
    )

    def screen() -> str:
        return subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True
        ).stdout

    def wait_for(*texts: str, timeout: float = 60.0) -> float:
        """Seconds until the pane shows any of texts."""
        t0 = time.perf_counter()
        while not any(text in screen() for text in texts):
            if time.perf_counter() - t0 > timeout:
                raise TimeoutError(texts)
            time.sleep(POLL_S)  # a tight loop of tmux clients would take a core from the app
        return time.perf_counter() - t0

    latencies = []
    try:
        wait_for("● running")
        time.sleep(2.0)
        for k in range(samples):
            # the first sign on screen: the transient state, or the final one if it came first
            want = ("● pausing", "● paused") if k % 2 == 0 else ("● resuming", "● running")
            subprocess.run(["tmux", "send-keys", "-t", session, "space"], check=True)
            latencies.append(wait_for(*want) * 1e3)
            wait_for("● paused" if k % 2 == 0 else "● running")
            time.sleep(0.3)
        subprocess.run(["tmux", "send-keys", "-t", session, "q"])
        time.sleep(2.0)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    return latencies


async def rss_growth(steps: int) -> tuple[float, float, int]:
    cfg = RunConfig(model="tiny", batch_sizes=(1,), input_lens=(16,), output_lens=(256,))
    session = Session(cfg)
    app = InfertopApp(session, refresh_hz=4)
    proc = psutil.Process()
    async with app.run_test(size=(120, 40)) as pilot:
        while session.steps_done < 10_000:
            await pilot.pause(0.2)
        start = proc.memory_info().rss
        while session.steps_done < steps + 10_000:
            await pilot.pause(0.2)
        end = proc.memory_info().rss
        await pilot.press("q")
    return start / 2**20, end / 2**20, session.events.dropped


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--runs", type=int, default=3, help="timed runs per side per round")
    p.add_argument("--refresh", type=float, default=3.0)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--only", choices=("overhead", "keys", "rss"), default=None)
    p.add_argument("--presses", type=int, default=40, help="key presses in the tmux test")
    args = p.parse_args()
    rounds = 2 if args.quick else args.rounds
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, refresh {args.refresh} Hz"
    )
    rows = []
    presets = (
        []
        if args.only not in (None, "overhead")
        else [("smollm2-135m", args.runs, 1.03), ("tiny", 40, 1.10)]
    )
    for preset, runs, limit in presets:
        r = overhead(preset, runs, rounds, args.refresh)
        rows.append((r, limit))
        print(
            f"{preset:14s} bench {r['bench_ms']:.3f} ms  app {r['app_ms']:.3f} ms  "
            f"ratio {r['ratio']:.3f} (limit {limit})  "
            f"per-round {[round(x, 3) for x in r['ratios']]}  "
            f"UI CPU {r['ui_ms_per_refresh']:.2f} ms/refresh"
        )
    keys = key_to_screen(6 if args.quick else args.presses) if args.only in (None, "keys") else []
    if keys:
        keys.sort()
        p50, p90 = keys[len(keys) // 2], keys[int(len(keys) * 0.9)]
        print(f"key-to-screen p50 {p50:.1f} ms, p90 {p90:.1f} ms, all {[round(k) for k in keys]}")
        print(
            f"key-to-screen (tmux): median {statistics.median(keys):.1f} ms, "
            f"max {max(keys):.1f} ms over {len(keys)} presses (limit 100 ms)"
        )
    if args.only not in (None, "rss"):
        return
    steps = 20_000 if args.quick else 100_000
    start, end, dropped = asyncio.run(rss_growth(steps))
    print(
        f"RSS over {steps:,} decode steps of tiny: {start:.1f} -> {end:.1f} MiB "
        f"(+{end - start:.1f} MiB, limit 20), samples dropped by the UI: {dropped:,}"
    )


if __name__ == "__main__":
    main()
