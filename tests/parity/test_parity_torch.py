"""infertop's torch model against transformers on the same saved weights (float32, and
bfloat16 against transformers' float32)."""

from __future__ import annotations

import pytest
import torch

from infertop.engine.backends.torch.engine import TorchEngine
from infertop.engine.backends.torch.kernels import candidates

BY_ROWS = "F.linear at B=1, oneDNN above"

STEPS = 16
BF16_TOLERANCE = 0.02  # logits here reach ~0.7; bfloat16 lands within ~0.005 of float32


def hf_greedy(model, prompts: torch.Tensor, steps: int):
    """Prefill logits, then `steps` decode logits and tokens, from transformers with its cache."""
    with torch.inference_mode():
        out = model(prompts, use_cache=True)
        prefill = out.logits
        past = out.past_key_values
        token = prefill[:, -1:].argmax(-1)
        logits, tokens = [], [token]
        for _ in range(steps):
            out = model(token, past_key_values=past, use_cache=True)
            past = out.past_key_values
            logits.append(out.logits[:, -1])
            token = out.logits[:, -1:].argmax(-1)
            tokens.append(token)
    return prefill, logits, torch.cat(tokens, dim=1)


def ours_greedy(engine: TorchEngine, prompts: torch.Tensor, steps: int):
    b, n = prompts.shape
    engine.prepare(b, n + steps + 1)
    prefill = engine.logits(prompts, 0, all_positions=True)
    token = prefill[:, -1:].argmax(-1)
    logits, tokens = [], [token]
    for s in range(steps):
        out = engine.logits(token, n + s)
        logits.append(out[:, -1])
        token = engine.decode(token, n + s)
        assert torch.equal(token, out[:, -1:].argmax(-1))
        tokens.append(token)
    return prefill, logits, torch.cat(tokens, dim=1)


@pytest.mark.parametrize("kernel", ["F.linear", "oneDNN packed", BY_ROWS, "C matmul"])
@pytest.mark.parametrize("kind", ["llama", "llama-tied", "qwen2", "qwen3", "mistral"])
@pytest.mark.parametrize("batch", [1, 4])
def test_logits_and_greedy_tokens_match_transformers(
    hf_models, kind: str, batch: int, kernel: str
) -> None:
    """Each candidate kernel of the load-time choice, forced on every projection. BY_ROWS
    runs F.linear for a decode step at batch 1 and oneDNN on the same plain weight for
    prefill and for decode at batch 4, so it covers oneDNN on a plain weight too. The C
    matvec runs batch 1's decode (F.linear the rest)."""
    hf, directory = hf_models[kind]
    engine = TorchEngine.load(str(directory), device="cpu", dtype="float32", kernel=kernel)
    assert set(engine.model.kernel_names.values()) == {kernel}
    prompts = torch.randint(0, 256, (batch, 24), generator=torch.Generator().manual_seed(batch))
    ref_prefill, ref_logits, ref_tokens = hf_greedy(hf, prompts, STEPS)
    prefill, logits, tokens = ours_greedy(engine, prompts, STEPS)
    torch.testing.assert_close(prefill, ref_prefill, atol=1e-4, rtol=0)
    for step, (got, want) in enumerate(zip(logits, ref_logits, strict=False)):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=0, msg=f"decode step {step}")
    assert torch.equal(tokens, ref_tokens)


def test_a_wrong_model_differs(hf_models) -> None:
    """The comparison above can fail: another model's weights give different logits."""
    hf, _ = hf_models["qwen2"]
    _, other_dir = hf_models["mistral"]
    engine = TorchEngine.load(str(other_dir), device="cpu", dtype="float32")
    prompts = torch.randint(0, 256, (1, 8), generator=torch.Generator().manual_seed(0))
    engine.prepare(1, 8)
    with torch.inference_mode():
        ref = hf(prompts).logits
    assert (engine.logits(prompts, 0, all_positions=True) - ref).abs().max() > 1e-2


def test_bfloat16_runs_close_to_float32(hf_models) -> None:
    _, directory = hf_models["llama"]
    f32 = TorchEngine.load(str(directory), device="cpu", dtype="float32")
    bf16 = TorchEngine.load(str(directory), device="cpu", dtype="bfloat16")
    prompts = torch.randint(0, 256, (2, 16), generator=torch.Generator().manual_seed(3))
    for e in (f32, bf16):
        e.prepare(2, 16)
    a = f32.logits(prompts, 0)
    b = bf16.logits(prompts, 0)
    assert b.dtype == torch.bfloat16
    assert (a - b.float()).abs().max() < 0.1


@pytest.mark.parametrize("kernel", ["F.linear", "oneDNN packed", "C matmul"])
@pytest.mark.parametrize("kind", ["llama", "qwen3"])
def test_each_bfloat16_kernel_runs_close_to_transformers_in_float32(
    hf_models, kind: str, kernel: str
) -> None:
    """Each candidate of a bfloat16 model's load-time choice, forced on every projection:
    prefill logits at every position and decode logits fed transformers' tokens."""
    if kernel not in [k.name for k in candidates(torch.device("cpu"), torch.bfloat16)]:
        pytest.skip(f"{kernel} does not run bfloat16 here (oneDNN: AVX512-BF16 or AMX; C: cc)")
    hf, directory = hf_models[kind]
    engine = TorchEngine.load(str(directory), device="cpu", dtype="bfloat16", kernel=kernel)
    assert set(engine.model.kernel_names.values()) == {kernel}
    prompts = torch.randint(0, 256, (2, 24), generator=torch.Generator().manual_seed(2))
    ref_prefill, ref_logits, ref_tokens = hf_greedy(hf, prompts, 6)
    engine.prepare(2, 32)
    prefill = engine.logits(prompts, 0, all_positions=True)
    assert prefill.dtype == torch.bfloat16
    assert (prefill.float() - ref_prefill).abs().max() < BF16_TOLERANCE
    # the bound tells logits apart: each position's against its neighbour's
    assert (prefill[:, 1:].float() - ref_prefill[:, :-1]).abs().max() > 5 * BF16_TOLERANCE
    for step, want in enumerate(ref_logits):
        got = engine.logits(ref_tokens[:, step : step + 1], 24 + step)[:, -1].float()
        assert (got - want).abs().max() < BF16_TOLERANCE, f"decode step {step}"
