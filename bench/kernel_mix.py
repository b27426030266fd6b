"""The decode step under each way of choosing its matmul kernels, side by side in one process
(bench/RESULTS.md, issue 15): the load-time choice as the engine makes it (each projection
timed on its layers' weights in turn), the same choice timed on one weight called again
(how it was made before: from the cache), and every projection forced to one kernel, or to
F.linear at batch 1 and oneDNN on the same plain weight above. The contestants whose kernels
all run on plain weights share one model (only the kernels change between them); a
contestant with packed weights has a copy of its own.

Each round times every contestant's prefill of 128 tokens and its median decode step after
it (32 steps), at batch 1 and at batch 8, the contestants taking turns in a rotating order;
the figures are medians over rounds, and the ratios are paired per round against the
fastest contestant of the round.

    python bench/kernel_mix.py --shape 250M --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from machine import cpu_summary  # noqa: E402
from quantiles import paired  # noqa: E402
from step_ab import STEPS, config_of, median_step, prompt_and_token  # noqa: E402

from infertop.engine.backends.torch.kernels import (  # noqa: E402
    PROJECTIONS,
    Kernel,
    Linears,
    candidates,
    choose_kernels,
    kernel_named,
    summary_of,
    unchanged,
)
from infertop.engine.backends.torch.model import TorchLlama  # noqa: E402

CPU, F32 = torch.device("cpu"), torch.float32
BATCHES = (1, 8)
FORCED = ("F.linear", "oneDNN packed", "oneDNN", "F.linear at B=1, oneDNN above")


Contestant = tuple[TorchLlama, Linears]  # a model, and the kernels its projections run


def contestants(shape: str) -> dict[str, Contestant]:
    """Every contestant whose kernels all run on plain weights shares one model: on this VM
    two copies of the same model with the same kernels differed by 10-20% (where each copy
    lies in memory), more than some of the kernels do."""
    cfg = config_of(shape)
    plain = TorchLlama.dummy(cfg, F32, CPU)

    def on_weights(kernels: dict[str, Kernel]) -> Contestant:
        if all(k.pack is unchanged for k in kernels.values()):
            return plain, Linears(**{p: k.run for p, k in kernels.items()})
        model = TorchLlama.dummy(cfg, F32, CPU)
        model.use_kernels(kernels)
        return model, model.linears

    layers, kinds = plain.projection_layers(), candidates(CPU, F32)
    in_turn = choose_kernels(layers, BATCHES, kinds)
    one_weight = choose_kernels({p: ws[:1] for p, ws in layers.items()}, BATCHES, kinds)
    out: dict[str, Contestant] = {}
    for label, choices in (("layers in turn", in_turn), ("one weight", one_weight)):
        kernels = {p: c.kernel for p, c in choices.items()}
        out[f"chosen, {label}: {summary_of(k.name for k in kernels.values())}"] = on_weights(
            kernels
        )
    for name in FORCED:
        out[f"all {name}"] = on_weights(dict.fromkeys(PROJECTIONS, kernel_named(name, CPU, F32)))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shape", default="250M", help="56M, 250M or a preset (smollm2-135m, ...)")
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()
    models = contestants(a.shape)
    cfg = config_of(a.shape)
    print(f"{cpu_summary()}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{a.shape}, float32, input {STEPS.start}, {len(STEPS)} steps, {a.rounds} rounds")
    for batch in BATCHES:
        prompt, token = prompt_and_token(cfg, batch)
        steps: dict[str, list[float]] = {n: [] for n in models}
        prefills: dict[str, list[float]] = {n: [] for n in models}
        with torch.inference_mode():
            for r in range(a.rounds):
                names = list(models)
                for name in names[r % len(names) :] + names[: r % len(names)]:
                    m, linears = models[name]
                    m.linears = linears
                    m.allocate_cache(batch, STEPS.stop)
                    t0 = time.perf_counter()
                    m.forward(prompt, 0)
                    prefills[name].append(time.perf_counter() - t0)
                    steps[name].append(median_step(m, prompt, token))
                    m.free_cache()
        head = f"decode step ms | / fastest | prefill of {STEPS.start} ms | / fastest"
        print(f"\n| B={batch} | {head} |")
        print("|---|---|---|---|---|")
        best_step = [min(per) for per in zip(*steps.values(), strict=True)]
        best_prefill = [min(per) for per in zip(*prefills.values(), strict=True)]
        for name in models:
            step, prefill = steps[name], prefills[name]
            print(
                f"| {name} | {statistics.median(step) * 1e3:.3f} | {paired(step, best_step)} "
                f"| {statistics.median(prefill) * 1e3:.1f} | {paired(prefill, best_prefill)} |"
            )


if __name__ == "__main__":
    main()
