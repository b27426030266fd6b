"""The Llama-family decoder in MLX (mlx-lm's models/llama.py style) with a preallocated KV
cache: Llama 2/3 (llama3 rope scaling), Qwen2/2.5 (q/k/v bias), Qwen3 (q/k norm), Mistral.

Rotary tables come from the same inverse frequencies as the torch model (computed in numpy
here), so both backends agree to float32 rounding."""

from __future__ import annotations

from collections.abc import Callable

import mlx.core as mx
import numpy as np

from infertop.engine.config import ModelConfig
from infertop.engine.rope import rope_inv_freq
from infertop.engine.weights import Checkpoint, expected_shapes

Progress = Callable[[int, int], None]
MX_DTYPES = {"float32": mx.float32, "bfloat16": mx.bfloat16, "float16": mx.float16}


class MlxLlama:
    def __init__(self, cfg: ModelConfig, w: dict[str, mx.array], dtype: mx.Dtype) -> None:
        self.cfg = cfg
        self.w = w
        self.dtype = dtype
        self.lm_head = (
            w["model.embed_tokens.weight"] if cfg.tie_word_embeddings else w["lm_head.weight"]
        )
        self.k_cache: list[mx.array] = []
        self.v_cache: list[mx.array] = []
        self.cos = self.sin = mx.zeros((0,))
        self.cache_batch = self.cache_len = 0

    @classmethod
    def from_checkpoint(
        cls, ckpt: Checkpoint, dtype: mx.Dtype, progress: Progress | None = None
    ) -> MlxLlama:
        weights: dict[str, mx.array] = {}
        files = sorted(set(ckpt.files.values()))
        for n, path in enumerate(files):
            loaded = mx.load(str(path))
            weights.update({k: v.astype(dtype) for k, v in loaded.items() if k in ckpt.files})
            if progress:
                progress(n + 1, len(files))
        mx.eval(weights)
        return cls(ckpt.config, weights, dtype)

    @classmethod
    def dummy(
        cls, cfg: ModelConfig, dtype: mx.Dtype, seed: int = 0, progress: Progress | None = None
    ) -> MlxLlama:
        """Seeded random weights with the exact shapes of `cfg`."""
        key = mx.random.key(seed)
        weights = {}
        shapes = expected_shapes(cfg)
        for n, (name, shape) in enumerate(shapes.items()):
            if name.endswith("norm.weight"):
                weights[name] = mx.ones(shape, dtype=dtype)
            else:
                key, sub = mx.random.split(key)
                weights[name] = (0.02 * mx.random.normal(shape, key=sub)).astype(dtype)
            if n % 16 == 0:
                mx.eval(weights[name])
                if progress:
                    progress(n, len(shapes))
        mx.eval(weights)
        return cls(cfg, weights, dtype)

    def allocate_cache(self, batch_size: int, max_len: int) -> None:
        if batch_size == self.cache_batch and max_len <= self.cache_len:
            return
        cfg = self.cfg
        shape = (batch_size, cfg.num_key_value_heads, max_len, cfg.head_dim)
        self.k_cache = [mx.zeros(shape, dtype=self.dtype) for _ in range(cfg.num_hidden_layers)]
        self.v_cache = [mx.zeros(shape, dtype=self.dtype) for _ in range(cfg.num_hidden_layers)]
        freqs = np.outer(np.arange(max_len, dtype=np.float32), rope_inv_freq(cfg))
        emb = np.concatenate([freqs, freqs], axis=-1)
        sin = np.sin(emb)
        sin[:, : cfg.head_dim // 2] *= -1  # rotate_half's sign folded into sin
        self.cos = mx.array(np.cos(emb)).astype(self.dtype)
        self.sin = mx.array(sin).astype(self.dtype)
        mx.eval(self.k_cache, self.v_cache, self.cos, self.sin)
        self.cache_batch, self.cache_len = batch_size, max_len

    def _rope(self, x: mx.array, pos: int, end: int) -> mx.array:
        half = self.cfg.head_dim // 2
        rotated = mx.concatenate([x[..., half:], x[..., :half]], axis=-1)
        return x * self.cos[pos:end] + rotated * self.sin[pos:end]

    def forward(self, tokens: mx.array, pos: int, all_logits: bool = False) -> mx.array:
        cfg, w = self.cfg, self.w
        bsz, seqlen = tokens.shape
        nh, nkv, hd = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        end = pos + seqlen
        eps = cfg.rms_norm_eps
        scale = hd**-0.5
        x = w["model.embed_tokens.weight"][tokens]
        for i in range(cfg.num_hidden_layers):
            p = f"model.layers.{i}."
            a = p + "self_attn."
            h = mx.fast.rms_norm(x, w[p + "input_layernorm.weight"], eps)
            q = h @ w[a + "q_proj.weight"].T
            k = h @ w[a + "k_proj.weight"].T
            v = h @ w[a + "v_proj.weight"].T
            if cfg.attention_bias:
                q, k, v = (
                    q + w[a + "q_proj.bias"],
                    k + w[a + "k_proj.bias"],
                    v + w[a + "v_proj.bias"],
                )
            q = q.reshape(bsz, seqlen, nh, hd).transpose(0, 2, 1, 3)
            k = k.reshape(bsz, seqlen, nkv, hd).transpose(0, 2, 1, 3)
            v = v.reshape(bsz, seqlen, nkv, hd).transpose(0, 2, 1, 3)
            if cfg.qk_norm:
                q = mx.fast.rms_norm(q, w[a + "q_norm.weight"], eps)
                k = mx.fast.rms_norm(k, w[a + "k_norm.weight"], eps)
            q, k = self._rope(q, pos, end), self._rope(k, pos, end)
            self.k_cache[i][:, :, pos:end, :] = k
            self.v_cache[i][:, :, pos:end, :] = v
            keys, values = self.k_cache[i][:, :, :end, :], self.v_cache[i][:, :, :end, :]
            mask = "causal" if seqlen > 1 else None
            o = mx.fast.scaled_dot_product_attention(q, keys, values, scale=scale, mask=mask)
            o = o.transpose(0, 2, 1, 3).reshape(bsz, seqlen, nh * hd)
            x = x + o @ w[a + "o_proj.weight"].T
            h = mx.fast.rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
            m = p + "mlp."
            gate = h @ w[m + "gate_proj.weight"].T
            up = h @ w[m + "up_proj.weight"].T
            x = x + (gate * mx.sigmoid(gate) * up) @ w[m + "down_proj.weight"].T
        if not all_logits:
            x = x[:, -1:]
        x = mx.fast.rms_norm(x, w["model.norm.weight"], eps)
        return x @ self.lm_head.T
