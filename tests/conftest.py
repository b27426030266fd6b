"""Shared fixtures: small random Hugging Face models saved to disk, and the tiny engine."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

LLAMA3_ROPE = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 64,
}


@pytest.fixture(scope="session", autouse=True)
def a_session_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One cache for the compiled decode steps per test session, shared by the xdist
    workers (their temp dirs sit side by side) and never the user's ~/.cache: the same tiny
    model compiles once, and every session compiles afresh."""
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "infertop-cache"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INFERTOP_CACHE_DIR", str(root))
        yield root


@pytest.fixture(autouse=True)
def in_a_temp_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each test runs in its own directory: `infertop bench` writes result.jsonl and ./traces
    where it runs (as bench_one_batch does), never into the checkout."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


def hf_config(kind: str):  # noqa: ANN201
    import transformers

    common = dict(
        hidden_size=64,
        intermediate_size=160,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=256,
        max_position_embeddings=512,
    )
    if kind == "llama":
        return transformers.LlamaConfig(**common, rope_scaling=LLAMA3_ROPE, rms_norm_eps=1e-5)
    if kind == "llama-tied":
        return transformers.LlamaConfig(**common, tie_word_embeddings=True)
    if kind == "qwen2":
        return transformers.Qwen2Config(**common, rope_theta=1e6)
    if kind == "qwen3":
        return transformers.Qwen3Config(**common, head_dim=32)
    if kind == "mistral":
        return transformers.MistralConfig(**common)
    raise ValueError(kind)


def save_hf_model(kind: str, directory: Path, **save_kw: object):  # noqa: ANN201
    import transformers

    torch.manual_seed(1234)
    model = transformers.AutoModelForCausalLM.from_config(hf_config(kind)).eval()
    # Non-trivial norm weights and biases so that a mix-up shows in the logits.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith("bias"):
                p.copy_(1.0 + 0.1 * torch.randn_like(p) if "norm" in name else torch.randn_like(p))
    model.save_pretrained(directory, **save_kw)
    return model


@pytest.fixture(scope="session")
def hf_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[object, Path]]:
    """kind -> (transformers model, directory it was saved to)."""
    out = {}
    for kind in ("llama", "llama-tied", "qwen2", "qwen3", "mistral"):
        d = tmp_path_factory.mktemp(kind)
        out[kind] = (save_hf_model(kind, d), d)
    return out
