"""The MLX backend: Metal on Apple silicon, the CPU elsewhere (mlx[cpu] on Linux, whose
wheel bundles a single-threaded reference BLAS: a correctness backend there, not a fast one).

Import this module only after engine.profiling.metal_capture.enable_capture_env() has run:
Metal reads MTL_CAPTURE_ENABLED when it starts (engine.loader does this)."""

from __future__ import annotations

import os

import mlx.core as mx

from infertop.engine.backend import LoadProgress, OnDevice
from infertop.engine.backends.mlx.device import MlxDevice
from infertop.engine.backends.mlx.model import MX_DTYPES, MlxLlama
from infertop.engine.config import DeviceKind
from infertop.engine.dummy import random_prompt_ids
from infertop.engine.errors import UserError
from infertop.engine.weights import resolve_model


class MlxEngine(OnDevice[MlxDevice]):
    backend = "mlx"
    device_kind: DeviceKind = "metal"

    def __init__(self, model: MlxLlama, dtype_name: str) -> None:
        self.model = model
        self.config = model.cfg
        self.dtype_name = dtype_name
        self.device = MlxDevice()

    @classmethod
    def load(
        cls,
        spec: str,
        dtype: str = "float32",
        seed: int = 0,
        dummy: bool = False,  # --load-format dummy
        progress: LoadProgress | None = None,
    ) -> MlxEngine:
        if dtype not in MX_DTYPES:
            raise UserError(f"unknown dtype {dtype!r}; use {', '.join(MX_DTYPES)}")
        cfg, ckpt = resolve_model(spec, dummy)
        if ckpt is None:
            model = MlxLlama.dummy(cfg, MX_DTYPES[dtype], seed=seed, progress=progress)
        else:
            model = MlxLlama.from_checkpoint(ckpt, MX_DTYPES[dtype], progress)
        return cls(model, dtype)

    @property
    def cpu_threads(self) -> int:
        """What --threads asked of Accelerate (macOS); MLX itself does not say."""
        return int(os.environ.get("VECLIB_MAXIMUM_THREADS", "0") or 0)

    def prepare(self, batch_size: int, max_len: int) -> None:
        self.model.allocate_cache(batch_size, max_len)

    def random_prompts(self, batch_size: int, input_len: int, seed: int) -> mx.array:
        ids = random_prompt_ids(self.config.vocab_size, batch_size, input_len, seed)
        return mx.array(ids)

    def prefill(self, tokens: mx.array) -> mx.array:
        return mx.argmax(self.model.forward(tokens, 0), axis=-1)

    def decode(self, tokens: mx.array, pos: int) -> mx.array:
        return mx.argmax(self.model.forward(tokens, pos), axis=-1)

    def wait(self, result: mx.array) -> None:
        """MLX is lazy: force the graph (and its cache writes) before any timer read."""
        mx.eval(result, self.model.k_cache, self.model.v_cache)

    def logits(self, tokens: mx.array, pos: int, all_positions: bool = False) -> mx.array:
        out = self.model.forward(tokens, pos, all_logits=all_positions)
        mx.eval(out)
        return out

    def release(self) -> None:
        self.model.free_cache()
