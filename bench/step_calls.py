"""Where the fused decode step's time goes when it runs op by op (fused_decode.py's per-call
path, the one batch 1 took before its layers ran in one C call): each matmul and each C
call timed inside the step, and the rest ("between": Python, the embedding), with the
weights streaming and with every matmul made free (each returns an output it computed
once); then the floor, the same matmuls back to back. Kernels forced to F.linear, batch 1
(bench/RESULTS.md, issue 15).

    python bench/step_calls.py --shape 56M --rounds 4
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from decode_vs_transformers import matvec_steps  # noqa: E402
from machine import cpu_summary  # noqa: E402
from step_ab import STEPS, config_of, prompt_and_token  # noqa: E402
from step_ablation import free  # noqa: E402

from infertop.engine.backends.torch.fused_decode import Calls  # noqa: E402
from infertop.engine.backends.torch.kernels import PLAIN, PROJECTIONS, Linears  # noqa: E402
from infertop.engine.backends.torch.model import TorchLlama  # noqa: E402

CALLS = ("rms_norm", "add_rms_norm", "silu_mul", "decode_attention")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shape", default="56M", help="56M, 250M or a preset (tiny, ...)")
    p.add_argument("--rounds", type=int, default=4)
    a = p.parse_args()
    cfg = config_of(a.shape)
    m = TorchLlama.dummy(cfg, torch.float32, torch.device("cpu"))
    m.use_kernels(dict.fromkeys(PROJECTIONS, PLAIN))
    m.fuse_ops()
    assert m.fused is not None, m.ops
    m.fused.sgemv = "op by op: timed per call"  # keeps batch 1 off the one-call path
    m.allocate_cache(1, STEPS.stop)
    prompt, token = prompt_and_token(cfg, 1)
    spent: collections.Counter[str] = collections.Counter()

    def timed(name: str, func: Callable[..., object]) -> Callable[..., object]:
        def call(*args: object) -> object:
            t0 = time.perf_counter()
            out = func(*args)
            spent[name] += time.perf_counter() - t0
            return out

        return call

    bare = m.fused.calls
    m.fused.calls = Calls(*(timed(n, getattr(bare, n)) for n in CALLS))
    kernels = m.linears
    print(f"{cpu_summary()}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{a.shape}, batch 1, positions {STEPS.start}-{STEPS.stop - 1}, {a.rounds} rounds")
    for label, wrap in (("weights streaming", lambda f: f), ("matmuls made free", free)):
        m.linears = Linears(**{n: timed(n, wrap(getattr(kernels, n))) for n in PROJECTIONS})
        per: dict[str, list[float]] = collections.defaultdict(list)
        with torch.inference_mode():
            for _ in range(a.rounds):
                m.forward(prompt, 0)
                for pos in STEPS:
                    spent.clear()
                    t0 = time.perf_counter()
                    m.forward(token, pos)
                    total = time.perf_counter() - t0
                    per["step"].append(total)
                    for name, seconds in spent.items():
                        per[name].append(seconds)
                    per["between"].append(total - sum(spent.values()))
        print(f"\n{label}: median over steps, ms")
        for name, seconds in per.items():
            print(f"  {name:>18} {statistics.median(seconds) * 1e3:8.3f}")
    m.linears = kernels
    with torch.inference_mode():
        floor = [statistics.median(matvec_steps(m.weight_matrices(), 1, 31)) for _ in range(3)]
    print(f"\nthe same matmuls back to back (the floor): {statistics.median(floor) * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
