"""The float32 CPU decode step with the ops between its matmuls in C (fused_ops.c): per layer,
four C calls (attention with the rotary, the head norms and the cache write; residual plus
norm, twice; silu(gate) * up) around the four projections, which keep their chosen kernels.
At batch 1, where every layer's projections run F.linear (BLAS's sgemv) or the library's own
matvec (kernels.py's C matmul), all the layers run in one C call that calls those itself
(blas_sgemv.py finds BLAS's); the lm_head keeps its kernel.
Under the profiler the step keeps its per-op calls, so a trace shows each op and matmul.
Prefill, other dtypes and other devices keep the ATen ops (model.py).

Why: each ATen op costs 2-20 us from Python on these CPUs, and a decode step has ~25 of them
per layer; a C call costs ~1 us plus its arithmetic (bench/RESULTS.md, issue 15). Under the
torch profiler each call is a record_function range named infertop::<op>, so a trace still
shows where the step's time goes."""

from __future__ import annotations

import ctypes
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from infertop.engine.backends.torch.blas_sgemv import sgemv_address
from infertop.engine.backends.torch.fused_build import (
    Attention,
    CFunc,
    FusedOps,
    OneRowLayer,
    OneRowStep,
)
from infertop.engine.backends.torch.kernels import OWN_NAME, PLAIN, ran_at
from infertop.engine.layer import Layer

if TYPE_CHECKING:
    from infertop.engine.backends.torch.model import TorchLlama


@dataclass(frozen=True)
class Calls:
    """The C functions a step calls: bare, or each in a profiler range."""

    rms_norm: CFunc
    add_rms_norm: CFunc
    silu_mul: CFunc
    decode_attention: CFunc


def in_range(name: str, func: CFunc) -> CFunc:
    def call(*args: object) -> None:
        with torch.profiler.record_function(f"infertop::{name}"):
            func(*args)

    return call


@dataclass
class Plan:
    """What a step at one batch size over one cache reuses: buffers, pointers, the layers'
    Attention records (which hold raw pointers, so the plan keeps their tensors)."""

    key: tuple[object, ...]
    h: torch.Tensor  # the normed activations, (B, 1, hidden)
    attn: torch.Tensor  # attention output, (B, 1, heads * head_dim)
    act: torch.Tensor  # silu(gate) * up, (B, 1, intermediate)
    scores: torch.Tensor
    records: list[Attention]
    record_at: list[int]  # each record's address
    ln1: list[int]
    ln2: list[int]
    after: list[int]  # the norm after each layer: the next layer's ln1, the final norm last
    kept: list[torch.Tensor]
    one_row: OneRow | None = None  # batch 1 with its layers in one C call, where it can
    checked: bool = False  # the first step checks the kernels' outputs are contiguous


@dataclass
class OneRow:
    """decode_one_row's record and the tensors its pointers point into (its output row is
    the plan's h)."""

    step: OneRowStep
    address: int
    layers: ctypes.Array[OneRowLayer]
    kept: list[torch.Tensor]


LAYER_PROJECTIONS = ("qkv", "o", "gate_up", "down")
# a layer's attention splits its heads over threads once it reads this much K/V: below, the
# parallel region's wake-up costs more than one core's read (and under a second busy
# process every region waits for a descheduled thread)
PARALLEL_ATTENTION_BYTES = 128 << 10


def cache_key(model: TorchLlama) -> tuple[object, ...]:
    """What a plan's pointers point into: a plan made for other caches must not run."""
    kc = model.k_cache[0]
    return (tuple(kc.shape), kc.data_ptr(), model.rope_cos.data_ptr())


def plan_key(model: TorchLlama, bsz: int) -> tuple[object, ...]:
    """A plan serves one batch size and one set of the layers' kernels (the batch-1 call's
    matvecs differ between them; the lm_head's, called from Python, are not in it) on the
    caches it was made for."""
    layers = (model.kernel_names[p] for p in LAYER_PROJECTIONS)
    return (*cache_key(model), bsz, *layers)


