"""The eager decode step of engine/backends/torch/model.py against the same file at another
git revision, in one process, interleaved round by round (this machine is noisy: only
paired ratios compare). Both models get the same dummy weights and the kernels chosen at
load; the matvec floor of the same matrices is timed in every round too.

    python bench/step_ab.py --against HEAD~1 --shape 56M --rounds 16
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import torch

sys.path.insert(0, str(Path(__file__).parent))
from decode_vs_transformers import SHAPES, matvec_steps  # noqa: E402
from machine import cpu_summary  # noqa: E402
from quantiles import paired  # noqa: E402

import infertop.engine.backends.torch.model as current  # noqa: E402
from infertop.engine.config import ModelConfig, config_from_hf_dict  # noqa: E402
from infertop.engine.weights import resolve_model  # noqa: E402

MODEL = "engine/backends/torch/model.py"
STEPS = range(128, 160)  # input 128, output 32, as decode_vs_transformers.py


def model_at(rev: str) -> ModuleType:
    """model.py as it was at `rev`, imported as a module of its own."""
    root = Path(__file__).resolve().parent.parent
    source = subprocess.run(
        ["git", "show", f"{rev}:{MODEL}"], cwd=root, capture_output=True, text=True, check=True
    ).stdout
    path = Path(tempfile.mkdtemp(prefix="infertop-ab-")) / "model_at_rev.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("model_at_rev", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def config_of(shape: str) -> ModelConfig:
    by_name = {s.name: s for s in SHAPES}
    if shape in by_name:
        return config_from_hf_dict(by_name[shape].hf_config().to_dict(), shape, "bench")
    return resolve_model(shape, dummy=True)[0]


def prompt_and_token(cfg: ModelConfig, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The seeded prompt (batch, STEPS.start) and the token every timed step feeds."""
    gen = torch.Generator().manual_seed(0)
    prompt = torch.randint(0, cfg.vocab_size, (batch, STEPS.start), generator=gen)
    token = torch.randint(0, cfg.vocab_size, (batch, 1), generator=gen)
    return prompt, token


def median_step(model, prompt: torch.Tensor, token: torch.Tensor) -> float:
    model.forward(prompt, 0)
    times = []
    for pos in STEPS:
        t0 = time.perf_counter()
        model.forward(token, pos)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--against", default="HEAD", help="the git revision to compare with")
    p.add_argument("--shape", default="56M", help="56M, 250M or a preset (tiny, ...)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--rounds", type=int, default=16)
    a = p.parse_args()
    cfg = config_of(a.shape)
    models = {}
    for name, module in ((a.against, model_at(a.against)), ("working tree", current)):
        m = module.TorchLlama.dummy(cfg, torch.float32, torch.device("cpu"))
        m.choose_kernels((1, 8))
        m.allocate_cache(a.batch, STEPS.stop)
        models[name] = m
    prompt, token = prompt_and_token(cfg, a.batch)
    with torch.inference_mode():
        old, new = (m.forward(prompt, 0) for m in models.values())
        diff = (old - new).abs().max().item()
        times: dict[str, list[float]] = {k: [] for k in (*models, "matvec floor")}
        for r in range(a.rounds):
            order = list(models) if r % 2 == 0 else list(reversed(models))
            for name in order:
                times[name].append(median_step(models[name], prompt, token))
            floor = matvec_steps(models["working tree"].weight_matrices(), a.batch, 32)
            times["matvec floor"].append(statistics.median(floor))
    print(f"{cpu_summary()}; {a.shape}, B={a.batch}, {a.rounds} rounds")
    print(f"prefill logits, largest difference: {diff:.2e}")
    base = times[a.against]
    for name, t in times.items():
        floor = [x / y for x, y in zip(t, times["matvec floor"], strict=True)]
        print(
            f"{name:>14}  {statistics.median(t) * 1e3:8.3f} ms  / {a.against}: "
            f"{paired(t, base, digits=3)}  "
            f"/ floor: {statistics.median(floor):.2f}"
        )


if __name__ == "__main__":
    main()
