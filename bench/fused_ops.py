"""What fusing the decode step's ops between the matmuls into C buys (fused_ops.c): the same
model (one copy: the same weights, the kernels chosen at load) steps with its ATen ops and
with the fused C ops, taking turns round by round, with the matvec floor of the same
matrices timed in every round. Input 128, output 32, as decode_vs_transformers.py.

    python bench/fused_ops.py --shapes tiny 56M smollm2-135m 250M --batches 1 8 --rounds 6
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from decode_vs_transformers import matvec_steps  # noqa: E402
from machine import cpu_summary  # noqa: E402
from quantiles import paired  # noqa: E402
from step_ab import STEPS, config_of, median_step, prompt_and_token  # noqa: E402

from infertop.engine.backends.torch.model import TorchLlama  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shapes", nargs="+", default=["tiny", "56M", "smollm2-135m", "250M"])
    p.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    p.add_argument("--rounds", type=int, default=6)
    a = p.parse_args()
    print(f"{cpu_summary()}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{a.rounds} rounds; each figure the median over rounds of a round's median step\n")
    head = ("shape", "B", "ATen ops ms", "fused C ops ms", "fused / ATen", "ATen / floor")
    print("| " + " | ".join((*head, "fused / floor")) + " |")
    print("|---|---|---|---|---|---|---|")
    for shape in a.shapes:
        cfg = config_of(shape)
        model = TorchLlama.dummy(cfg, torch.float32, torch.device("cpu"))
        model.choose_kernels((1, max(a.batches)))
        model.fuse_ops()
        fused = model.fused
        assert fused is not None, model.ops
        for batch in a.batches:
            model.allocate_cache(batch, STEPS.stop)
            prompt, token = prompt_and_token(cfg, batch)
            times: dict[str, list[float]] = {"aten": [], "fused": [], "floor": []}
            with torch.inference_mode():
                for r in range(a.rounds):
                    for name in ("aten", "fused") if r % 2 == 0 else ("fused", "aten"):
                        model.fused = fused if name == "fused" else None
                        times[name].append(median_step(model, prompt, token))
                    floor = matvec_steps(model.weight_matrices(), batch, 32)
                    times["floor"].append(statistics.median(floor))
            model.free_cache()
            aten, fast, floor = times["aten"], times["fused"], times["floor"]
            print(
                f"| {shape} | {batch} | {statistics.median(aten) * 1e3:.3f} "
                f"| {statistics.median(fast) * 1e3:.3f} | {paired(fast, aten)} "
                f"| {paired(aten, floor)} | {paired(fast, floor)} |",
                flush=True,
            )
        model.fused = fused
    print(f"\nkernels: the engine's choice at load; fused library: {fused.library.name}")


if __name__ == "__main__":
    main()
