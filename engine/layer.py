"""The fused decoder-layer record both backends build from Hugging Face tensor names: q/k/v
and gate/up concatenated, so each layer runs four large matmuls instead of seven."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from infertop.engine.config import ModelConfig

A = TypeVar("A")  # the backend's array type (torch.Tensor, mx.array)


@dataclass
class Layer(Generic[A]):
    """One decoder layer's tensors, fused for fewer and larger matmuls."""

    ln1: A
    wqkv: A
    bqkv: A | None  # Qwen2's q/k/v bias
    q_norm: A | None  # Qwen3's per-head norms
    k_norm: A | None
    wo: A
    ln2: A
    w13: A
    w2: A


@dataclass
class Weights(Generic[A]):
    """A whole model's tensors; lm_head is the embedding itself when the two are tied."""

    embed: A
    layers: list[Layer[A]]
    norm: A
    lm_head: A


def fused_weights(
    cfg: ModelConfig, get: Callable[[str], A], cat: Callable[[list[A]], A]
) -> Weights[A]:
    """Build the record from `get(hf_name)`, layer by layer; `cat` joins along dim 0."""
    layers = []
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        att, mlp = p + "self_attn.", p + "mlp."
        layers.append(
            Layer(
                ln1=get(p + "input_layernorm.weight"),
                wqkv=cat([get(att + f"{n}_proj.weight") for n in "qkv"]),
                bqkv=cat([get(att + f"{n}_proj.bias") for n in "qkv"])
                if cfg.attention_bias
                else None,
                q_norm=get(att + "q_norm.weight") if cfg.qk_norm else None,
                k_norm=get(att + "k_norm.weight") if cfg.qk_norm else None,
                wo=get(att + "o_proj.weight"),
                ln2=get(p + "post_attention_layernorm.weight"),
                w13=cat([get(mlp + "gate_proj.weight"), get(mlp + "up_proj.weight")]),
                w2=get(mlp + "down_proj.weight"),
            )
        )
    embed = get("model.embed_tokens.weight")
    lm_head = embed if cfg.tie_word_embeddings else get("lm_head.weight")
    return Weights(embed, layers, get("model.norm.weight"), lm_head)
