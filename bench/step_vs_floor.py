"""Each engine's batch-1 decode step against the matvec chain over its own weights, side by
side: the default engine and a `--compile` one loaded from one saved model, their steps and
the chains of their own kernels' matvecs taking turns (bench/matmul.py's in_turns: per
round the median of five calls each). Where the compiled engine runs its eager step
(AOTInductor's lost at load), the two ratios differ only by noise and weight copy: the
check behind decode_vs_transformers.py's `--compile` row on a noisy machine
(bench/RESULTS.md, issue 15).
    python bench/step_vs_floor.py --shape 56M --rounds 10
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from decode_vs_transformers import SHAPES, saved_hf_model  # noqa: E402
from machine import cpu_summary  # noqa: E402
from matmul import chain, in_turns  # noqa: E402
from quantiles import paired  # noqa: E402

from infertop.engine.backends.torch.engine import TorchEngine  # noqa: E402


def own_chain(engine: TorchEngine) -> Callable[[], float]:
    """Every matrix of the engine's step with the kernel the step runs it on at one row (a
    packed weight has no plain copy for another kernel), called from Python in sequence."""
    pairs = engine.model.weight_matrices()
    kernel_of = {id(w): linear for linear, w in pairs}
    return chain(lambda x, w: kernel_of[id(w)](x, w), [w for _, w in pairs], 1)


def timed(call: Callable[[], object]) -> Callable[[], float]:
    def once() -> float:
        t0 = time.perf_counter()
        call()
        return time.perf_counter() - t0

    return once


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", choices=[s.name for s in SHAPES], default="56M")
    p.add_argument("--rounds", type=int, default=10)
    args = p.parse_args()
    shape = next(s for s in SHAPES if s.name == args.shape)
    threads = torch.get_num_threads()
    print(f"{cpu_summary()}; torch {torch.__version__}, {threads} threads, {args.shape}")
    with tempfile.TemporaryDirectory(prefix="infertop-bench-") as tmp:
        _, directory = saved_hf_model(shape.hf_config(), Path(tmp), torch.float32)
        default = TorchEngine.load(str(directory), "cpu")
        compiled = TorchEngine.load(str(directory), "cpu")
        compiled.compile_decode()
        print(f"--compile: {compiled.decode_ops}")
        calls: dict[str, Callable[[], float]] = {}
        for name, engine in (("default", default), ("--compile", compiled)):
            graph = engine.compiled is not None and not engine.runs_eager(1)
            calls[f"{name} step"] = timed(engine.timing_step(1, compiled=graph))
            calls[f"{name} chain"] = own_chain(engine)
        torch.set_num_threads(threads)  # as the floors of decode_vs_transformers.py
        times = in_turns(calls, args.rounds)
    print("| engine | step ms | its matvec chain ms | step / chain (medians) | paired |")
    print("|---|---|---|---|---|")
    for name in ("default", "--compile"):
        step, floor = times[f"{name} step"], times[f"{name} chain"]
        a, b = statistics.median(step) * 1e3, statistics.median(floor) * 1e3
        print(f"| {name} | {a:.3f} | {b:.3f} | {a / b:.3f} | {paired(step, floor, 3)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