class FusedDecode:
    """model.forward's decode step (T == 1) with fused C ops; same inputs, same logits."""

    def __init__(self, ops: FusedOps, model: TorchLlama) -> None:
        self.library = ops.library
        self.serial = ops.serial  # why its C ops run on one thread; None: on torch's
        names = ("rms_norm", "add_rms_norm", "silu_mul", "decode_attention")
        self.calls = Calls(*(getattr(ops, n) for n in names))
        self.profiled_calls = Calls(*(in_range(n, getattr(ops, n)) for n in names))
        self.decode_one_row = ops.decode_one_row
        self.model = model
        self.plans: dict[tuple[object, ...], Plan] = {}  # kept while the caches stay
        self.plan: Plan | None = None  # the last step's
        self.sgemv = sgemv_address(ops)
        self.own_sgemv = ops.own_sgemv

    def matvec_addresses(self) -> dict[str, int] | str:
        """The matvec each layer projection calls from C at batch 1 (BLAS's sgemv for
        F.linear, own_sgemv for the C matmul); or why batch 1 cannot run in one C call."""
        names = {p: ran_at(self.model.kernel_names[p], 1) for p in LAYER_PROJECTIONS}
        other = [p for p, name in names.items() if name not in (PLAIN.name, OWN_NAME)]
        if other:
            return f"{', '.join(other)} run {names[other[0]]} at batch 1"
        addresses = {}
        for projection, name in names.items():
            if name == OWN_NAME:
                addresses[projection] = self.own_sgemv
            elif isinstance(self.sgemv, str):
                return self.sgemv
            else:
                addresses[projection] = self.sgemv
        return addresses

    @property
    def one_row_reason(self) -> str | None:
        """Why batch 1 cannot run its layers in one C call; None when it can."""
        addresses = self.matvec_addresses()
        return addresses if isinstance(addresses, str) else None

    @staticmethod
    def supports(device: torch.device, dtype: torch.dtype) -> bool:
        return device.type == "cpu" and dtype == torch.float32

    def plan_for(self, bsz: int) -> Plan:
        m, cfg = self.model, self.model.cfg
        key = plan_key(m, bsz)
        plan = self.plans.get(key)
        if plan is not None:
            self.plan = plan
            return plan
        # one batch size's plans are kept (their scratch grows with it), on these caches:
        # a plan for freed caches would keep them
        same = (*cache_key(m), bsz)
        self.plans = {k: p for k, p in self.plans.items() if k[: len(same)] == same}
        nh, nkv, hd = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        cache_batch, max_len = m.k_cache[0].shape[0], m.k_cache[0].shape[2]
        if bsz > cache_batch:  # C writes where the pointers say: no shape check catches it
            raise ValueError(f"a decode step of batch {bsz} on a cache for {cache_batch}")

        def new(width: int) -> torch.Tensor:
            return torch.empty(bsz, 1, width, dtype=torch.float32)

        scores = torch.empty(bsz * nh, max_len, dtype=torch.float32)
        kept = [m.rope_cos, m.rope_sin, *m.k_cache, *m.v_cache]
        norms = [m.norm] + [t for layer in m.layers for t in (layer.ln1, layer.ln2)]
        assert all(t.is_contiguous() for t in kept + norms)

        def ptr(t: torch.Tensor | None) -> int | None:
            if t is None:
                return None
            t = t.contiguous()
            kept.append(t)
            return t.data_ptr()

        records = [
            Attention(
                bsz,
                nh,
                nkv,
                hd,
                max_len,
                1.0 / math.sqrt(hd),
                cfg.rms_norm_eps,
                ptr(layer.q_norm),
                ptr(layer.k_norm),
                m.rope_cos.data_ptr(),
                m.rope_sin.data_ptr(),
                kc.data_ptr(),
                vc.data_ptr(),
                scores.data_ptr(),
                max(1, -(-PARALLEL_ATTENTION_BYTES // (bsz * nkv * hd * 2 * 4))),
            )
            for layer, kc, vc in zip(m.layers, m.k_cache, m.v_cache, strict=True)
        ]
        ln1 = [layer.ln1.data_ptr() for layer in m.layers]
        self.plan = Plan(
            key=key,
            h=new(cfg.hidden_size),
            attn=new(nh * hd),
            act=new(cfg.intermediate_size),
            scores=scores,
            records=records,
            record_at=[ctypes.addressof(r) for r in records],
            ln1=ln1,
            ln2=[layer.ln2.data_ptr() for layer in m.layers],
            after=[*ln1[1:], m.norm.data_ptr()],
            kept=kept,
        )
        if bsz == 1 and self.one_row_reason is None:
            self.plan.one_row = self.one_row_plan(self.plan)
        self.plans[key] = self.plan
        return self.plan

    def one_row_plan(self, p: Plan) -> OneRow:
        m, cfg = self.model, self.model.cfg
        matvec = self.matvec_addresses()
        assert not isinstance(matvec, str), matvec
        dim, inter = cfg.hidden_size, cfg.intermediate_size
        attn_dim = cfg.num_attention_heads * cfg.head_dim
        qkv_dim = attn_dim + 2 * cfg.num_key_value_heads * cfg.head_dim
        widths = {"x": dim, "qkv": qkv_dim, "o": dim, "gate_up": 2 * inter, "down": dim}
        rows = {name: torch.empty(width) for name, width in widths.items()}
        plain = [plain_weights(layer) for layer in m.layers]
        assert all(w.dim() == 2 for ws in plain for w in ws.values()), "plain weights"
        biases = [None if layer.bqkv is None else layer.bqkv.contiguous() for layer in m.layers]
        layers = (OneRowLayer * len(m.layers))(
            *(
                OneRowLayer(
                    **{n: w.data_ptr() for n, w in ws.items()},
                    bqkv=None if bias is None else bias.data_ptr(),
                    ln1=ln1,
                    ln2=ln2,
                    after=after,
                    attention=record,
                )
                for ws, bias, ln1, ln2, after, record in zip(
                    plain, biases, p.ln1, p.ln2, p.after, p.record_at, strict=True
                )
            )
        )
        step = OneRowStep(
            layers=len(m.layers),
            dim=dim,
            attn_dim=attn_dim,
            qkv_dim=qkv_dim,
            inter=inter,
            eps=cfg.rms_norm_eps,
            layer=ctypes.addressof(layers),
            embed=m.embed.data_ptr(),
            x=rows["x"].data_ptr(),
            h=p.h.data_ptr(),
            qkv=rows["qkv"].data_ptr(),
            attn=p.attn.data_ptr(),
            o=rows["o"].data_ptr(),
            gate_up=rows["gate_up"].data_ptr(),
            act=p.act.data_ptr(),
            down=rows["down"].data_ptr(),
            **{f"{p}_mv": address for p, address in matvec.items()},
        )
        kept = [*(w for ws in plain for w in ws.values()), *rows.values(), m.embed]
        kept += [b for b in biases if b is not None]
        return OneRow(step, ctypes.addressof(step), layers, kept)

    def __call__(self, tokens: torch.Tensor, pos: int) -> torch.Tensor:
        m, cfg = self.model, self.model.cfg
        bsz = tokens.shape[0]
        if not 0 <= pos < m.cache_len:
            raise IndexError(f"decode position {pos} is outside the cache of {m.cache_len}")
        p = self.plan_for(bsz)
        profiling = torch.autograd.profiler._is_profiler_enabled
        lin, dim, eps = m.linears, cfg.hidden_size, cfg.rms_norm_eps
        if p.one_row is not None and not profiling:
            token = int(tokens[0, 0])
            if not 0 <= token < cfg.vocab_size:  # C reads the embedding where it says
                raise IndexError(f"token {token} is outside the vocabulary of {cfg.vocab_size}")
            self.decode_one_row(p.one_row.address, token, pos)
            return lin.lm_head(p.h, m.lm_head)  # decode_one_row wrote the final norm's row there
        c = self.profiled_calls if profiling else self.calls
        x = F.embedding(tokens, m.embed)  # a new (B, 1, hidden) tensor: the residual
        xp, h, hp, attn, act = x.data_ptr(), p.h, p.h.data_ptr(), p.attn, p.act
        ap, actp, inter = attn.data_ptr(), act.data_ptr(), cfg.intermediate_size
        c.rms_norm(xp, p.ln1[0], hp, bsz, dim, eps)
        for i, layer in enumerate(m.layers):
            qkv = lin.qkv(h, layer.wqkv, layer.bqkv)
            c.decode_attention(p.record_at[i], qkv.data_ptr(), pos, ap)
            o = lin.o(attn, layer.wo)
            c.add_rms_norm(xp, o.data_ptr(), p.ln2[i], hp, bsz, dim, eps)
            gate_up = lin.gate_up(h, layer.w13)
            c.silu_mul(gate_up.data_ptr(), actp, bsz, inter)
            down = lin.down(act, layer.w2)
            c.add_rms_norm(xp, down.data_ptr(), p.after[i], hp, bsz, dim, eps)
            if not p.checked:
                outs = (qkv, o, gate_up, down)
                assert all(t.is_contiguous() and t.dtype == torch.float32 for t in outs)
        p.checked = True
        return lin.lm_head(h, m.lm_head)


def plain_weights(layer: Layer[torch.Tensor]) -> dict[str, torch.Tensor]:
    """A layer's four projections by their fused_ops.c names (F.linear's plain weights)."""
    return {n: getattr(layer, n).contiguous() for n in ("wqkv", "wo", "w13", "w2")}
