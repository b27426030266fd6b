"""The Llama-family decoder in torch (Llama 2/3, Qwen2/2.5, Qwen3, Mistral) with a static KV cache.

Written for a low fixed cost per decode step: fused q/k/v and gate/up projections, one
rotary pass over q and k together, and grouped-query decode attention that folds the query
group into the sequence axis so no key/value head is ever repeated. A float32 decode step on
a CPU runs the ops between its matmuls in C instead (fused_decode.py), once they are fused.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F

from infertop.engine.backend import LoadProgress
from infertop.engine.backends.torch.fused_build import load_fused_ops
from infertop.engine.backends.torch.fused_decode import FusedDecode
from infertop.engine.backends.torch.kernels import (
    PLAIN,
    PROJECTIONS,
    Kernel,
    KernelChoice,
    Linear,
    Linears,
    candidates,
    choose_kernels,
    summary_of,
)
from infertop.engine.config import ModelConfig
from infertop.engine.dummy import dummy_block, is_norm
from infertop.engine.layer import Layer as GenericLayer
from infertop.engine.layer import Weights, fused_weights
from infertop.engine.memory import trim_heap
from infertop.engine.rope import rope_tables
from infertop.engine.weights import Checkpoint, expected_shapes


def dummy_tensor(
    seed: int, name: str, shape: tuple[int, ...], device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """A tensor of the dummy rule (engine/dummy.py; float32 values, rounded to `dtype`), built
    on `device`: one block, repeated (a GPU gets the small block, not a whole host copy of
    each tensor). Built in `dtype`, not cast from float32: a float32 copy of a bfloat16
    model's embedding (545 MB for qwen2.5-0.5b) was a third of its load peak."""
    t = torch.empty(shape, dtype=dtype, device=device)
    flat = t.view(-1)
    block = torch.from_numpy(dummy_block(seed, name, flat.numel())).to(device, dtype)
    for start in range(0, flat.numel(), block.numel()):
        part = flat[start : start + block.numel()]
        part.copy_(block[: part.numel()])
    return t


