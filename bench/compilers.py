"""The fused library as each C compiler here builds it: fused_ops.c's own_matmul over a decode
step's chain of matmuls (matmul.py's shapes), each build loaded side by side in one process,
in an order that rotates from round to round; per round the median of its chains, and the
ratios to GCC's build (what infertop builds where torch runs on GNU OpenMP) paired round by
round. GCC's build without -fopenmp shows how much of a difference is the threads.
(bench/RESULTS.md, issue 15.)

    python bench/compilers.py --rounds 8
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

import torch
from machine import cpu_summary
from matmul import CHAINS_PER_ROUND, SHAPES, chain, in_turns, weights

from infertop.engine.backends.torch.fused_build import (
    FLAGS,
    SOURCE,
    is_clang,
    native_flags,
    opened,
    openmp_flags,
)
from infertop.engine.backends.torch.kernels import Kernel, own_matmul


def version(cc: str) -> str:
    return subprocess.run([cc, "--version"], capture_output=True, text=True).stdout.split("\n")[0]


def builds(root: Path) -> dict[str, Kernel]:
    """Each compiler's build as infertop makes it, and GCC's without OpenMP."""
    variants: dict[str, tuple[str, tuple[str, ...]]] = {}
    for name in ("gcc", "clang"):
        cc = shutil.which(name)
        if cc is None or (name == "gcc" and is_clang(cc)):  # macOS: gcc is clang
            continue
        variants[f"{version(cc)} ({' '.join(openmp_flags(cc)) or 'no OpenMP'})"] = (
            cc,
            openmp_flags(cc),
        )
        if name == "gcc" and openmp_flags(cc):
            variants[f"{version(cc)} (no OpenMP)"] = (cc, ())
    out = {}
    for i, (label, (cc, omp)) in enumerate(variants.items()):
        lib = root / f"fused-ops-{i}.so"
        cmd = [cc, *FLAGS, *omp, *native_flags(), str(SOURCE), "-o", str(lib), "-lm"]
        subprocess.run(cmd, check=True, capture_output=True)
        out[label] = own_matmul(opened(lib))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="infertop-compilers-") as tmp:
        kernels = builds(Path(tmp))
        if len(kernels) < 2:
            raise SystemExit("one compiler build here: nothing to compare (install gcc and clang)")
        print(f"{cpu_summary()}; torch {torch.__version__}, {torch.get_num_threads()} threads")
        print(f"{a.rounds} rounds of {CHAINS_PER_ROUND} chains; ratios paired by round")
        names = list(kernels)
        base = names[0]
        print("| model | B | " + " | ".join(f"{n} ms" for n in names) + " |")
        print("|---|---|" + "---|" * len(names))
        for (model, dims), batch in ((s, b) for s in SHAPES.items() for b in a.batches):
            ws = weights(*dims)
            per_round = in_turns({n: chain(k.run, ws, batch) for n, k in kernels.items()}, a.rounds)
            cells = []
            for n in names:
                ratios = [x / b for x, b in zip(per_round[n], per_round[base], strict=True)]
                med = statistics.median(per_round[n]) * 1e3
                cells.append(
                    f"{med:.3f} ({statistics.median(ratios):.2f}, "
                    f"{min(ratios):.2f}-{max(ratios):.2f})"
                )
            print(f"| {model} | {batch} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
