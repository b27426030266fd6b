"""MLX engine speed on this machine, side by side in one process: infertop's MLX engine
against infertop's torch engine and against mlx-lm's own generate_step, on the same weights.

On Linux MLX runs on the CPU through mlx[cpu], whose wheel bundles a single-threaded
reference BLAS: a correctness backend here, so expect large ratios.

    python bench/mlx_vs_torch.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import mlx.core as mx
import torch

from infertop.engine.backends.mlx.engine import MlxEngine
from infertop.engine.backends.torch.engine import TorchEngine
from infertop.engine.config import RunConfig
from infertop.engine.runner import Runner

SHAPE = dict(
    hidden_size=512,
    intermediate_size=1376,
    num_hidden_layers=8,
    num_attention_heads=8,
    num_key_value_heads=8,
    vocab_size=32000,
)
INPUT, OUTPUT = 128, 32


def save_model(directory: Path) -> None:
    import transformers

    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(**SHAPE, max_position_embeddings=2048)
    transformers.LlamaForCausalLM(cfg).eval().save_pretrained(directory)


def engine_step(engine, batch: int) -> float:
    cfg = RunConfig(
        model="x", batch_sizes=(batch,), input_lens=(INPUT,), output_lens=(OUTPUT,), warmup=False
    )
    (r,) = Runner(engine, cfg, lambda e: None).run()
    return statistics.median(r.decode_latencies)


def mlx_lm_step(model, prompt: mx.array) -> float | None:
    from mlx_lm.generate import generate_step

    stamps = []
    for _ in generate_step(prompt, model, max_tokens=OUTPUT):
        stamps.append(time.perf_counter())
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    return statistics.median(gaps) if gaps else None


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    directory = Path(tempfile.mkdtemp()) / "llama-56m"
    save_model(directory)
    mlx_engine = MlxEngine.load(str(directory))
    torch_engine = TorchEngine.load(str(directory), device="cpu")
    try:
        from mlx_lm.utils import load_model

        mlx_lm_model, _ = load_model(directory)
    except Exception as e:  # noqa: BLE001 - mlx-lm is optional
        print(f"mlx-lm unavailable ({e}); skipping that column")
        mlx_lm_model = None
    prompt = mx.array(torch_engine.random_prompts(1, INPUT, 42)[0].numpy())
    for e in (mlx_engine, torch_engine):
        engine_step(e, 1)  # warm up
    rows: dict[str, list[float]] = {"mlx": [], "torch": [], "mlx-lm": []}
    for _ in range(args.rounds):
        rows["mlx"].append(engine_step(mlx_engine, 1))
        rows["torch"].append(engine_step(torch_engine, 1))
        if mlx_lm_model is not None:
            step = mlx_lm_step(mlx_lm_model, prompt)
            if step:
                rows["mlx-lm"].append(step)
    med = {k: statistics.median(v) for k, v in rows.items() if v}
    print(
        f"mlx {mx.__version__} on {mlx_engine.device_name}; torch {torch.__version__} "
        f"({torch.get_num_threads()} threads, {torch_engine.model.kernel}); 56M llama, B=1, "
        f"in {INPUT}, out {OUTPUT}, {args.rounds} rounds"
    )
    print(
        f"decode step: infertop-mlx {med['mlx'] * 1e3:.2f} ms, infertop-torch "
        f"{med['torch'] * 1e3:.2f} ms, ratio mlx/torch {med['mlx'] / med['torch']:.1f}x"
    )
    if "mlx-lm" in med:
        print(
            f"mlx-lm generate_step {med['mlx-lm'] * 1e3:.2f} ms, ratio infertop-mlx/mlx-lm "
            f"{med['mlx'] / med['mlx-lm']:.2f}x"
        )


if __name__ == "__main__":
    main()
