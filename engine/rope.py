"""Rotary tables: inverse frequencies (default, linear and llama3 scaling as in
transformers' rope utils) and the cos/sin tables, computed in numpy float32 so the torch and
MLX models use the same numbers."""

from __future__ import annotations

import math

import numpy as np

from infertop.engine.config import ModelConfig


def rope_inv_freq(cfg: ModelConfig) -> np.ndarray:
    """Inverse frequencies with llama3 or linear scaling (transformers' rope utils)."""
    dim = cfg.head_dim
    inv = 1.0 / (cfg.rope_theta ** (np.arange(0, dim, 2, dtype=np.int64).astype(np.float32) / dim))
    inv = inv.astype(np.float32)
    scaling = cfg.rope_scaling or {}
    kind = scaling.get("rope_type", "default")
    if kind == "linear":
        return (inv / np.float32(scaling["factor"])).astype(np.float32)
    if kind == "llama3":
        factor = float(scaling["factor"])
        low, high = float(scaling["low_freq_factor"]), float(scaling["high_freq_factor"])
        old_len = float(scaling["original_max_position_embeddings"])
        wavelen = (2 * math.pi / inv).astype(np.float32)
        scaled = np.where(wavelen > old_len / low, inv / factor, inv).astype(np.float32)
        smooth = ((old_len / wavelen - low) / (high - low)).astype(np.float32)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < old_len / high) & ~(wavelen > old_len / low)
        return np.where(medium, smoothed, scaled).astype(np.float32)
    return inv


def rope_tables(cfg: ModelConfig, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin (max_len, head_dim) for rotate-half rotary embeddings, with rotate_half's
    sign folded into sin's first half (one multiply-add per element at run time)."""
    freqs = np.outer(np.arange(max_len, dtype=np.float32), rope_inv_freq(cfg))
    emb = np.concatenate([freqs, freqs], axis=-1)
    sin = np.sin(emb)
    sin[:, : cfg.head_dim // 2] *= -1
    return np.cos(emb).astype(np.float32), sin.astype(np.float32)
