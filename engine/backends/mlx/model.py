"""The Llama-family decoder in MLX (Llama 2/3, Qwen2/2.5, Qwen3, Mistral) with a
preallocated KV cache, shaped like the torch model: the same fused layer record
(engine/layer.py), rotary tables (engine/rope.py) and dummy weights (engine/dummy.py), so
both backends compute the same numbers to float32 rounding."""

from __future__ import annotations

import math

import mlx.core as mx

from infertop.engine.backend import LoadProgress
from infertop.engine.config import ModelConfig
from infertop.engine.dummy import dummy_block, is_norm
from infertop.engine.layer import Layer, Weights, fused_weights
from infertop.engine.rope import rope_tables
from infertop.engine.weights import Checkpoint, expected_shapes

MX_DTYPES = {"float32": mx.float32, "bfloat16": mx.bfloat16, "float16": mx.float16}


def _cat(parts: list[mx.array]) -> mx.array:
    """Concatenate now (MLX is lazy), so the parts can be freed layer by layer."""
    joined = mx.concatenate(parts, axis=0)
    mx.eval(joined)
    return joined


class MlxLlama:
    def __init__(self, cfg: ModelConfig, weights: Weights[mx.array], dtype: mx.Dtype) -> None:
        self.cfg = cfg
        self.layers = weights.layers
        self.embed = weights.embed
        self.norm = weights.norm
        self.lm_head = weights.lm_head
        self.dtype = dtype
        self.k_cache: list[mx.array] = []
        self.v_cache: list[mx.array] = []
        self.rope_cos = self.rope_sin = mx.zeros((0,))
        self.cache_batch = self.cache_len = 0

    @classmethod
    def from_tensors(
        cls, cfg: ModelConfig, tensors: dict[str, mx.array], dtype: mx.Dtype
    ) -> MlxLlama:
        # pop: each separate tensor is dropped once fused, so loading peaks at the model plus
        # one layer, not the model twice
        weights = fused_weights(cfg, tensors.pop, _cat)
        layers = [t for layer in weights.layers for t in vars(layer).values() if t is not None]
        mx.eval(weights.embed, weights.norm, weights.lm_head, layers)
        return cls(cfg, weights, dtype)

    @classmethod
    def from_checkpoint(
        cls, ckpt: Checkpoint, dtype: mx.Dtype, progress: LoadProgress | None = None
    ) -> MlxLlama:
        tensors: dict[str, mx.array] = {}
        files = sorted(set(ckpt.files.values()))
        for n, path in enumerate(files):
            loaded = mx.load(str(path))
            assert isinstance(loaded, dict)  # a .safetensors file loads as a dict
            tensors.update({k: v.astype(dtype) for k, v in loaded.items() if k in ckpt.files})
            if progress:
                progress(n + 1, len(files))
        return cls.from_tensors(ckpt.config, tensors, dtype)

    @classmethod
    def dummy(
        cls, cfg: ModelConfig, dtype: mx.Dtype, seed: int = 0, progress: LoadProgress | None = None
    ) -> MlxLlama:
        """Seeded weights with the exact shapes of `cfg`: the torch model's numbers."""
        shapes = expected_shapes(cfg)
        tensors: dict[str, mx.array] = {}
        for n, (name, shape) in enumerate(shapes.items()):
            if is_norm(name):
                tensors[name] = mx.ones(shape, dtype=dtype)
            else:
                numel = math.prod(shape)
                block = mx.array(dummy_block(seed, name, numel))
                reps = -(-numel // block.size)
                tensors[name] = mx.tile(block, reps)[:numel].reshape(shape).astype(dtype)
            if n % 16 == 0:
                mx.eval(tensors[name])
                if progress:
                    progress(n, len(shapes))
        return cls.from_tensors(cfg, tensors, dtype)

    def allocate_cache(self, batch_size: int, max_len: int) -> None:
        if batch_size == self.cache_batch and max_len <= self.cache_len:
            return
        cfg = self.cfg
        shape = (batch_size, cfg.num_key_value_heads, max_len, cfg.head_dim)
        self.k_cache = [mx.zeros(shape, dtype=self.dtype) for _ in range(cfg.num_hidden_layers)]
        self.v_cache = [mx.zeros(shape, dtype=self.dtype) for _ in range(cfg.num_hidden_layers)]
        cos, sin = rope_tables(cfg, max_len)
        self.rope_cos, self.rope_sin = (
            mx.array(cos).astype(self.dtype),
            mx.array(sin).astype(self.dtype),
        )
        mx.eval(self.k_cache, self.v_cache, self.rope_cos, self.rope_sin)
        self.cache_batch, self.cache_len = batch_size, max_len

    def free_cache(self) -> None:
        self.k_cache = self.v_cache = []
        self.cache_batch = self.cache_len = 0

    def _rope(self, x: mx.array, pos: int, end: int) -> mx.array:
        half = self.cfg.head_dim // 2
        rotated = mx.concatenate([x[..., half:], x[..., :half]], axis=-1)
        return x * self.rope_cos[pos:end] + rotated * self.rope_sin[pos:end]

    def _layer(self, x: mx.array, layer: Layer[mx.array], i: int, pos: int) -> mx.array:
        cfg = self.cfg
        bsz, seqlen, _ = x.shape
        nh, nkv, hd = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        end, eps = pos + seqlen, cfg.rms_norm_eps
        h = mx.fast.rms_norm(x, layer.ln1, eps)
        qkv = h @ layer.wqkv.T
        if layer.bqkv is not None:
            qkv = qkv + layer.bqkv
        q, k, v = mx.split(qkv, [nh * hd, (nh + nkv) * hd], axis=-1)
        q = q.reshape(bsz, seqlen, nh, hd).transpose(0, 2, 1, 3)
        k = k.reshape(bsz, seqlen, nkv, hd).transpose(0, 2, 1, 3)
        v = v.reshape(bsz, seqlen, nkv, hd).transpose(0, 2, 1, 3)
        if layer.q_norm is not None and layer.k_norm is not None:
            q = mx.fast.rms_norm(q, layer.q_norm, eps)
            k = mx.fast.rms_norm(k, layer.k_norm, eps)
        q, k = self._rope(q, pos, end), self._rope(k, pos, end)
        self.k_cache[i][:, :, pos:end, :] = k
        self.v_cache[i][:, :, pos:end, :] = v
        keys, values = self.k_cache[i][:, :, :end, :], self.v_cache[i][:, :, :end, :]
        mask = "causal" if seqlen > 1 else None
        o = mx.fast.scaled_dot_product_attention(q, keys, values, scale=hd**-0.5, mask=mask)
        x = x + o.transpose(0, 2, 1, 3).reshape(bsz, seqlen, nh * hd) @ layer.wo.T
        h = mx.fast.rms_norm(x, layer.ln2, eps)
        gate, up = mx.split(h @ layer.w13.T, 2, axis=-1)
        return x + (gate * mx.sigmoid(gate) * up) @ layer.w2.T

    def forward(self, tokens: mx.array, pos: int, all_logits: bool = False) -> mx.array:
        """Logits for `tokens` (B, T) at positions pos..pos+T-1 (the last only unless
        all_logits); prefill starts at 0, T == 1 is a decode step."""
        x = self.embed[tokens]
        for i, layer in enumerate(self.layers):
            x = self._layer(x, layer, i, pos)
        if not all_logits:
            x = x[:, -1:]
        return mx.fast.rms_norm(x, self.norm, self.cfg.rms_norm_eps) @ self.lm_head.T
