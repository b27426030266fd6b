"""The matmul kernels a projection can run on, and the choice among them by measurement.

Which kernel is fastest depends on the CPU: prepacked oneDNN made decode 2-3x faster than
F.linear on an AMD EPYC and slower at batch 1 on an Intel Xeon (bench/RESULTS.md). So at
load each distinct projection (q/k/v, o, gate/up, down, lm_head) is timed on its real
weights with every candidate, at batch 1 and at the sweep's largest batch, and the one with
the least summed slowdown against the fastest in each regime is kept. A weight is stored in
one layout only (a second would double the model's memory), so when the regimes disagree
across layouts the choice says so.

The candidates: F.linear everywhere; on a CPU in float32, and in bfloat16 or float16 where
oneDNN runs that type natively (there it made a bfloat16 step 0.64-0.70x as long as
F.linear's), oneDNN on the weight packed in its blocked layout and oneDNN on the plain
weight; and in float32 and bfloat16 the fused C library's own (fused_ops.c's own_matmul and
own_matmul_bf16), on the plain weight. On a Xeon @ 2.80GHz that took 0.98-1.03x F.linear's
time at batch 1 and 0.72-0.80x oneDNN packed's at batch 8 (bench/matmul.py); on an AMD
EPYC, MKL's sgemv (F.linear's) streamed half as fast as oneDNN packed, which a batch-1 step
cannot call from C (fused_decode.py), so there it is also the candidate that keeps a
batch-1 step's layers in one C call. Two kernels of one layout can share a weight, so where they win
different regimes the choice may be both: one for a single row (a decode step at batch 1),
the other for more rows. On a 2-core Intel Xeon @ 2.80GHz one kernel for every batch made a
250M step 1.30x the fastest at batch 1 (oneDNN packed) or 1.70x at batch 8 (F.linear);
F.linear for one row and oneDNN above, 1.05x and 1.08x (bench/kernel_mix.py). Each
projection is timed on its layers' weights in turn, as the step reads them
(timing_samples); where its layers fit in the L3 cache they are read from there, so at
batch 1 the matvec the layers call from C is then chosen on the step itself
(one_row_matvec.py). MKL's packed GEMM is left out: its packed weight serves one batch size
and it needs the plain weight beside it for the others (bench/kernel_candidates.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import cycle
from pathlib import Path

import torch
import torch.nn.functional as F

from infertop.engine.backends.torch.fused_build import FusedOps, load_fused_ops
from infertop.engine.backends.torch.timing import (
    WARM_CALLS,
    fastest_in_turns,
    least_summed_slowdown,
    timings_text,
)
from infertop.engine.errors import UserError
from infertop.engine.memory import trim_heap

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


def unchanged(w: torch.Tensor) -> torch.Tensor:
    return w


@dataclass(frozen=True)
class Kernel:
    name: str
    pack: Callable[[torch.Tensor], torch.Tensor]  # a plain (N, K) weight -> this kernel's form
    run: Linear
    # what a compiled step calls: one kernel for every batch (a graph with a dynamic batch
    # cannot branch on it; None: `run`)
    in_graph: Linear | None = None
    # False where a compiled graph cannot call `run` (a ctypes call): the graph runs
    # in_graph, which the choice sets to the kernel of this layout that loses least
    graphable: bool = True

    @property
    def layout(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """Kernels with the same `pack` can run on one stored weight."""
        return self.pack

    @property
    def graph_run(self) -> Linear:
        return self.in_graph or self.run


def onednn_or_linear(
    x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None
) -> torch.Tensor:
    """oneDNN on a plain weight for up to MAX_TIMED_BATCH rows (the decode steps the choice
    timed), F.linear for more (a prefill): on a 2-core Intel Xeon @ 2.80GHz oneDNN on the
    plain weights made smollm2-135m's prefill of 8 x 128 tokens 1.5x as long as F.linear."""
    if x.numel() > MAX_TIMED_BATCH * x.shape[-1]:
        return F.linear(x, w, b)
    return onednn_linear(x, w, b)


