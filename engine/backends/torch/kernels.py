"""The matmul kernels a projection can run on, and the choice among them by measurement.

Which kernel is fastest depends on the CPU: prepacked oneDNN made decode 2-3x faster than
F.linear on an AMD EPYC and slower at batch 1 on an Intel Xeon (bench/RESULTS.md). So at
load each distinct projection (q/k/v, o, gate/up, down, lm_head) is timed on its real
weights with every candidate, at batch 1 and at the sweep's largest batch, and the one with
the least summed slowdown against the fastest in each regime is kept. A weight is stored in
one layout only (a second would double the model's memory), so when the regimes disagree
the choice says so.

The candidates: F.linear everywhere; oneDNN packed on a CPU in float32, and in bfloat16 or
float16 where oneDNN runs that type natively (there it made a bfloat16 step 0.64-0.70x as
long as F.linear's). MKL's packed GEMM is left out: its packed weight serves one batch size
and it needs the plain weight beside it for the others (bench/kernel_candidates.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F

from infertop.engine.backends.torch.timing import (
    WARM_CALLS,
    fastest_in_turns,
    least_summed_slowdown,
    timings_text,
)
from infertop.engine.errors import UserError

Linear = Callable[..., torch.Tensor]  # (x, weight, bias=None) -> x @ weight.T + bias
PROJECTIONS = ("qkv", "o", "gate_up", "down", "lm_head")
# the largest batch timed at load: a sweep's larger batches run the same kernels, and timing
# a batch that does not fit (the live screen skips it) would allocate what cannot be had
MAX_TIMED_BATCH = 32
# a bigger matrix is timed on its first rows (a big lm_head: 1-2 GB of float32, to copy for
# every packed candidate); 64 MB still streams from memory, not from a cache
MAX_TIMED_BYTES = 64 << 20


def onednn_linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """x @ w.T + b with a weight prepacked for oneDNN (what inductor's CPU freezing uses)."""
    out: torch.Tensor = torch.ops.mkldnn._linear_pointwise(x, w, b, "none", [], "")
    return out


def onednn_pack(w: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
    """The weight in oneDNN's blocked layout; a batch size picks the layout for that batch
    (None, as the chooser packs: one layout for every batch)."""
    packed: torch.Tensor = torch.ops.mkldnn._reorder_linear_weight(w, batch_size)
    return packed


# how far a kernel's answer may be from float32's on the probe, relative to its largest value:
# a half type rounds the product to 8 (bfloat16) or 11 (float16) bits of mantissa
PROBE_TOLERANCE = {torch.float32: 1e-5, torch.bfloat16: 1e-2, torch.float16: 2e-3}


def onednn_usable(device: torch.device, dtype: torch.dtype) -> bool:
    """Private ops: use them only where they exist and give F.linear's answer. For bfloat16
    and float16 oneDNN needs the CPU's support (AVX512-BF16 or AMX; AVX512-FP16): without
    it the pack raises, and the candidate is left out."""
    if device.type != "cpu" or dtype not in PROBE_TOLERANCE:
        return False
    if not torch.backends.mkldnn.is_available():  # type: ignore[no-untyped-call]
        return False
    try:
        w = torch.randn(24, 16, generator=torch.Generator().manual_seed(0)).to(dtype)
        x = torch.randn(3, 16, generator=torch.Generator().manual_seed(1)).to(dtype)
        want = F.linear(x.float(), w.float())
        got = onednn_linear(x, onednn_pack(w)).float()
        return bool((got - want).abs().max() <= PROBE_TOLERANCE[dtype] * want.abs().max())
    except (RuntimeError, AttributeError):
        return False


@dataclass(frozen=True)
class Kernel:
    name: str
    pack: Callable[[torch.Tensor], torch.Tensor]  # a plain (N, K) weight -> this kernel's form
    run: Linear


PLAIN = Kernel("F.linear", lambda w: w, F.linear)
ONEDNN = Kernel("oneDNN packed", onednn_pack, onednn_linear)


def candidates(device: torch.device, dtype: torch.dtype) -> list[Kernel]:
    return [PLAIN, ONEDNN] if onednn_usable(device, dtype) else [PLAIN]


def kernel_named(name: str, device: torch.device, dtype: torch.dtype) -> Kernel:
    """A candidate forced by name (tests, benchmarks); a UserError when it cannot run here."""
    usable = candidates(device, dtype)
    for kernel in usable:
        if kernel.name == name:
            return kernel
    names = ", ".join(k.name for k in usable)
    raise UserError(f"kernel {name!r} does not run on {device.type} {dtype}; use {names}")


@dataclass(frozen=True)
class Linears:
    """The kernel each projection runs on (the forward and the compiled step both use it)."""

    qkv: Linear = F.linear
    o: Linear = F.linear
    gate_up: Linear = F.linear
    down: Linear = F.linear
    lm_head: Linear = F.linear


@dataclass(frozen=True)
class KernelChoice:
    projection: str
    shape: tuple[int, int]  # (out, in)
    seconds: Mapping[int, Mapping[str, float]]  # batch -> kernel name -> fastest seconds
    chosen: str

    def fastest(self, batch: int) -> str:
        times = self.seconds[batch]
        return min(times, key=times.__getitem__)

    def describe(self) -> str:
        """`gate_up 3072x576: oneDNN packed  B=1 0.083 ms (F.linear 0.292)  B=8 0.180 ms
        (F.linear 0.480)`: the kernel kept and, per batch, its time and the others'."""
        out, inp = self.shape
        head = f"{self.projection} {out}x{inp}: {self.chosen}"
        return f"{head}  {timings_text(self.seconds, self.chosen)}"


def timed_batches(batches: Iterable[int]) -> list[int]:
    """The batch sizes a load-time choice times: each capped at MAX_TIMED_BATCH."""
    return sorted({min(b, MAX_TIMED_BATCH) for b in batches})


def choose_kernels(
    weights: Mapping[str, torch.Tensor],
    batches: Sequence[int],
    kernels: Sequence[Kernel],
    reps: int = 7,
) -> dict[str, KernelChoice]:
    """Per projection (a plain (N, K) weight each), the kernel with the least summed slowdown
    against the fastest at each batch (capped at MAX_TIMED_BATCH; on its first MAX_TIMED_BYTES
    of rows). Every kernel runs WARM_CALLS times on every batch before any call is timed: on
    a 16-core Xeon the first kernel timed in the process read 5.0 ms (the median of 5 calls)
    for a 0.05 ms matvec and lost a choice it should have won. One candidate: chosen without
    timing."""
    batches = timed_batches(batches)
    gen = torch.Generator().manual_seed(0)
    choices = {}
    for name, plain in weights.items():
        out, inp = plain.shape
        if len(kernels) == 1:
            choices[name] = KernelChoice(name, (out, inp), {}, kernels[0].name)
            continue
        rows = max(1, MAX_TIMED_BYTES // (inp * plain.element_size()))
        sample = plain[:rows].contiguous() if rows < out else plain
        packed = [(kernel, kernel.pack(sample)) for kernel in kernels]
        xs = {b: torch.randn(b, inp, generator=gen).to(plain.device, plain.dtype) for b in batches}
        calls = {b: [(k.name, partial(k.run, x, w)) for k, w in packed] for b, x in xs.items()}
        with torch.inference_mode():
            for kernel, w in packed:
                for x in xs.values():
                    for _ in range(WARM_CALLS):
                        kernel.run(x, w)
            seconds = {b: fastest_in_turns(calls[b], reps) for b in xs}
        del packed, calls
        chosen = least_summed_slowdown(seconds, [k.name for k in kernels])
        choices[name] = KernelChoice(name, (out, inp), seconds, chosen)
    return choices


def summary_of(kernel_names: Iterable[str]) -> str:
    """One name for the header: the kernel every projection runs on, or the mix."""
    names = list(kernel_names)
    if len(set(names)) == 1:
        return names[0]
    return " + ".join(f"{k} ({names.count(k)}/{len(names)})" for k in dict.fromkeys(names))
