"""The MLX engine, for real on the CPU (mlx[cpu]): parity with the torch engine on the same
saved weights, the CLI and TUI on it, timing honesty, and when Metal capture is enabled."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

mx = pytest.importorskip("mlx.core")

from infertop.engine.backends.mlx.engine import MlxEngine  # noqa: E402
from infertop.engine.backends.torch.engine import TorchEngine  # noqa: E402
from infertop.engine.config import RunConfig  # noqa: E402
from infertop.engine.events import RESULT_KEYS  # noqa: E402
from infertop.engine.runner import Runner  # noqa: E402

STEPS = 16


def greedy(engine, prompts, steps: int):
    b, n = prompts.shape
    engine.prepare(b, n + steps + 1)
    prefill = np.array(engine.logits(prompts, 0, all_positions=True), dtype=np.float32)
    token = engine.prefill(prompts)
    engine.wait(token)
    logits, tokens = [], [np.array(token)]
    for s in range(steps):
        logits.append(np.array(engine.logits(token, n + s), dtype=np.float32)[:, -1])
        token = engine.decode(token, n + s)
        engine.wait(token)
        tokens.append(np.array(token))
    return prefill, logits, np.concatenate(tokens, axis=1)


@pytest.mark.parametrize("kind", ["llama", "qwen2", "qwen3"])
@pytest.mark.parametrize("batch", [1, 4])
def test_mlx_matches_torch_on_the_same_directory(hf_models, kind: str, batch: int) -> None:
    _, directory = hf_models[kind]
    t = TorchEngine.load(str(directory), device="cpu")
    m = MlxEngine.load(str(directory))
    prompts = torch.randint(0, 256, (batch, 24), generator=torch.Generator().manual_seed(batch))
    tp, tl, tt = greedy(t, prompts, STEPS)
    mp, ml, mt = greedy(m, mx.array(prompts.numpy()), STEPS)
    np.testing.assert_allclose(mp, tp, atol=1e-4, rtol=0)
    for step, (a, b) in enumerate(zip(ml, tl, strict=True)):
        np.testing.assert_allclose(a, b, atol=1e-4, rtol=0, err_msg=f"decode step {step}")
    np.testing.assert_array_equal(mt, tt)


def test_dummy_weights_and_prompts_are_the_same_in_both_backends() -> None:
    """One dummy-weight rule and one prompt helper (engine/dummy.py): a preset loaded by
    each backend with the same seed gives the same prompts and the same logits."""
    t = TorchEngine.load("tiny", device="cpu", seed=7)
    m = MlxEngine.load("tiny", seed=7)
    tp, mp = t.random_prompts(2, 12, seed=3), m.random_prompts(2, 12, seed=3)
    np.testing.assert_array_equal(np.array(mp), tp.numpy())
    np.testing.assert_allclose(greedy(m, mp, 4)[0], greedy(t, tp, 4)[0], atol=1e-5, rtol=0)
    other = MlxEngine.load("tiny", seed=8)  # and the seed matters
    assert not np.allclose(greedy(other, mp, 4)[0], greedy(t, tp, 4)[0], atol=1e-3)


def test_bench_on_mlx_writes_the_same_keys(tmp_path: Path) -> None:
    out = tmp_path / "mlx.jsonl"
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "infertop",
            "bench",
            "--backend",
            "mlx",
            "--model",
            "tiny",
            "--batch-size",
            "1",
            "2",
            "--input-len",
            "16",
            "--output-len",
            "4",
            "--result-filename",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert p.returncode == 0, p.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["batch_size"] for r in rows] == [1, 2]
    assert all(tuple(r) == RESULT_KEYS for r in rows)
    assert "[mlx]" in p.stdout


async def test_tui_runs_on_mlx(tmp_path: Path) -> None:
    from infertop.engine.session import Session
    from infertop.tui.app import InfertopApp

    cfg = RunConfig(
        model="tiny",
        backend="mlx",
        batch_sizes=(1,),
        input_lens=(8,),
        output_lens=(8,),
        trace_dir=str(tmp_path),
    )
    session = Session(cfg)
    app = InfertopApp(session, refresh_hz=10)
    async with app.run_test(size=(120, 40)) as pilot:
        end = time.monotonic() + 30
        while len(app.stats.results) < 2:
            assert time.monotonic() < end
            await pilot.pause(0.05)
        assert app.ready is not None and app.ready.backend == "mlx"
        await pilot.press("q")
    assert session.finished.is_set()


def test_a_decode_step_is_timed_with_its_evaluation() -> None:
    """MLX is lazy: without mx.eval a step would look nearly free."""
    from infertop.engine.config import ModelConfig

    cfg = ModelConfig(
        model_type="llama",
        vocab_size=8000,
        hidden_size=512,
        intermediate_size=1536,
        num_hidden_layers=6,
        num_attention_heads=8,
        num_key_value_heads=8,
        head_dim=64,
        max_position_embeddings=512,
        name="honesty",
    )
    from infertop.engine.backends.mlx.model import MlxLlama

    engine = MlxEngine(MlxLlama.dummy(cfg, mx.float32), "float32")
    tokens = engine.random_prompts(1, 16, 0)
    engine.prepare(1, 64)
    token = engine.prefill(tokens)
    engine.wait(token)
    lazy, timed = [], []
    for s in range(8):
        t0 = time.perf_counter()
        out = engine.decode(token, 16 + 2 * s)  # graph built, not run
        lazy.append(time.perf_counter() - t0)
        engine.wait(out)
        t0 = time.perf_counter()
        token = engine.decode(out, 17 + 2 * s)
        engine.wait(token)
        timed.append(time.perf_counter() - t0)
    (result,) = Runner(
        engine,
        RunConfig(model="x", batch_sizes=(1,), input_lens=(16,), output_lens=(9,), warmup=False),
        lambda e: None,
    ).run()
    measured = float(np.median(result.decode_latencies))
    assert float(np.median(timed)) > 5 * float(np.median(lazy))
    assert measured >= 0.5 * float(np.median(timed))


CHECK_ENV = """
import os, sys
seen = {}
class Watch:
    def find_spec(self, name, path=None, target=None):
        if name == "mlx.core" and "mlx" not in seen:  # Metal starts with mlx.core
            seen["mlx"] = os.environ.get("MTL_CAPTURE_ENABLED")
        return None
sys.meta_path.insert(0, Watch())
from infertop.engine.config import RunConfig
from infertop.engine.loader import load_engine
load_engine(RunConfig(model="tiny", backend="mlx"))
print(seen.get("mlx"))
"""


def test_capture_env_is_set_before_mlx_is_imported() -> None:
    env = {k: v for k, v in __import__("os").environ.items() if k != "MTL_CAPTURE_ENABLED"}
    p = subprocess.run(
        [sys.executable, "-c", CHECK_ENV], capture_output=True, text=True, timeout=120, env=env
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "1"
