"""The C matmul (fused_ops.c's own_matmul) against F.linear (MKL in torch's x86 wheels) and
oneDNN (packed, and on the plain weight) at batch 1 and 8: a decode step's chain of matmuls
over every layer's weights and the lm_head, each kernel on its own copy, the kernels in an
order that rotates from round to round; per round the median of its chains, and the ratios
paired round by round (bench/RESULTS.md, issue 15).

    python bench/matmul.py --rounds 10
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from machine import cpu_summary

from infertop.engine.backends.torch.kernels import (
    ONEDNN,
    ONEDNN_PLAIN,
    PLAIN,
    candidates,
    own_matmul_here,
)

# (hidden, layers, intermediate, vocab): decode_vs_transformers.py's shapes and smollm2-135m's
SHAPES = {
    "56M": (512, 8, 1376, 32000),
    "smollm2-135m": (576, 30, 1536, 49152),
    "250M": (1024, 16, 2816, 32000),
}
CHAINS_PER_ROUND = 5


def weights(hidden: int, layers: int, inter: int, vocab: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    shapes = [(3 * hidden, hidden), (hidden, hidden), (2 * inter, hidden), (hidden, inter)]
    out = [torch.randn(*s, generator=gen) / s[1] ** 0.5 for _ in range(layers) for s in shapes]
    return [*out, torch.randn(vocab, hidden, generator=gen) / hidden**0.5]


def chain(
    run: Callable[..., torch.Tensor], ws: list[torch.Tensor], batch: int
) -> Callable[[], float]:
    xs = {w.shape[1]: torch.randn(batch, w.shape[1]) for w in ws}

    def once() -> float:
        t0 = time.perf_counter()
        for w in ws:
            run(xs[w.shape[1]], w)
        return time.perf_counter() - t0

    return once


def in_turns(calls: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Per call, its median of CHAINS_PER_ROUND chains in each round, after one call each to
    warm; the calls in an order that rotates from round to round."""
    per_round: dict[str, list[float]] = {n: [] for n in calls}
    names = list(calls)
    with torch.inference_mode():
        for call in calls.values():
            call()
        for r in range(rounds):
            for n in names[r % len(names) :] + names[: r % len(names)]:
                times = [calls[n]() for _ in range(CHAINS_PER_ROUND)]
                per_round[n].append(statistics.median(times))
    return per_round


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    a = p.parse_args()
    cpu, f32 = torch.device("cpu"), torch.float32
    own = own_matmul_here(cpu, f32)
    if own is None:
        raise SystemExit("no C matmul here: the fused library did not build (a C compiler?)")
    kernels = [PLAIN, own] + ([ONEDNN, ONEDNN_PLAIN] if ONEDNN in candidates(cpu, f32) else [])
    print(f"{cpu_summary()}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    rounds = f"{a.rounds} rounds of {CHAINS_PER_ROUND} chains"
    print(f"{rounds}; ratios paired by round: median (min-max)")
    others = [k.name for k in kernels if k is not own]
    head = " | ".join(f"{k.name} ms" for k in kernels)
    ratios = " | ".join(f"C matmul / {n}" for n in others)
    print(f"| model | MB | B | {head} | {ratios} |")
    print("|---|---|---|" + "---|" * (len(kernels) + len(others)))
    for (name, dims), batch in ((s, b) for s in SHAPES.items() for b in a.batches):
        plain = weights(*dims)
        calls = {k.name: chain(k.run, [k.pack(w) for w in plain], batch) for k in kernels}
        per_round = in_turns(calls, a.rounds)
        mb = sum(w.numel() for w in plain) * 4 / 1e6
        cells = [f"{statistics.median(per_round[k.name]) * 1e3:.3f}" for k in kernels]
        for other in others:
            paired = [c / o for c, o in zip(per_round[own.name], per_round[other], strict=True)]
            med, lo, hi = statistics.median(paired), min(paired), max(paired)
            cells.append(f"{med:.2f} ({lo:.2f}-{hi:.2f})")
        print(f"| {name} | {mb:.0f} | {batch} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
