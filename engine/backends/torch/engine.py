"""The torch backend: loads a preset or a local directory onto a torch device and runs steps."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch

from infertop.engine.backend import LoadProgress, OnDevice
from infertop.engine.backends.torch import fused_build
from infertop.engine.backends.torch.compiled_decode import CompiledDecode
from infertop.engine.backends.torch.devices import TorchDevice, select_device
from infertop.engine.backends.torch.fused_decode import FusedDecode
from infertop.engine.backends.torch.kernels import PROJECTIONS, kernel_named, timed_batches
from infertop.engine.backends.torch.model import TorchLlama
from infertop.engine.backends.torch.one_row_matvec import MatvecChoice, choose_matvec
from infertop.engine.backends.torch.threads import (
    ThreadChoice,
    at_threads,
    choose_threads,
    thread_counts,
)
from infertop.engine.backends.torch.timing import fastest_in_turns, warm
from infertop.engine.config import DeviceKind
from infertop.engine.cpu_quota import CpuQuota, cpu_quota
from infertop.engine.dummy import random_prompt_ids
from infertop.engine.errors import UserError
from infertop.engine.text import plural
from infertop.engine.weights import resolve_model

TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
THREAD_TIMING_POS = 15  # the decode step timed for the thread count attends over 16 positions
DEFAULT_LENGTHS = (128, 32)  # the default sweep's input and output lengths


class TorchEngine(OnDevice[TorchDevice]):
    def __init__(self, model: TorchLlama, device: TorchDevice, dtype_name: str) -> None:
        self.backend = "torch"
        self.compiled: CompiledDecode | None = None
        self.model = model
        self.device = device
        self.config = model.cfg
        self.dtype_name = dtype_name
        self.device_kind: DeviceKind = device.kind
        # set before every prefill and decode call (0.1 us): the two may differ
        self.prefill_threads = self.decode_threads = torch.get_num_threads()
        self.threads_timed: ThreadChoice | None = None
        self.matvec_timed: MatvecChoice | None = None
        # with --compile: the eager step's decode count, and per batch timed (1, the sweep's
        # largest) its step against the compiled one's, timed after the compile
        self.eager_threads: int | None = None
        self.step_seconds: dict[int, dict[str, float]] = {}
        self.quota: CpuQuota | None = None  # the cgroup's CPU quota, where it capped the count

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
        threads: int | None = None,
    ) -> TorchEngine:
        """Load the weights, time the matmul kernels on them at `batches` (batch 1 and the
        sweep's largest) and keep the fastest per projection; then on a CPU time the decode
        step, with those kernels, at the thread counts worth trying (threads.py). The
        kernels are timed on torch's starting count: timing them at every count would cost
        the load that many times over. `kernel` forces a kernel, `threads` a thread count
        for prefill and decode. Without `threads`, a CPU quota (cpu_quota.py) caps torch's
        count first. Call it in the thread that will run the model: OpenMP keeps the thread
        count per thread."""
        if dtype not in TORCH_DTYPES:
            raise UserError(f"unknown dtype {dtype!r}; use {', '.join(TORCH_DTYPES)}")
        if threads is not None:
            torch.set_num_threads(threads)
        dev = select_device(device)
        quota = cpu_quota() if threads is None and dev.kind == "cpu" else None
        if quota is not None and quota.threads < torch.get_num_threads():
            torch.set_num_threads(quota.threads)
        else:
            quota = None
        cfg, ckpt = resolve_model(spec, dummy)
        tdtype = TORCH_DTYPES[dtype]
        fusable = FusedDecode.supports(dev.torch_device, tdtype)  # a kernel candidate needs it too
        if stage and fusable and not fused_build.is_built():
            stage("compiling the decode step's fused C ops (once per CPU)")
            fused_build.load_fused_ops()
        forced = None if kernel is None else kernel_named(kernel, dev.torch_device, tdtype)
        if ckpt is None:
            model = TorchLlama.dummy(cfg, tdtype, dev.torch_device, seed=seed, progress=progress)
        else:
            model = TorchLlama.from_checkpoint(ckpt, tdtype, dev.torch_device, progress=progress)
        if forced is not None:
            model.use_kernels(dict.fromkeys(PROJECTIONS, forced))
        else:
            if stage:
                stage("timing the matmul kernels on the weights")
            model.choose_kernels(batches)
        model.fuse_ops()
        engine = cls(model, dev, dtype)
        engine.quota = quota
        if forced is None:
            announce = partial(stage, "timing the batch-1 step on each matvec") if stage else None
            engine.choose_matvec(announce)
        counts = thread_counts(torch.get_num_threads())
        if threads is None and dev.kind == "cpu" and len(counts) > 1:
            if stage:
                listed = ", ".join(map(str, counts))
                stage(f"timing the decode step on {listed} CPU threads")
            engine.choose_decode_threads(batches, counts)
        return engine

    def choose_matvec(self, announce: Callable[[], None] | None = None) -> None:
        """At batch 1, the matvec the layers call from C, timed on the step (one_row_matvec.py)
        on a cache of 16 positions."""
        self.model.free_cache()
        try:
            self.matvec_timed = choose_matvec(self.model, self.timing_step(1, False), announce)
        finally:
            self.model.free_cache()

    def choose_decode_threads(self, batches: tuple[int, ...], counts: list[int]) -> None:
        """Time a decode step (the compiled one once there is one) at each count, at batch 1
        and the largest of `batches` (capped like the kernels' timing), on a cache of 16
        positions; keep the fastest for decode."""
        compiled = self.compiled is not None
        self.model.free_cache()
        timed = timed_batches((1, max(batches)))
        try:
            steps = {b: self.timing_step(b, compiled) for b in timed}
            self.threads_timed = choose_threads(steps, counts)
        finally:
            self.model.free_cache()
        self.decode_threads = self.threads_timed.chosen

    def timing_step(
        self, batch: int, compiled: bool, pos: int = THREAD_TIMING_POS, cache_len: int = 0
    ) -> Callable[[], object]:
        """One decode step at `batch` (the compiled one, or eager) at `pos`, on a cache of
        `cache_len` positions (pos + 1 by default) that its first call allocates: what the
        load-time choices time."""
        model, vocab = self.model, self.config.vocab_size
        tokens = torch.arange(batch, device=model.device).remainder(vocab).view(batch, 1)
        run = self.compiled if compiled else model.forward
        assert run is not None
        length = max(cache_len, pos + 1)

        def step() -> object:
            model.allocate_cache(batch, length)  # a no-op after the first call
            return run(tokens, pos)

        return step

    @property
    def thread_choice(self) -> str:
        parts = []
        if self.quota is not None:
            parts.append(f"{self.quota.describe()}; --threads N overrides")
        if self.threads_timed is not None:
            parts.append(f"timed on the decode step at load: {self.threads_timed.describe()}")
        return "; ".join(parts)

    @property
    def warnings(self) -> tuple[str, ...]:
        fused = self.model.fused
        if fused is None or fused.serial is None:
            return ()
        return (f"the decode step's C ops run on one thread; {fused.serial}",)

    @property
    def decode_ops(self) -> str:
        if self.compiled is None or not self.step_seconds:
            return self.model.ops
        parts = []
        for batch, t in self.step_seconds.items():
            at = "at batch 1" if batch == 1 else f"above (timed at batch {batch})"
            eager, compiled = t["eager"] * 1e3, t["compiled"] * 1e3
            if self.runs_eager(batch):
                parts.append(f"{at} the eager step's, {eager:.3f} ms against {compiled:.3f}")
            else:
                parts.append(f"{at} the compiled, {compiled:.3f} ms against eager {eager:.3f}")
        return f"compiled with the step (AOTInductor); {'; '.join(parts)}; eager: {self.model.ops}"

    @property
    def device_name(self) -> str:
        if self.device_kind == "cpu" and self.decode_threads != self.prefill_threads:
            decode, prefill = self.decode_threads, self.prefill_threads
            return f"CPU ({plural(decode, 'thread')} decode, {prefill} prefill)"
        return self.device.name

    @property
    def kernel(self) -> str:
        return self.model.kernel

    @property
    def kernel_choices(self) -> tuple[str, ...]:
        lines = [c.describe() for c in self.model.kernel_choices.values()]
        if self.matvec_timed is not None:
            lines.append(self.matvec_timed.describe())
        return tuple(lines)

    @property
    def cpu_threads(self) -> int:
        return self.decode_threads

    def prepare(self, batch_size: int, max_len: int) -> None:
        if self.compiled is not None and self.model.cache_len != max_len:
            self.model.free_cache()  # the compiled step attends over the whole cache: fit it
        self.model.allocate_cache(batch_size, max_len)

    def random_prompts(self, batch_size: int, input_len: int, seed: int) -> torch.Tensor:
        ids = random_prompt_ids(self.config.vocab_size, batch_size, input_len, seed)
        return torch.from_numpy(ids).to(self.device.torch_device)

    def prefill(self, tokens: torch.Tensor) -> torch.Tensor:
        torch.set_num_threads(self.prefill_threads)
        return self.model.forward(tokens, 0).argmax(-1)

    def compile_stage(self) -> str:
        """The load stage --compile shows: a compile, or the step kept from an earlier one."""
        if CompiledDecode.is_cached(self.model):
            return "loading the compiled decode step (kept from an earlier compile)"
        return "compiling the decode step (AOTInductor, seconds to minutes; kept for next time)"

    def compile_decode(
        self, lengths: tuple[int, int] = DEFAULT_LENGTHS, batches: tuple[int, ...] = (1,)
    ) -> None:
        """From now on decode steps run the AOTInductor-compiled step (CPU only), on the
        thread count that runs it fastest: it fuses the small ops, so it may want another.
        At batch 1, and above at the largest of `batches`, the eager step may still win:
        timed against it, at the middle of the decode of `lengths` (the sweep's longest
        input and output), the faster runs."""
        self.eager_threads = self.decode_threads
        self.compiled = CompiledDecode.build(self.model)
        self.backend = "torch, compiled"
        if self.threads_timed is not None:  # the same batches and counts as at load
            timed = self.threads_timed
            self.choose_decode_threads(tuple(timed.seconds), thread_counts(timed.default))
            batches = (*batches, *timed.seconds)
        self.choose_eager_or_compiled(lengths, batches)

    def choose_eager_or_compiled(
        self,
        lengths: tuple[int, int] = DEFAULT_LENGTHS,
        batches: tuple[int, ...] = (1,),
        reps: int = 15,
    ) -> None:
        """Time the compiled and the eager step at batch 1 and at the largest of `batches`
        (capped like the kernels' timing), each on its thread count, in turns. A compiled
        graph cannot branch on its batch or make a ctypes call, so it runs one kernel for
        every batch (of a layout's kernels a graph can call, the one that loses least); the
        eager step runs the kernels chosen per batch, the C matmul among them, with its ops
        fused in C (at batch 1 its layers in one C call): on a 2-core Intel Xeon @ 2.80GHz
        it made a 250M step at batch 1 0.91x the compiled step's and at batch 8 0.68x
        (bench/RESULTS.md). Every round is timed, slow steps too: with the
        3 rounds the thread timing stops at, a 56M model's compiled step won at load by 2%
        (7.8 against 7.9 ms) and then ran batch 1 1.04x as long as the eager engine's. The
        compile has taken seconds already; 15 rounds of a 250M step take ~1 s. The steps
        attend over the run's cache, not the thread timing's 16 positions: the compiled step
        attends over its whole cache, masked (compiled_decode.py), so on 16 positions a 56M
        model's compiled step won (8.2 against 8.4 ms) and then ran batch 1 1.02x as long as
        the eager engine's on the sweep's 160."""
        assert self.compiled is not None
        inp, out = lengths
        pos, cache_len = inp + out // 2, inp + out
        threads = torch.get_num_threads()
        eager_threads = self.eager_threads or self.decode_threads
        self.step_seconds = {}
        try:
            for batch in timed_batches((1, max(batches))):
                self.model.free_cache()
                compiled, eager = (
                    self.timing_step(batch, c, pos, cache_len) for c in (True, False)
                )
                steps = [
                    ("compiled", at_threads(self.decode_threads, compiled)),
                    ("eager", at_threads(eager_threads, eager)),
                ]
                for _, step in steps:
                    warm(step)
                self.step_seconds[batch] = fastest_in_turns(steps, reps, slow_rounds=reps)
        finally:
            self.model.free_cache()
            torch.set_num_threads(threads)

    def runs_eager(self, batch: int) -> bool:
        """A decode step of `batch` runs the eager step: it was the faster at load, at batch
        1 for one row, at the largest batch timed for more."""
        timed = [b for b in self.step_seconds if (b == 1) == (batch == 1)]
        t = self.step_seconds[timed[0]] if timed else None
        return t is not None and t["eager"] < t["compiled"]

    def decode(self, tokens: torch.Tensor, pos: int) -> torch.Tensor:
        if self.compiled is not None and not self.runs_eager(tokens.shape[0]):
            torch.set_num_threads(self.decode_threads)
            return self.compiled(tokens, pos)[0]
        torch.set_num_threads(self.eager_threads or self.decode_threads)
        return self.model.forward(tokens, pos).argmax(-1)

    def wait(self, result: torch.Tensor) -> None:
        self.device.synchronize()

    def logits(self, tokens: torch.Tensor, pos: int, all_positions: bool = False) -> torch.Tensor:
        torch.set_num_threads(self.decode_threads if tokens.shape[1] == 1 else self.prefill_threads)
        return self.model.forward(tokens, pos, all_logits=all_positions)

    def release(self) -> None:
        self.model.free_cache()