PLAIN = Kernel("F.linear", unchanged, F.linear)
ONEDNN = Kernel("oneDNN packed", onednn_pack, onednn_linear)
# a compiled decode step runs oneDNN at every batch: it cannot branch on its dynamic batch
ONEDNN_PLAIN = Kernel("oneDNN", unchanged, onednn_or_linear, in_graph=onednn_linear)


OWN_NAME = "C matmul"


def own_matmul(ops: FusedOps, dtype: torch.dtype = torch.float32) -> Kernel:
    """fused_ops.c's own_matmul (own_matmul_bf16 for bfloat16) on the plain weight, for up to
    MAX_TIMED_BATCH contiguous rows of `dtype` (the decode steps the choice times; F.linear
    runs more, a prefill). From Python a call costs 6.8 us against F.linear's 4.3 (a 16x16
    matrix); the batch-1 float32 step that matters calls it from C. Under the profiler each
    call is a range, infertop::matmul."""

    def bf16(w: int, bias: int | None, x: int, out: int, n: int, k: int, rows: int) -> None:
        widened = torch.empty(rows * k)  # x in float32, a scratch row per row of x
        ops.own_matmul_bf16(w, bias, x, out, widened.data_ptr(), n, k, rows)

    call = bf16 if dtype == torch.bfloat16 else ops.own_matmul

    def run(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        n, k = w.shape
        rows = x.numel() // k
        ours = x.dtype == w.dtype == dtype and (b is None or b.dtype == dtype)
        if rows > MAX_TIMED_BATCH or not (ours and x.is_contiguous() and w.is_contiguous()):
            return F.linear(x, w, b)
        out = torch.empty(rows * n, dtype=dtype).view(*x.shape[:-1], n)  # 1 us < empty((.., n))
        bias = None if b is None else b.contiguous()
        args = (w.data_ptr(), None if bias is None else bias.data_ptr(), x.data_ptr())
        if torch.autograd.profiler._is_profiler_enabled:
            with torch.profiler.record_function("infertop::matmul"):
                call(*args, out.data_ptr(), n, k, rows)
        else:
            call(*args, out.data_ptr(), n, k, rows)
        return out

    return Kernel(OWN_NAME, unchanged, run, in_graph=F.linear, graphable=False)


OWN_DTYPES = (torch.float32, torch.bfloat16)


def own_matmul_here(device: torch.device, dtype: torch.dtype) -> Kernel | None:
    """The C matmul where the fused library builds: float32 or bfloat16 on a CPU."""
    if device.type != "cpu" or dtype not in OWN_DTYPES:
        return None
    ops = load_fused_ops()
    if isinstance(ops, str):
        return None
    if (ops.library, dtype) not in OWN_MATMULS:  # one Kernel each: a choice names it again
        OWN_MATMULS[ops.library, dtype] = own_matmul(ops, dtype)
    return OWN_MATMULS[ops.library, dtype]


OWN_MATMULS: dict[tuple[Path, torch.dtype], Kernel] = {}


def by_rows(one_row: Kernel, more_rows: Kernel, in_graph: Kernel) -> Kernel:
    """`one_row` for an input of one row (a decode step at batch 1), `more_rows` for more:
    two kernels of one layout over one stored weight; `in_graph` for a compiled step."""
    assert one_row.layout is more_rows.layout is in_graph.layout, "one weight, one layout"
    single, multi = one_row.run, more_rows.run

    def run(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        return single(x, w, b) if x.numel() == x.shape[-1] else multi(x, w, b)

    name = f"{one_row.name} at B=1, {more_rows.name} above"
    return Kernel(name, one_row.pack, run, in_graph.graph_run)


def candidates(device: torch.device, dtype: torch.dtype) -> list[Kernel]:
    found = [PLAIN, ONEDNN, ONEDNN_PLAIN] if onednn_usable(device, dtype) else [PLAIN]
    own = own_matmul_here(device, dtype)
    return found if own is None else [*found, own]


def kernel_named(name: str, device: torch.device, dtype: torch.dtype) -> Kernel:
    """A candidate forced by name (tests, benchmarks), or two by rows ("F.linear at B=1,
    oneDNN above": the second also runs in a compiled step); a UserError when it cannot run
    here."""
    usable = {k.name: k for k in candidates(device, dtype)}
    if name in usable:
        return usable[name]
    if " at B=1, " in name and name.endswith(" above"):
        one, more = (usable.get(n) for n in (ran_at(name, 1), ran_at(name, 2)))
        if one is not None and more is not None and one.layout is more.layout:
            return by_rows(one, more, more)
    names = ", ".join(usable)
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
    kernel: Kernel = field(compare=False)  # the one chosen

    def fastest(self, batch: int) -> str:
        times = self.seconds[batch]
        return min(times, key=times.__getitem__)

    def describe(self) -> str:
        """`gate_up 3072x576: oneDNN packed  B=1 0.083 ms (F.linear 0.292)  B=8 0.180 ms
        (F.linear 0.480)`: the kernel kept and, per batch, its time and the others'. Kernels
        chosen by rows are each named at the batch they run."""
        out, inp = self.shape
        head = f"{self.projection} {out}x{inp}: {self.chosen}"
        parts = []
        for batch, times in self.seconds.items():
            parts.append(timings_text({batch: times}, ran_at(self.chosen, batch)))
        return f"{head}  {'  '.join(parts)}"


def ran_at(kernel_name: str, batch: int) -> str:
    """The kernel that runs at `batch`: the one a by_rows kernel's name says, or the kernel
    named."""
    if " at B=1, " not in kernel_name:
        return kernel_name
    one_row, more_rows = kernel_name.removesuffix(" above").split(" at B=1, ")
    return one_row if batch == 1 else more_rows


def timed_batches(batches: Iterable[int]) -> list[int]:
    """The batch sizes a load-time choice times: each capped at MAX_TIMED_BATCH."""
    return sorted({min(b, MAX_TIMED_BATCH) for b in batches})


def timing_samples(layers: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """What a projection is timed on: as many of its layers' weights as make MAX_TIMED_BYTES,
    taken in turn, so that each call reads its weight from memory as the decode step does
    (one weight called again and again is timed from the cache: on a 2-core Intel Xeon
    @ 2.80GHz the choice made that way changed from run to run, and ran a 250M step at batch
    1 1.08x as long, bench/kernel_mix.py); a matrix bigger than that on its first rows."""
    first = layers[0]
    out, inp = first.shape
    rows = max(1, MAX_TIMED_BYTES // (inp * first.element_size()))
    if rows < out:
        return [first[:rows].contiguous()]
    return list(layers[: max(1, rows // out)])


def in_turn(run: Linear, x: torch.Tensor, weights: Sequence[torch.Tensor]) -> Callable[[], object]:
    """A call of `run` on `x` and the next of `weights` each time."""
    turn = cycle(weights)
    return lambda: run(x, next(turn))


def choose_kernels(
    weights: Mapping[str, Sequence[torch.Tensor]],
    batches: Sequence[int],
    kernels: Sequence[Kernel],
    reps: int = 7,
) -> dict[str, KernelChoice]:
    """Per projection (its plain (N, K) weight in each layer), the kernel with the least
    summed slowdown against the fastest at each batch (capped at MAX_TIMED_BATCH), timed on
    timing_samples. Every kernel runs WARM_CALLS times on every batch before any call is
    timed: on a 16-core Xeon the first kernel timed in the process read 5.0 ms (the median
    of 5 calls) for a 0.05 ms matvec and lost a choice it should have won. One candidate:
    chosen without timing."""
    batches = timed_batches(batches)
    gen = torch.Generator().manual_seed(0)
    choices = {}
    for name, layers in weights.items():
        first = layers[0]
        out, inp = first.shape
        if len(kernels) == 1:
            choices[name] = KernelChoice(name, (out, inp), {}, kernels[0].name, kernels[0])
            continue
        xs = {b: torch.randn(b, inp, generator=gen).to(first.device, first.dtype) for b in batches}
        seconds = time_kernels(timing_samples(layers), xs, kernels, reps)
        trim_heap()  # the packed samples' pages: else each projection's stayed on the heap
        chosen = choose(seconds, kernels)
        choices[name] = KernelChoice(name, (out, inp), seconds, chosen.name, chosen)
    return choices


def time_kernels(
    samples: Sequence[torch.Tensor],
    xs: Mapping[int, torch.Tensor],
    kernels: Sequence[Kernel],
    reps: int,
) -> dict[int, dict[str, float]]:
    """Each kernel's fastest call at each batch, on its own packed copy of the samples
    (freed on return: the loop variables kept the last batch's copies alive)."""
    packed = [(kernel, [kernel.pack(w) for w in samples]) for kernel in kernels]
    calls = {b: [(k.name, in_turn(k.run, x, ws)) for k, ws in packed] for b, x in xs.items()}
    with torch.inference_mode():
        for i, at_batch in enumerate(calls.values()):  # every kernel at every batch
            for _, call in at_batch:
                # each sample once (its first touch: a packed copy's page faults), then
                # WARM_CALLS at each further batch
                for _ in range(max(WARM_CALLS, len(samples) if i == 0 else 0)):
                    call()
        return {b: fastest_in_turns(calls[b], reps) for b in xs}


def choose(seconds: Mapping[int, Mapping[str, float]], kernels: Sequence[Kernel]) -> Kernel:
    """The kernel with the least summed slowdown over the batches, where the kernels of one
    layout may split the batches: the fastest of them at batch 1 for one row and the
    fastest at the largest batch for more rows (by_rows), when they differ. A compiled step
    takes one of them for every batch: of those a graph can call, the one with the least
    summed slowdown (so does a kernel a graph cannot call, chosen alone)."""
    options = list(kernels)
    if 1 in seconds and len(seconds) > 1:
        largest = max(seconds)
        for layout in dict.fromkeys(k.layout for k in kernels):
            same = [k for k in kernels if k.layout is layout]
            one = min(same, key=lambda k: seconds[1][k.name])
            more = min(same, key=lambda k: seconds[largest][k.name])
            if one is not more:
                options.append(by_rows(one, more, in_graph(seconds, same)))

    def at(kernel: Kernel, batch: int) -> float:
        times = seconds[batch]
        return times[ran_at(kernel.name, batch)]

    per_batch = {b: {k.name: at(k, b) for k in options} for b in seconds}
    chosen = least_summed_slowdown(per_batch, options, lambda k: k.name)
    if chosen.graphable:
        return chosen
    same = [k for k in kernels if k.layout is chosen.layout]
    return replace(chosen, in_graph=in_graph(seconds, same).graph_run, graphable=True)


def in_graph(seconds: Mapping[int, Mapping[str, float]], same: Sequence[Kernel]) -> Kernel:
    """Of kernels of one layout, the one a compiled step runs for every batch: of those a
    graph can call, the one with the least summed slowdown."""
    graphable = [k for k in same if k.graphable] or [PLAIN]
    return least_summed_slowdown(seconds, graphable, lambda k: k.name)


def summary_of(kernel_names: Iterable[str]) -> str:
    """One name for the header: the kernel every projection runs on, or the mix, the most
    used first (an 80-column header cuts the rest); kernels by rows as "F.linear/oneDNN"
    (batch 1/above)."""
    names = [f"{ran_at(n, 1)}/{ran_at(n, 2)}" if n.endswith(" above") else n for n in kernel_names]
    if len(set(names)) == 1:
        return names[0]
    kinds = sorted(dict.fromkeys(names), key=names.count, reverse=True)  # stable among ties
    return " + ".join(f"{k} ({names.count(k)}/{len(names)})" for k in kinds)
