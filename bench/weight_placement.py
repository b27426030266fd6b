"""Does placing a model's plain weights in their pages change a whole decode step? The same
saved model is loaded twice (kernels chosen at load, as the engine builds itself); in the
second, each layer's plain weight is copied to start 2048 bytes past a 4 KB page boundary
(64 where a row is a multiple of 4 KB: page_offset.py's fastest offsets on the Intel Xeon
@ 2.80GHz), and the two engines' batch-1 steps run in turns, paired by round
(bench/RESULTS.md, issue 15: a finding, not used by the engine).

    python bench/weight_placement.py --shape 56M --rounds 10
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import decode_vs_transformers as dvt
import torch
from machine import cpu_summary
from page_offset import PAGE, at_offset

from infertop.engine.backends.torch.engine import TorchEngine
from infertop.engine.memory import trim_heap

PLAIN_WEIGHTS = ("wqkv", "wo", "w13", "w2")


def offset_for(w: torch.Tensor) -> int:
    return 64 if (w.shape[1] * w.element_size()) % PAGE == 0 else 2048


def place_weights(engine: TorchEngine) -> None:
    """Every plain (strided, not oneDNN-packed) layer weight and an untied lm_head placed;
    the fused C step's plans rebuilt on the new addresses."""
    m = engine.model
    for layer in m.layers:
        for attr in PLAIN_WEIGHTS:
            w = getattr(layer, attr)
            if not w.is_mkldnn and w.layout == torch.strided:
                setattr(layer, attr, at_offset(offset_for(w), tuple(w.shape), w, []))
        trim_heap()
    if m.lm_head is not m.embed and not m.lm_head.is_mkldnn:
        m.lm_head = at_offset(offset_for(m.lm_head), tuple(m.lm_head.shape), m.lm_head, [])
    m.fused = None
    m.fuse_ops()


def offsets(engine: TorchEngine) -> list[int]:
    m = engine.model
    return sorted(
        {getattr(layer, a).data_ptr() % PAGE for layer in m.layers for a in PLAIN_WEIGHTS}
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shape", default="56M", choices=[s.name for s in dvt.SHAPES])
    p.add_argument("--rounds", type=int, default=10)
    a = p.parse_args()
    shape = next(s for s in dvt.SHAPES if s.name == a.shape)
    root = Path(tempfile.mkdtemp())
    hf, directory = dvt.saved_hf_model(shape.hf_config(), root / shape.name, torch.float32)
    runs = {}
    for label in ("torch's", "placed"):
        engine = TorchEngine.load(str(directory), device="cpu", dtype="float32")
        if label == "placed":
            place_weights(engine)
        print(f"{label}: offsets {offsets(engine)}, kernels {engine.model.kernel}")
        runs[label] = dvt.contestants(label, engine, hf)
    steps: dict[str, list[float]] = {label: [] for label in runs}
    for r in range(a.rounds):
        for c in list(runs.values())[:: 1 if r % 2 else -1]:
            steps[c.label].append(statistics.median(dvt.infertop_steps(c, 1)))
    ratios = [p / t for p, t in zip(steps["placed"], steps["torch's"], strict=True)]
    print(f"{cpu_summary()}; torch {torch.__version__}; {a.shape}, batch 1, {a.rounds} rounds")
    for label, v in steps.items():
        print(f"{label}: median step {statistics.median(v) * 1e3:.3f} ms")
    print(
        f"placed / torch's, paired: {statistics.median(ratios):.3f} "
        f"({min(ratios):.3f}-{max(ratios):.3f})"
    )


if __name__ == "__main__":
    main()
