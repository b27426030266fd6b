"""The matvecs of the batch-1 step, BLAS's sgemv (F.linear's) or the fused library's own (the
C matmul's): the layers' (called from C) and the lm_head's, chosen by timing that step at
load.

kernels.py times each projection on its own layers' weights in turn. Where they fit in the
L3 cache (a 56M model's q/k/v: 25 MB) its calls read them from there, and kernels of one
layout read the samples the kernel before them just read; the step reads every other weight
between two calls of a projection, from memory. Two matvecs within ~10% can then rank the
other way in the step: on a Xeon @ 2.80GHz capped to AVX2 the choice gave 56M's layer
projections F.linear at batch 1, and the step ran 1.10x the C matmul's chain of matvecs
(bench/RESULTS.md). The lm_head is one weight, timed alone on its own hot copy: on a 2-core
Xeon (model 207) a 56M lm_head's two matvecs timed 1.51 and 1.52 ms at load, and the step
with F.linear's took 1.07x as long as with the C matmul's. So where the layers run in one C
call, the batch-1 step is timed with each matvec in every layer projection, in turns, with
the lm_head's two matvecs taking turns within them; the step less its lm_head ranks the
layers' matvecs and the lm_head's call within the step ranks its own. Above batch 1 each
projection keeps its kernel.

Where a projection's choice runs oneDNN on its plain weight at batch 1, the layers go op by
op: a C call cannot call oneDNN. On a 2-core AMD EPYC (Zen 3) oneDNN won 56M's gate_up and
250M's q/k/v, gate_up and down alone, and the op-by-op step took 1.27x (56M) the fastest
chain of matvecs. oneDNN shares the plain weight with both matvecs, so there the step is
also timed as each projection chose it (KEPT), beside the two matvecs in one C call."""

from __future__ import annotations

import itertools
import time
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
    import torch

    from infertop.engine.backends.torch.model import TorchLlama

MATVECS = (PLAIN.name, OWN_NAME)
HEAD = "lm_head"
# the option of the kernels as each projection chose them, where one runs oneDNN at batch 1
KEPT = "each projection's choice"


@dataclass(frozen=True)
class MatvecChoice:
    # the layers' matvec at batch 1 (or KEPT) -> the fastest step less its lm_head
    seconds: Mapping[str, float]
    chosen: str
    # the lm_head's matvec at batch 1 -> its fastest call within the step; likewise
    head_seconds: Mapping[str, float]
    head_chosen: str

    def describe(self) -> str:
        """`batch 1, timed on the step: the layers' matvecs on C matmul  B=1 5.710 ms
        (F.linear 6.430); the lm_head's on C matmul  B=1 1.500 ms (F.linear 1.730)`: each
        part that was timed with both."""
        parts = []
        if len(self.seconds) > 1:
            timings = timings_text({1: self.seconds}, self.chosen)
            parts.append(f"the layers' matvecs on {self.chosen}  {timings}")
        if len(self.head_seconds) > 1:
            timings = timings_text({1: self.head_seconds}, self.head_chosen)
            parts.append(f"the {HEAD}'s on {self.head_chosen}  {timings}")
        return "batch 1, timed on the step: " + "; ".join(parts)


def with_one_row(kernel: Kernel, one_row: Kernel, usable: Mapping[str, Kernel]) -> Kernel:
    """`kernel` with `one_row` for a single row; above it, and in a graph, as it was."""
    if ran_at(kernel.name, 1) == one_row.name:
        return kernel
    above = ran_at(kernel.name, 2)
    more = usable[above]
    swapped = one_row if above == one_row.name else by_rows(one_row, more, more)
    return replace(swapped, in_graph=kernel.graph_run, graphable=True)


