"""Every float32 matmul kernel torch's CPU build offers for the decode step's projections,
timed in turns as the load-time chooser times them (engine/backends/torch/timing.py), on
one weight called again (the chooser now takes a projection's layers in turn): the three it
chooses among (F.linear, oneDNN packed, and oneDNN on the plain weight, which with F.linear
for one row makes a per-batch choice on one copy) and those it leaves out (bench/RESULTS.md,
issue 15):

- oneDNN packed for batch 1 (the pack's batch-size hint picks another blocked layout);
- MKL's packed GEMM. Its packed weight serves one batch size only: `torch.ops.mkl._mkl_linear`
  falls back to F.linear on the plain weight, which it also needs, at any other batch, so it
  would cost a second copy of every weight. It is timed packed for the batch it runs;
- the transposed weight, (K, N), as `x @ wT`.

    python bench/kernel_candidates.py
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from machine import cpu_summary  # noqa: E402

from infertop.engine.backends.torch.kernels import onednn_linear, onednn_pack  # noqa: E402
from infertop.engine.backends.torch.timing import WARM_CALLS, fastest_in_turns  # noqa: E402

# (name, out, in): the 56M and 250M shapes of bench/decode_vs_transformers.py
SHAPES = (
    ("56M qkv", 1536, 512),
    ("56M o", 512, 512),
    ("56M gate_up", 2752, 512),
    ("56M down", 512, 1376),
    ("56M lm_head", 32000, 512),
    ("250M qkv", 3072, 1024),
    ("250M o", 1024, 1024),
    ("250M gate_up", 5632, 1024),
    ("250M down", 1024, 2816),
    ("250M lm_head", 32000, 1024),
)
KERNELS = (
    "F.linear",
    "oneDNN packed",
    "oneDNN plain",
    "oneDNN packed for B=1",
    "MKL packed",
    "transposed",
)


def calls_for(w: torch.Tensor, x: torch.Tensor) -> list[tuple[str, Callable[[], object]]]:
    batch = x.shape[0]
    mkl = torch.ops.mkl._mkl_reorder_linear_weight(w, batch)
    return [
        ("F.linear", partial(F.linear, x, w)),
        ("oneDNN packed", partial(onednn_linear, x, onednn_pack(w))),
        ("oneDNN plain", partial(onednn_linear, x, w)),
        ("oneDNN packed for B=1", partial(onednn_linear, x, onednn_pack(w, batch_size=1))),
        ("MKL packed", partial(torch.ops.mkl._mkl_linear, x, mkl, w, None, batch)),
        ("transposed", partial(torch.matmul, x, w.t().contiguous())),
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    p.add_argument("--reps", type=int, default=15)
    a = p.parse_args()
    print(f"{cpu_summary()}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("fastest call in turns, ms; in brackets: / the fastest of them\n")
    print("| projection | B | " + " | ".join(KERNELS) + " |")
    print("|---|---|" + "---|" * len(KERNELS))
    gen = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        for name, out, inp in SHAPES:
            w = torch.randn(out, inp, generator=gen)
            for batch in a.batches:
                calls = calls_for(w, torch.randn(batch, inp, generator=gen))
                for _, call in calls:
                    for _ in range(WARM_CALLS):
                        call()
                seconds = fastest_in_turns(calls, a.reps)
                best = min(seconds.values())
                cells = [f"{seconds[k] * 1e3:.3f} ({seconds[k] / best:.2f})" for k in KERNELS]
                print(f"| {name} {out}x{inp} | {batch} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
