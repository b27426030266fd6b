"""The torch backend: loads a preset or a local directory onto a torch device and runs steps."""

from __future__ import annotations

from collections.abc import Callable

import torch

from infertop.engine.backend import LoadProgress, OnDevice
from infertop.engine.backends.torch.compiled_decode import CompiledDecode
from infertop.engine.backends.torch.devices import TorchDevice, select_device
from infertop.engine.backends.torch.kernels import PROJECTIONS, kernel_named
from infertop.engine.backends.torch.model import TorchLlama
from infertop.engine.config import DeviceKind
from infertop.engine.dummy import random_prompt_ids
from infertop.engine.errors import UserError
from infertop.engine.weights import resolve_model

TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class TorchEngine(OnDevice[TorchDevice]):
    def __init__(self, model: TorchLlama, device: TorchDevice, dtype_name: str) -> None:
        self.backend = "torch"
        self.compiled: CompiledDecode | None = None
        self.model = model
        self.device = device
        self.config = model.cfg
        self.dtype_name = dtype_name
        self.device_kind: DeviceKind = device.kind

    @classmethod
    def load(
        cls,
        spec: str,
        device: str = "auto",
        dtype: str = "float32",
        seed: int = 0,
        progress: LoadProgress | None = None,
        dummy: bool = False,
        batches: tuple[int, ...] = (1, 8),
        stage: Callable[[str], None] | None = None,
        kernel: str | None = None,
    ) -> TorchEngine:
        """Load the weights, then time the matmul kernels on them at `batches` (batch 1 and
        the sweep's largest) and keep the fastest per projection; `kernel` forces one."""
        if dtype not in TORCH_DTYPES:
            raise UserError(f"unknown dtype {dtype!r}; use {', '.join(TORCH_DTYPES)}")
        dev = select_device(device)
        cfg, ckpt = resolve_model(spec, dummy)
        tdtype = TORCH_DTYPES[dtype]
        if ckpt is None:
            model = TorchLlama.dummy(cfg, tdtype, dev.torch_device, seed=seed, progress=progress)
        else:
            model = TorchLlama.from_checkpoint(ckpt, tdtype, dev.torch_device, progress=progress)
        if kernel is not None:
            forced = kernel_named(kernel, dev.torch_device, tdtype)
            model.use_kernels(dict.fromkeys(PROJECTIONS, forced))
        else:
            if stage:
                stage("timing the matmul kernels on the weights")
            model.choose_kernels(batches)
        return cls(model, dev, dtype)

    @property
    def kernel(self) -> str:
        return self.model.kernel

    @property
    def kernel_choices(self) -> tuple[str, ...]:
        return tuple(c.describe() for c in self.model.kernel_choices.values())

    @property
    def cpu_threads(self) -> int:
        return torch.get_num_threads()  # read in the engine thread: OpenMP keeps it per thread

    def prepare(self, batch_size: int, max_len: int) -> None:
        if self.compiled is not None and self.model.cache_len != max_len:
            self.model.free_cache()  # the compiled step attends over the whole cache: fit it
        self.model.allocate_cache(batch_size, max_len)

    def random_prompts(self, batch_size: int, input_len: int, seed: int) -> torch.Tensor:
        ids = random_prompt_ids(self.config.vocab_size, batch_size, input_len, seed)
        return torch.from_numpy(ids).to(self.device.torch_device)

    def prefill(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.model.forward(tokens, 0).argmax(-1)

    def compile_stage(self) -> str:
        """The load stage --compile shows: a compile, or the step kept from an earlier one."""
        if CompiledDecode.is_cached(self.model):
            return "loading the compiled decode step (kept from an earlier compile)"
        return "compiling the decode step (AOTInductor, seconds to minutes; kept for next time)"

    def compile_decode(self) -> None:
        """From now on decode steps run the AOTInductor-compiled step (CPU only)."""
        self.compiled = CompiledDecode.build(self.model)
        self.backend = "torch, compiled"

    def decode(self, tokens: torch.Tensor, pos: int) -> torch.Tensor:
        if self.compiled is not None:
            return self.compiled(tokens, pos)[0]
        return self.model.forward(tokens, pos).argmax(-1)

    def wait(self, result: torch.Tensor) -> None:
        self.device.synchronize()

    def logits(self, tokens: torch.Tensor, pos: int, all_positions: bool = False) -> torch.Tensor:
        return self.model.forward(tokens, pos, all_logits=all_positions)

    def release(self) -> None:
        self.model.free_cache()
