"""How many CPU threads the decode step runs on, chosen by timing the real step at load.

torch starts one thread per core, which suits a prefill and a big model's matmuls. But every
parallel region of a decode step waits for all its threads to wake and meet: on a 16-core
Intel Xeon the `tiny` model's step took 1.76 ms, against 0.32 ms on 2 of its cores
(bench/RESULTS.md). And a process started with more threads than it has CPUs loses more
(a CPU quota is read before this and caps the count: engine/cpu_quota.py). So at load the
decode step is timed at the default count and at each halving of it down to 1, at batch 1
and at the sweep's largest batch, and decode keeps the count with the least summed
slowdown; prefill keeps the default. `--threads N` sets both, untimed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch

from infertop.engine.backends.torch.timing import (
    fastest_in_turns,
    least_summed_slowdown,
    timings_text,
    warm,
)
from infertop.engine.text import plural

PRUNE_RATIO = 2.0


def thread_counts(default: int) -> list[int]:
    """The counts worth timing: the default and each halving of it, down to 1."""
    counts = [max(default, 1)]
    while counts[-1] > 1:
        counts.append(counts[-1] // 2)
    return counts


@dataclass(frozen=True)
class ThreadChoice:
    default: int  # torch's count at load: prefill's
    seconds: Mapping[int, Mapping[int, float]]  # batch -> threads -> fastest decode step
    chosen: int
    # count -> its fastest warm-up call at the first batch, where over PRUNE_RATIO x the best
    left_out: Mapping[int, float] = field(default_factory=dict)

    def describe(self) -> str:
        """`decode on 1 thread (prefill on 2)  B=1 0.210 ms (2 threads 0.250)  B=8 ...`:
        the count kept and, per batch, its step time and the others'; then the counts left
        out after their warm-up, `(8 threads 1.920 ms in the warm-up, over 2x the best: not
        timed)`."""
        head = f"decode on {plural(self.chosen, 'thread')} (prefill on {self.default})"
        text = f"{head}  {timings_text(self.seconds, self.chosen, lambda n: plural(n, 'thread'))}"
        if not self.left_out:
            return text
        out = ", ".join(f"{plural(n, 'thread')} {t * 1e3:.3f}" for n, t in self.left_out.items())
        return f"{text}  ({out} ms in the warm-up, over {PRUNE_RATIO:g}x the best: not timed)"


def at_threads(n: int, step: Callable[[], object]) -> Callable[[], object]:
    def call() -> object:
        torch.set_num_threads(n)
        return step()

    return call


def choose_threads(
    steps: Mapping[int, Callable[[], object]], counts: Sequence[int], reps: int = 5
) -> ThreadChoice:
    """Time `steps` (batch -> one decode step; batch 1 first) at every count, the counts
    taking turns, and keep the count with the least summed slowdown over the batches. A
    count other than the first (torch's) whose warm-up at the first batch took over
    PRUNE_RATIO x the best is not timed further: on many cores a big model's step on 1
    thread would cost the load seconds, and it cannot win. Where a count other than the
    first wins, those two are timed again. Call it in the thread that runs the model (OpenMP
    keeps the count per thread); it leaves the count it found set."""
    default = torch.get_num_threads()
    seconds: dict[int, dict[int, float]] = {}
    kept = list(counts)
    left_out: dict[int, float] = {}
    try:
        for batch, step in steps.items():
            warmed = {n: warm(at_threads(n, step)) for n in kept}
            if not seconds:
                best = min(warmed.values())
                # torch's own count stays: a slow spell of the machine during its warm-up
                # (one run read it at over twice 1 thread's time there) must not settle it
                kept = [n for n in kept if n == counts[0] or warmed[n] <= PRUNE_RATIO * best]
                left_out = {n: t for n, t in warmed.items() if n not in kept}
            seconds[batch] = fastest_in_turns([(n, at_threads(n, step)) for n in kept], reps)
        chosen = least_summed_slowdown(seconds, kept)
        if chosen != counts[0]:
            # Fewer threads than torch's won. A slow spell over the whole timing (on a busy
            # guest a parallel region waits for a CPU the host has taken) would set that
            # count for the run: with 10-36% steal, a load timed a 250M eager step at 83 ms,
            # its time on 1 thread, where 2 threads run it in ~45. So the two take turns
            # again, and each keeps its fastest call of both.
            pair = [counts[0], chosen]
            for batch, step in steps.items():
                again = fastest_in_turns([(n, at_threads(n, step)) for n in pair], reps)
                for n, t in again.items():
                    seconds[batch][n] = min(seconds[batch][n], t)
            chosen = least_summed_slowdown(seconds, kept)
    finally:
        torch.set_num_threads(default)
    return ThreadChoice(default, seconds, chosen, left_out)
