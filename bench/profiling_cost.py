"""What the profiling machinery costs, measured side by side in one process.

1. No capture armed: the runner's decode step (it checks `profiler.busy` every step)
   against a bare loop of the same engine calls with no profiling code at all.
2. A 5-step decode capture on the default preset: save time and the size of each file.

    python bench/profiling_cost.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from infertop.engine.backends.torch.engine import TorchEngine
from infertop.engine.config import DEFAULT_PRESET, RunConfig
from infertop.engine.events import Event, ProfileSaving, ProfileStopped, TraceSaved
from infertop.engine.profiling.request import CaptureRequest
from infertop.engine.runner import Runner


def bare_loop(engine: TorchEngine, b: int, i: int, o: int, seed: int) -> list[float]:
    """The runner's timed decode steps without its command or profiler checks."""
    engine.prepare(b, i + o)
    tokens = engine.prefill(engine.random_prompts(b, i, seed))
    engine.wait(tokens)
    out = []
    for step in range(1, o):
        t0 = time.perf_counter()
        tokens = engine.decode(tokens, i + step - 1)
        engine.wait(tokens)
        out.append(time.perf_counter() - t0)
    return out


def runner_steps(engine: TorchEngine, cfg: RunConfig) -> list[float]:
    (result,) = Runner(engine, cfg, lambda ev: None).run()
    return list(result.decode_latencies)


def idle_cost(preset: str, rounds: int, runs: int) -> tuple[float, float, float]:
    engine = TorchEngine.load(preset, device="cpu")
    cfg = RunConfig(
        model=preset,
        batch_sizes=(1,),
        input_lens=(128,),
        output_lens=(32,),
        warmup=False,
        trace_dir=tempfile.mkdtemp(),
    )
    runner_steps(engine, cfg)
    ratios, a_ms, b_ms = [], [], []
    for _ in range(rounds):
        bare = [v for _ in range(runs) for v in bare_loop(engine, 1, 128, 32, cfg.seed)]
        ours = [v for _ in range(runs) for v in runner_steps(engine, cfg)]
        a, b = statistics.median(ours), statistics.median(bare)
        ratios.append(a / b)
        a_ms.append(a * 1e3)
        b_ms.append(b * 1e3)
    return statistics.median(a_ms), statistics.median(b_ms), statistics.median(ratios)


def save_cost(preset: str) -> list[str]:
    engine = TorchEngine.load(preset, device="cpu")
    trace_dir = tempfile.mkdtemp()
    events: list[tuple[float, Event]] = []
    request = CaptureRequest(name="bench", stage="decode", steps=5)
    cfg = RunConfig(
        model=preset,
        batch_sizes=(1,),
        input_lens=(128,),
        output_lens=(32,),
        trace_dir=trace_dir,
        profile=request,
    )
    Runner(engine, cfg, lambda ev: events.append((time.perf_counter(), ev))).run()
    saving = [t for t, ev in events if isinstance(ev, ProfileSaving)]
    stopped = [t for t, ev in events if isinstance(ev, ProfileStopped)]
    lines = [f"save time (stop -> all files written): {(stopped[0] - saving[0]) * 1e3:.0f} ms"]
    for _, ev in events:
        if isinstance(ev, TraceSaved):
            lines.append(f"  {ev.kind:8s} {ev.size / 1e6:7.3f} MB  {ev.path.rsplit('/', 1)[-1]}")
    return lines


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for preset in (DEFAULT_PRESET, "tiny"):
        a, b, r = idle_cost(preset, args.rounds, args.runs if preset != "tiny" else 30)
        print(
            f"{preset:14s} no capture: runner {a:.4f} ms vs bare loop {b:.4f} ms, "
            f"ratio {r:.3f} (limit 1.01)"
        )
    print(f"5-step decode capture on {DEFAULT_PRESET} (B=1, in 128):")
    for line in save_cost(DEFAULT_PRESET):
        print(line)


if __name__ == "__main__":
    main()
