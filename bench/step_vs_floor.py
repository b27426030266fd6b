"""Each engine's batch-1 decode step against the matvec chain over its own weights, side by
side: the default engine and a `--compile` one loaded from one saved model, their steps and
their C-matmul chains taking turns in every round. Where the compiled engine runs its eager
step (AOTInductor's lost at load), the two ratios differ only by noise and weight copy: the
check behind decode_vs_transformers.py's `--compile` row on a noisy machine
(bench/RESULTS.md, issue 15).

    python bench/step_vs_floor.py --shape 56M --rounds 40
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
from quantiles import paired  # noqa: E402

from infertop.engine.backends.torch.engine import TorchEngine  # noqa: E402
from infertop.engine.backends.torch.kernels import own_matmul_here  # noqa: E402

CPU = torch.device("cpu")


def own_chain(engine: TorchEngine) -> Callable[[], object]:
    """The C matmul over every matrix of the engine's step, one row, in sequence."""
    own = own_matmul_here(CPU, torch.float32)
    assert own is not None, "the C matmul is not here (no C compiler?)"
    weights = [w for _, w in engine.model.weight_matrices()]
    xs = {w.shape[1]: torch.randn(1, w.shape[1]) for w in weights}

    def run() -> object:
        for w in weights:
            own.run(xs[w.shape[1]], w)
        return None

    return run


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", choices=[s.name for s in SHAPES], default="56M")
    p.add_argument("--rounds", type=int, default=40)
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
        calls: dict[str, Callable[[], object]] = {}
        for name, engine in (("default", default), ("--compile", compiled)):
            graph = engine.compiled is not None and not engine.runs_eager(1)
            step = engine.timing_step(1, compiled=graph)
            calls[f"{name} step"], calls[f"{name} chain"] = step, own_chain(engine)
        for call in calls.values():
            call()
            call()
        times: dict[str, list[float]] = {k: [] for k in calls}
        order = list(calls)
        with torch.inference_mode():
            for r in range(args.rounds):
                for key in [*order[r % len(order) :], *order[: r % len(order)]]:
                    torch.set_num_threads(threads)
                    t0 = time.perf_counter()
                    calls[key]()
                    times[key].append(time.perf_counter() - t0)
    print("| engine | step ms | C matmul chain ms | step / chain (medians) | paired |")
    print("|---|---|---|---|---|")
    for name in ("default", "--compile"):
        step, chain = times[f"{name} step"], times[f"{name} chain"]
        a, b = statistics.median(step) * 1e3, statistics.median(chain) * 1e3
        print(f"| {name} | {a:.3f} | {b:.3f} | {a / b:.3f} | {paired(step, chain, 3)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
