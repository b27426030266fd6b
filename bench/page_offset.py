"""Does where a weight starts within its 4 KB page change a kernel's batch-1 speed (F.linear's
unless --kernel names another that runs on the plain weight)? Each shape is stored at
several offsets from a page boundary (copies of one seeded matrix, as many as make 48 MB so
each call streams its weight from memory), the offsets take turns in a
shuffled order each round, and each figure is the median over rounds of a round's median
call, divided by the fastest offset of that round (bench/RESULTS.md, issue 15: a finding,
not used by the engine).

    python bench/page_offset.py --rounds 8
    python bench/page_offset.py --kernel "C matmul"     # fused_ops.c's own_matmul instead
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import torch
from machine import cpu_summary

from infertop.engine.backends.torch.kernels import kernel_named

PAGE = 4096
OFFSETS = (0, 64, 1024, 2048, 3072)  # 64: where torch's large allocations start here
# (out, in): the 56M and 250M shapes of decode_vs_transformers.py, and smollm2-135m's
SHAPES = ((1536, 512), (2752, 512), (512, 1376), (32000, 512), (3072, 1024), (1024, 2816))
SHAPES += ((1728, 576), (576, 1536))
STREAMED_BYTES = 48 << 20


def at_offset(
    offset: int, shape: tuple[int, int], source: torch.Tensor, keep: list
) -> torch.Tensor:
    """A copy of `source` that starts `offset` bytes past a page boundary."""
    n = shape[0] * shape[1] * 4
    buf = torch.empty(n + 2 * PAGE, dtype=torch.uint8)
    start = -buf.data_ptr() % PAGE + offset
    keep.append(buf)
    w = buf[start : start + n].view(torch.float32).view(shape)
    return w.copy_(source)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--kernel", default="F.linear", help="a kernel on the plain weight")
    a = p.parse_args()
    linear = kernel_named(a.kernel, torch.device("cpu"), torch.float32).run
    gen = torch.Generator().manual_seed(0)
    threads = torch.get_num_threads()
    print(f"{cpu_summary()}; torch {torch.__version__}, {threads} threads; {a.kernel}")
    default = sorted({torch.empty(s).data_ptr() % PAGE for s in SHAPES})
    print(f"offsets of torch's own allocations of these shapes: {default}")
    print("| shape | row bytes | " + " | ".join(f"offset {o}" for o in OFFSETS) + " |")
    print("|---|---|" + "---|" * len(OFFSETS))
    for shape in SHAPES:
        keep: list[torch.Tensor] = []
        source = torch.randn(*shape, generator=gen)
        copies = max(2, STREAMED_BYTES // (shape[0] * shape[1] * 4))
        weights = {o: [at_offset(o, shape, source, keep) for _ in range(copies)] for o in OFFSETS}
        x = torch.randn(1, shape[1], generator=gen)
        per_round: dict[int, list[float]] = {o: [] for o in OFFSETS}
        with torch.inference_mode():
            for _ in range(a.rounds):
                for o in random.sample(OFFSETS, len(OFFSETS)):
                    times = []
                    for i in range(2 * copies):
                        t0 = time.perf_counter()
                        linear(x, weights[o][i % copies])
                        times.append(time.perf_counter() - t0)
                    per_round[o].append(statistics.median(times))
        best = [min(per_round[o][r] for o in OFFSETS) for r in range(a.rounds)]
        cells = [
            f"{statistics.median(t / b for t, b in zip(per_round[o], best, strict=True)):.3f}"
            for o in OFFSETS
        ]
        print(f"| {shape[0]}x{shape[1]} | {shape[1] * 4} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
