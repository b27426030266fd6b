"""The matvec the batch-1 step's layers call from C, BLAS's sgemv (F.linear's) or the fused
library's own (the C matmul's), chosen by timing that step at load.

kernels.py times each projection on its own layers' weights in turn. Where they fit in the
L3 cache (a 56M model's q/k/v: 25 MB) its calls read them from there, and kernels of one
layout read the samples the kernel before them just read; the step reads every other weight
between two calls of a projection, from memory. Two matvecs within ~10% can then rank the
other way in the step: on a Xeon @ 2.80GHz capped to AVX2 the choice gave 56M's layer
projections F.linear at batch 1, and the step ran 1.10x the C matmul's chain of matvecs
(bench/RESULTS.md). So where the layers run in one C call, the batch-1 step is timed with
each matvec in every layer projection, in turns, and the faster is kept. Above batch 1 each
projection keeps its kernel; the lm_head, called from Python, keeps its own."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from infertop.engine.backends.torch.fused_decode import LAYER_PROJECTIONS
from infertop.engine.backends.torch.kernels import (
    OWN_NAME,
    PLAIN,
    Kernel,
    by_rows,
    candidates,
    ran_at,
)
from infertop.engine.backends.torch.timing import fastest_in_turns, timings_text

if TYPE_CHECKING:
    from infertop.engine.backends.torch.model import TorchLlama

MATVECS = (PLAIN.name, OWN_NAME)


@dataclass(frozen=True)
class MatvecChoice:
    seconds: Mapping[str, float]  # the layers' kernel at batch 1 -> the fastest step
    chosen: str

    def describe(self) -> str:
        """`batch 1, timed on the step: the layers' matvecs on C matmul  B=1 7.210 ms
        (F.linear 7.930)`."""
        timings = timings_text({1: self.seconds}, self.chosen)
        return f"batch 1, timed on the step: the layers' matvecs on {self.chosen}  {timings}"


def with_one_row(kernel: Kernel, one_row: Kernel, usable: Mapping[str, Kernel]) -> Kernel:
    """`kernel` with `one_row` for a single row; above it, and in a graph, as it was."""
    if ran_at(kernel.name, 1) == one_row.name:
        return kernel
    above = ran_at(kernel.name, 2)
    more = usable[above]
    swapped = one_row if above == one_row.name else by_rows(one_row, more, more)
    return replace(swapped, in_graph=kernel.graph_run, graphable=True)


def matvec_options(
    kernels: Mapping[str, Kernel], usable: Mapping[str, Kernel]
) -> dict[str, dict[str, Kernel]]:
    """Per matvec, the model's kernels with it at batch 1 in every layer projection; none
    where a layer projection runs another kernel at batch 1 (oneDNN's layout) or the C
    matmul is not here."""
    if OWN_NAME not in usable:
        return {}
    if any(ran_at(kernels[p].name, 1) not in MATVECS for p in LAYER_PROJECTIONS):
        return {}
    options = {}
    for m in MATVECS:
        layers = {p: with_one_row(kernels[p], usable[m], usable) for p in LAYER_PROJECTIONS}
        options[m] = {**kernels, **layers}
    return options


def choose_matvec(
    model: TorchLlama,
    step: Callable[[], object],
    announce: Callable[[], None] | None = None,
    reps: int = 5,
) -> MatvecChoice | None:
    """Time `step` (a batch-1 decode step of `model`) with each matvec in every layer
    projection, the two taking turns, and run the faster; None (and the kernels as they
    were) where the layers cannot run in one C call with either. `announce` is called
    once there is something to time."""
    fused = model.fused
    if fused is None or fused.one_row_reason is not None or isinstance(fused.sgemv, str):
        return None
    usable = {k.name: k for k in candidates(model.device, model.dtype)}
    options = matvec_options(model.kernels, usable)
    if not options:
        return None
    if announce:
        announce()

    def under(kernels: dict[str, Kernel]) -> Callable[[], object]:
        def call() -> object:
            model.run_kernels(kernels)  # the step's plan for these kernels is kept (its key)
            return step()

        return call

    calls = [(m, under(kernels)) for m, kernels in options.items()]
    for _, call in calls:  # the first call makes its plan; the rounds keep the fastest call
        call()
    seconds = fastest_in_turns(calls, reps)
    chosen = min(seconds, key=seconds.__getitem__)
    model.run_kernels(options[chosen])
    model.kernel_choices = {  # each projection's line names the kernel it runs
        p: replace(c, chosen=model.kernel_names[p], kernel=model.kernels[p])
        for p, c in model.kernel_choices.items()
    }
    return MatvecChoice(seconds, chosen)
