"""Where the eager decode step's time beyond the matvec floor goes: the step with parts of
its layer body taken out (attention, the norms, everything but the matmuls), timed in turns
in one process with the floor of the same matrices (bench/RESULTS.md, issue 15). Two more
rows split the full step: the time spent inside its matmul calls, and the step with every
matmul made free (each returns an output it computed once), which is what the ops between
the matmuls cost when no weights stream through the caches between them.

    python bench/step_ablation.py --shape 56M --rounds 8
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from decode_vs_transformers import matvec_steps  # noqa: E402
from machine import cpu_summary  # noqa: E402
from quantiles import paired  # noqa: E402
from step_ab import STEPS, config_of, median_step, prompt_and_token  # noqa: E402

import infertop.engine.backends.torch.model as model_module  # noqa: E402
from infertop.engine.backends.torch.kernels import Linear, Linears  # noqa: E402
from infertop.engine.backends.torch.model import Attend, Layer, rotary  # noqa: E402
from infertop.engine.config import ModelConfig  # noqa: E402

T = torch.Tensor
Body = Callable[[T, Layer, ModelConfig, Linears, T, T, Attend], T]
FULL: Body = model_module.decoder_layer


def without_attention(
    x: T, layer: Layer, cfg: ModelConfig, lin: Linears, cos: T, sin: T, attend: Attend
) -> T:
    def passthrough(q: T, k: T, v: T) -> T:
        return q.reshape(q.shape[0], q.shape[1], -1)

    return FULL(x, layer, cfg, lin, cos, sin, passthrough)


def without_norms(
    x: T, layer: Layer, cfg: ModelConfig, lin: Linears, cos: T, sin: T, attend: Attend
) -> T:
    q, k, v = rotary(lin.qkv(x, layer.wqkv, layer.bqkv), cfg, cos, sin, None, None)
    x = x + lin.o(attend(q, k, v), layer.wo)
    gate, up = lin.gate_up(x, layer.w13).chunk(2, dim=-1)
    return x + lin.down(F.silu(gate) * up, layer.w2)


def matmuls_only(
    x: T, layer: Layer, cfg: ModelConfig, lin: Linears, cos: T, sin: T, attend: Attend
) -> T:
    x = x + lin.o(lin.qkv(x, layer.wqkv, layer.bqkv)[..., : cfg.hidden_size], layer.wo)
    gate, _ = lin.gate_up(x, layer.w13).chunk(2, dim=-1)
    return x + lin.down(gate, layer.w2)


BODIES: dict[str, Body] = {
    "full step": FULL,
    "no attention": without_attention,
    "no norms": without_norms,
    "matmuls only": matmuls_only,
}


def each_linear(linears: Linears, wrap: Callable[[Linear], Linear]) -> Linears:
    return Linears(**{f.name: wrap(getattr(linears, f.name)) for f in fields(Linears)})


def free(linear: Linear) -> Linear:
    """The kernel run once per input shape and weight; later calls return that output."""
    outputs: dict[tuple[object, ...], T] = {}

    def call(x: T, w: T, b: T | None = None) -> T:
        key = (tuple(x.shape), id(w))  # a packed weight has no data_ptr; each lives on
        if key not in outputs:
            outputs[key] = linear(x, w, b)
        return outputs[key]

    return call


def matmul_seconds(m: model_module.TorchLlama, prompt: T, token: T) -> float:
    """The median over decode steps of the time spent inside the step's matmul calls."""
    spent = [0.0]

    def timed(linear: Linear) -> Linear:
        def call(x: T, w: T, b: T | None = None) -> T:
            t0 = time.perf_counter()
            out = linear(x, w, b)
            spent[0] += time.perf_counter() - t0
            return out

        return call

    kernels = m.linears
    m.linears = each_linear(kernels, timed)
    try:
        m.forward(prompt, 0)
        per_step = []
        for pos in STEPS:
            spent[0] = 0.0
            m.forward(token, pos)
            per_step.append(spent[0])
    finally:
        m.linears = kernels
    return statistics.median(per_step)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shape", default="56M", help="56M, 250M or a preset (tiny, ...)")
    p.add_argument("--rounds", type=int, default=8)
    a = p.parse_args()
    cfg = config_of(a.shape)
    m = model_module.TorchLlama.dummy(cfg, torch.float32, torch.device("cpu"))
    m.choose_kernels((1, 8))
    m.allocate_cache(1, STEPS.stop)
    prompt, token = prompt_and_token(cfg, 1)
    extra = ["in its matmuls", "matmuls free", "matvec floor"]
    times: dict[str, list[float]] = {k: [] for k in [*BODIES, *extra]}
    kernels = m.linears
    with torch.inference_mode():
        for _ in range(a.rounds):
            for name, body in BODIES.items():
                model_module.decoder_layer = body  # forward looks it up at each call
                times[name].append(median_step(m, prompt, token))
            model_module.decoder_layer = FULL
            times["in its matmuls"].append(matmul_seconds(m, prompt, token))
            m.linears = each_linear(kernels, free)
            times["matmuls free"].append(median_step(m, prompt, token))
            m.linears = kernels
            floor = matvec_steps(m.weight_matrices(), 1, 32)
            times["matvec floor"].append(statistics.median(floor))
    print(f"{cpu_summary()}; torch {torch.__version__}; {a.shape}, B=1, {a.rounds} rounds")
    print(f"kernels: {m.kernel}")
    for name, t in times.items():
        print(
            f"{name:>14}  {statistics.median(t) * 1e3:8.3f} ms  / floor, paired: "
            f"{paired(t, times['matvec floor'])}"
        )


if __name__ == "__main__":
    main()