def rotary(
    qkv: torch.Tensor,
    cfg: ModelConfig,
    cos: torch.Tensor,
    sin: torch.Tensor,
    q_norm: torch.Tensor | None,
    k_norm: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split fused q/k/v (B, T, ...) into heads and rotate q and k in one pass (after
    Qwen3's per-head norms). cos/sin: (T, head_dim), rotate_half's sign folded into sin."""
    bsz, seqlen = qkv.shape[0], qkv.shape[1]
    nh, nkv, hd = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
    qk_width = (nh + nkv) * hd
    qk = qkv[..., :qk_width].view(bsz, seqlen, nh + nkv, hd)
    v = qkv[..., qk_width:].view(bsz, seqlen, nkv, hd)
    if q_norm is not None and k_norm is not None:
        q = F.rms_norm(qk[:, :, :nh], (hd,), q_norm, cfg.rms_norm_eps)
        k = F.rms_norm(qk[:, :, nh:], (hd,), k_norm, cfg.rms_norm_eps)
        qk = torch.cat([q, k], dim=2)
    rot = qk.view(bsz, seqlen, nh + nkv, 2, hd // 2).flip(-2).view_as(qk)
    qk = torch.addcmul(qk * cos[:, None, :], rot, sin[:, None, :])
    return qk[:, :, :nh], qk[:, :, nh:], v


Layer = GenericLayer[torch.Tensor]


# (q (B, T, nh, hd), k, v (B, T, nkv, hd)) -> attention output (B, T, nh * hd): stores the
# new keys and values in the cache and attends over it
Attend = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def decoder_layer(
    x: torch.Tensor,
    layer: Layer,
    cfg: ModelConfig,
    linears: Linears,
    cos: torch.Tensor,
    sin: torch.Tensor,
    attend: Attend,
) -> torch.Tensor:
    """One layer's body, shared by the eager forward and the compiled decode step: only how
    they store and attend over K/V (`attend`) differs."""
    norm_shape, eps = (cfg.hidden_size,), cfg.rms_norm_eps
    h = F.rms_norm(x, norm_shape, layer.ln1, eps)
    qkv = linears.qkv(h, layer.wqkv, layer.bqkv)
    q, k, v = rotary(qkv, cfg, cos, sin, layer.q_norm, layer.k_norm)
    x = x + linears.o(attend(q, k, v), layer.wo)
    h = F.rms_norm(x, norm_shape, layer.ln2, eps)
    gate, up = linears.gate_up(h, layer.w13).chunk(2, dim=-1)
    return x + linears.down(F.silu(gate) * up, layer.w2)


def final_logits(
    x: torch.Tensor, cfg: ModelConfig, norm: torch.Tensor, lm_head: torch.Tensor, linear: Linear
) -> torch.Tensor:
    return linear(F.rms_norm(x, (cfg.hidden_size,), norm, cfg.rms_norm_eps), lm_head)


class TorchLlama:
    """Weights plus a static KV cache; `forward` runs a prefill (from 0) or one decode step."""

    def __init__(self, cfg: ModelConfig, weights: Weights[torch.Tensor]) -> None:
        self.cfg = cfg
        self.layers = weights.layers
        self.embed = weights.embed
        self.norm = weights.norm
        self.lm_head = weights.lm_head
        self.device = self.embed.device
        self.dtype = self.embed.dtype
        self.k_cache: list[torch.Tensor] = []
        self.v_cache: list[torch.Tensor] = []
        self.rope_cos = self.rope_sin = torch.empty(0)  # (max_len, head_dim)
        self.cache_batch = 0
        self.cache_len = 0
        self.linears = Linears()  # F.linear on plain weights until choose_kernels
        self.graph_linears = Linears()  # what a compiled step calls: one kernel for every batch
        self.kernel_choices: dict[str, KernelChoice] = {}
        self.kernels = dict.fromkeys(PROJECTIONS, PLAIN)
        self.fused: FusedDecode | None = None  # the decode step's ops in C, once fused
        self.unfused_reason = "not fused"  # why they are not, shown where the ops are named

    def projection_layers(self) -> dict[str, list[torch.Tensor]]:
        """Each projection's weight in every layer (the lm_head's alone), in its kernel's
        form: plain until the kernels are chosen."""
        return {
            "qkv": [layer.wqkv for layer in self.layers],
            "o": [layer.wo for layer in self.layers],
            "gate_up": [layer.w13 for layer in self.layers],
            "down": [layer.w2 for layer in self.layers],
            "lm_head": [self.lm_head],
        }

    def choose_kernels(
        self, batches: tuple[int, ...] = (1, 8), kernels: list[Kernel] | None = None
    ) -> None:
        """Time every candidate kernel on each projection's real weights at these batch
        sizes and keep the fastest (engine/backends/torch/kernels.py). Once, at load."""
        assert set(self.kernel_names.values()) == {PLAIN.name}, "the weights are packed already"
        cands = kernels if kernels is not None else candidates(self.device, self.dtype)
        choices = choose_kernels(self.projection_layers(), batches, cands)
        self.use_kernels({p: c.kernel for p, c in choices.items()})
        self.kernel_choices = choices

    def use_kernels(self, kernels: dict[str, Kernel]) -> None:
        """Put each projection's weights in its kernel's form (the embedding stays plain for
        the lookup, so a tied lm_head gets its own copy when packed)."""
        for layer in self.layers:
            layer.wqkv = kernels["qkv"].pack(layer.wqkv)
            layer.wo = kernels["o"].pack(layer.wo)
            layer.w13 = kernels["gate_up"].pack(layer.w13)
            layer.w2 = kernels["down"].pack(layer.w2)
            trim_heap()
        self.lm_head = kernels["lm_head"].pack(self.lm_head)
        self.run_kernels(kernels, repacked=True)

    def run_kernels(self, kernels: dict[str, Kernel], repacked: bool = False) -> None:
        """Run these kernels on the weights as they are stored: each of the layout of the one
        it replaces (the batch-1 step's matvec choice swaps F.linear and the C matmul), unless
        use_kernels has just put the weights in theirs."""
        assert repacked or all(k.layout is self.kernels[p].layout for p, k in kernels.items())
        self.kernels = dict(kernels)
        self.linears = Linears(**{p: k.run for p, k in kernels.items()})
        self.graph_linears = Linears(**{p: k.graph_run for p, k in kernels.items()})

    @property
    def kernel_names(self) -> dict[str, str]:
        return {p: k.name for p, k in self.kernels.items()}

    def fuse_ops(self) -> None:
        """Run decode steps with the ops between the matmuls in C (fused_decode.py), where
        the library builds and the model is float32 on a CPU; else say why not."""
        if not FusedDecode.supports(self.device, self.dtype):
            self.unfused_reason = "the C ops are float32 on a CPU only"
            return
        ops = load_fused_ops()
        if isinstance(ops, str):
            self.unfused_reason = ops
            return
        self.fused = FusedDecode(ops, self)

    @property
    def ops(self) -> str:
        """How a decode step runs the ops between its matmuls (`infertop bench` prints it)."""
        if self.fused is not None:
            reason = self.fused.one_row_reason
            one_row = "its layers in one C call" if reason is None else f"op by op ({reason})"
            serial = "" if self.fused.serial is None else f"; on one thread ({self.fused.serial})"
            return f"fused in C ({self.fused.library.name}); at batch 1 {one_row}{serial}"
        return f"ATen ({self.unfused_reason})"

    @property
    def kernel(self) -> str:
        """The header's name for the kernels: the one every projection runs, or the mix."""
        return summary_of(self.kernel_names.values())

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_tensors(cls, cfg: ModelConfig, get: Callable[[str], torch.Tensor]) -> TorchLlama:
        """Build from a function that returns each Hugging Face tensor by name, layer by layer."""

        def get_on_a_trimmed_heap(name: str) -> torch.Tensor:
            # the pieces fused before this call are free by now; left on the heap, their pages
            # stayed resident whenever libc did not reuse them: qwen2.5-0.5b's float32 build
            # peaked at 1.99, 2.06 or 2.47 GB from one run to the next (bench/RESULTS.md)
            trim_heap()
            return get(name)

        return cls(cfg, fused_weights(cfg, get_on_a_trimmed_heap, torch.cat))

    @classmethod
    def from_checkpoint(
        cls,
        ckpt: Checkpoint,
        dtype: torch.dtype,
        device: torch.device,
        progress: LoadProgress | None = None,
    ) -> TorchLlama:
        from safetensors import safe_open

        handles: dict[str, Any] = {}
        total, done = len(ckpt.files), 0

        def get(name: str) -> torch.Tensor:
            nonlocal done
            path = ckpt.file_of(name)
            key = str(path)
            if key not in handles:
                handles[key] = safe_open(key, framework="pt", device="cpu")
            t: torch.Tensor = handles[key].get_tensor(name)
            done += 1
            if progress and done % 8 == 0:
                progress(done, total)
            return t.to(device=device, dtype=dtype)

        model = cls.from_tensors(ckpt.config, get)
        if progress:
            progress(total, total)
        return model

    @classmethod
    def dummy(
        cls,
        cfg: ModelConfig,
        dtype: torch.dtype,
        device: torch.device,
        seed: int = 0,
        progress: LoadProgress | None = None,
    ) -> TorchLlama:
        """Seeded random weights with the exact shapes of `cfg` (SGLang's --load-format dummy)."""
        shapes = expected_shapes(cfg)
        total, done = len(shapes), 0

        def get(name: str) -> torch.Tensor:
            nonlocal done
            shape = shapes[name]
            if is_norm(name):
                t = torch.ones(shape, dtype=dtype, device=device)
            else:
                t = dummy_tensor(seed, name, shape, device, dtype)
            done += 1
            if progress and done % 8 == 0:
                progress(done, total)
            return t

        model = cls.from_tensors(cfg, get)
        if progress:
            progress(total, total)
        return model

    # -- cache ----------------------------------------------------------------------------
    def allocate_cache(self, batch_size: int, max_len: int) -> None:
        """Preallocate K/V for batch x max_len, reusing the current buffers when they fit."""
        if batch_size == self.cache_batch and max_len <= self.cache_len:
            return
        self.k_cache = self.v_cache = []  # free before allocating the new ones
        cfg = self.cfg
        shape = (batch_size, cfg.num_key_value_heads, max_len, cfg.head_dim)
        dtype, device = self.dtype, self.device
        layers = range(cfg.num_hidden_layers)
        self.k_cache = [torch.zeros(shape, dtype=dtype, device=device) for _ in layers]
        self.v_cache = [torch.zeros(shape, dtype=dtype, device=device) for _ in layers]
        cos, sin = rope_tables(cfg, max_len)
        self.rope_cos = torch.from_numpy(cos).to(dtype=dtype, device=device)
        self.rope_sin = torch.from_numpy(sin).to(dtype=dtype, device=device)
        self.cache_batch, self.cache_len = batch_size, max_len

    def free_cache(self) -> None:
        self.k_cache = self.v_cache = []
        self.cache_batch = self.cache_len = 0

    # -- compute --------------------------------------------------------------------------
    @torch.inference_mode()
    def forward(self, tokens: torch.Tensor, pos: int, all_logits: bool = False) -> torch.Tensor:
        """Logits for `tokens` (B, T) placed at positions pos..pos+T-1 (last position only
        unless all_logits). Prefill must start at pos 0; T == 1 is a decode step."""
        if tokens.shape[1] == 1 and self.fused is not None:
            return self.fused(tokens, pos)
        cfg = self.cfg
        bsz, seqlen = tokens.shape
        nh, nkv, hd = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        rep = nh // nkv
        end = pos + seqlen
        cos, sin = self.rope_cos[pos:end], self.rope_sin[pos:end]
        decode = seqlen == 1
        assert decode or pos == 0, "prefill starts at position 0"

        def attend(
            q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kc: torch.Tensor, vc: torch.Tensor
        ) -> torch.Tensor:
            kc[:, :, pos:end] = k.transpose(1, 2)
            vc[:, :, pos:end] = v.transpose(1, 2)
            if decode:
                # (B, nkv, rep, hd) queries against (B, nkv, end, hd) keys: no head repeat
                o = F.scaled_dot_product_attention(
                    q.view(bsz, nkv, rep, hd), kc[:, :, :end], vc[:, :, :end]
                )
            else:
                o = F.scaled_dot_product_attention(
                    q.transpose(1, 2),
                    kc[:, :, :end],
                    vc[:, :, :end],
                    is_causal=True,
                    enable_gqa=rep > 1,
                ).transpose(1, 2)
            return o.reshape(bsz, seqlen, nh * hd)

        x = F.embedding(tokens, self.embed)
        for layer, kc, vc in zip(self.layers, self.k_cache, self.v_cache, strict=True):
            x = decoder_layer(x, layer, cfg, self.linears, cos, sin, partial(attend, kc=kc, vc=vc))
        if not all_logits:
            x = x[:, -1:]
        return final_logits(x, cfg, self.norm, self.lm_head, self.linears.lm_head)

    def weight_matrices(self) -> list[tuple[Linear, torch.Tensor]]:
        """Every matrix a decode step multiplies by, with the kernel that runs it (for the
        bandwidth-floor benchmark: time `linear(x, w)` over these)."""
        lin = self.linears
        pairs = [
            pair
            for layer in self.layers
            for pair in (
                (lin.qkv, layer.wqkv),
                (lin.o, layer.wo),
                (lin.gate_up, layer.w13),
                (lin.down, layer.w2),
            )
        ]
        return [*pairs, (lin.lm_head, self.lm_head)]