def matvec_options(
    kernels: Mapping[str, Kernel], usable: Mapping[str, Kernel], projections: tuple[str, ...]
) -> dict[str, dict[str, Kernel]]:
    """Per matvec, these projections' kernels with it at batch 1, and KEPT (none swapped)
    where one of them runs another kernel there (oneDNN on the plain weight); none where one
    is stored in another layout (oneDNN packed) or the C matmul is not here."""
    if OWN_NAME not in usable or any(kernels[p].layout is not PLAIN.layout for p in projections):
        return {}
    options = {
        m: {p: with_one_row(kernels[p], usable[m], usable) for p in projections} for m in MATVECS
    }
    if any(ran_at(kernels[p].name, 1) not in MATVECS for p in projections):
        options[KEPT] = {}
    return options


class HeadClock:
    """The lm_head's kernel with its calls timed: a step calls it once."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def timed(self, kernel: Kernel) -> Kernel:
        run = kernel.run

        def timed_run(
            x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None
        ) -> torch.Tensor:
            t0 = time.perf_counter()
            out = run(x, w, b)
            self.seconds = time.perf_counter() - t0
            return out

        return replace(kernel, run=timed_run)


def choose_matvec(
    model: TorchLlama,
    step: Callable[[], object],
    announce: Callable[[], None] | None = None,
    reps: int = 5,
) -> MatvecChoice | None:
    """Time `step` (a batch-1 decode step of `model`) with each matvec in every layer
    projection, the two taking turns and the lm_head's two matvecs taking turns within
    them (each part also as chosen per projection, KEPT, where that runs oneDNN at batch 1),
    and run the faster of each; None (and the kernels as they were) where the layers cannot
    run in one C call on either matvec. `announce` is called once there is something to
    time."""
    fused = model.fused
    if fused is None or isinstance(fused.sgemv, str):
        return None
    kept = model.kernels
    usable = {k.name: k for k in candidates(model.device, model.dtype)}
    layers = matvec_options(kept, usable, LAYER_PROJECTIONS)
    if not layers:
        return None
    heads = matvec_options(kept, usable, (HEAD,)) or {ran_at(kept[HEAD].name, 1): {}}
    if announce:
        announce()
    clock = HeadClock()
    layer_times: dict[str, list[float]] = {m: [] for m in layers}
    head_times: dict[str, list[float]] = {h: [] for h in heads}

    def run(m: str, h: str) -> None:
        """One step with the layers on `m` and the lm_head on `h` (each layers' option's
        plan is kept: its key), its time less the lm_head's and the lm_head's recorded."""
        head = heads[h].get(HEAD, kept[HEAD])
        model.run_kernels({**kept, **layers[m], HEAD: clock.timed(head)})
        clock.seconds = 0.0
        t0 = time.perf_counter()
        step()
        layer_times[m].append(time.perf_counter() - t0 - clock.seconds)
        head_times[h].append(clock.seconds)

    def in_turn(first: int, m: str) -> Callable[[], object]:
        """`m`'s calls, the lm_head's matvecs taking turns from the `first`th: in one round
        the layers' options run with different ones."""
        turn = itertools.count(first)
        return lambda: run(m, head_names[next(turn) % len(head_names)])

    head_names, layer_names = list(heads), list(layers)
    # the first call of each layers' option makes its plan, and of each lm_head option its
    # first call (a oneDNN primitive); a plan does not hold the lm_head's kernel
    for i in range(max(len(layers), len(heads))):
        run(layer_names[i % len(layers)], head_names[i % len(heads)])
    for times in (*layer_times.values(), *head_times.values()):
        times.clear()
    fastest_in_turns([(m, in_turn(i, m)) for i, m in enumerate(layers)], reps)
    seconds = {m: min(t) for m, t in layer_times.items()}
    head_seconds = {h: min(t) for h, t in head_times.items()}
    chosen = min(seconds, key=seconds.__getitem__)
    head_chosen = min(head_seconds, key=head_seconds.__getitem__)
    model.run_kernels({**kept, **layers[chosen], **heads[head_chosen]})
    model.kernel_choices = {  # each projection's line names the kernel it runs
        p: replace(c, chosen=model.kernel_names[p], kernel=model.kernels[p])
        for p, c in model.kernel_choices.items()
    }
    return MatvecChoice(seconds, chosen, head_seconds, head_chosen)
