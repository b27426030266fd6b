"""The measurement behind the load-time choices (matmul kernels, decode threads): each
contestant's fastest call, the contestants taking turns, the rule that picks one over
several batch sizes, and the line that reports the timings."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import TypeVar, cast

K = TypeVar("K", bound=Hashable)
C = TypeVar("C")

WARM_CALLS = 3  # per contestant and batch, before any call is timed
SLOW_CALL_S = 2e-3  # when every call takes longer, 3 rounds are enough (and the load waits)
# Summed slowdowns closer than this are one choice, made by noise: on a 2-core Intel Xeon
# @ 2.80GHz a 56M lm_head's F.linear/oneDNN pair and oneDNN packed summed 2.18 and 2.19 over
# batches 1 and 8, and the load picked either (packed ran batch 1 1.2x as long)
NEAR_TIE = 0.05


def fastest_in_turns(
    calls: Sequence[tuple[K, Callable[[], object]]], reps: int, slow_rounds: int = 3
) -> dict[K, float]:
    """The fastest wall time of each call over `reps` rounds, the calls taking turns in a
    rotating order: a slow spell of the machine (or of one contestant's first calls) only
    adds time, so the fastest call is the steadiest reading, and the turns give every
    contestant the same chances. `slow_rounds` rounds when every call takes over
    SLOW_CALL_S."""
    times: dict[K, list[float]] = {key: [] for key, _ in calls}
    for r in range(reps):
        for key, call in [*calls[r % len(calls) :], *calls[: r % len(calls)]]:
            t0 = time.perf_counter()
            call()
            times[key].append(time.perf_counter() - t0)
        if r + 1 == slow_rounds and min(min(t) for t in times.values()) > SLOW_CALL_S:
            break
    return {key: min(t) for key, t in times.items()}


def warm(call: Callable[[], object]) -> float:
    """WARM_CALLS calls, or two where a call is slow (a big model's step is steady from its
    second call, and each costs the load a good part of a second); the fastest, so that one
    slow spell of the machine does not count against it."""
    times: list[float] = []
    while len(times) < WARM_CALLS and (len(times) < 2 or min(times) < SLOW_CALL_S):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return min(times)


def least_summed_slowdown(
    seconds: Mapping[int, Mapping[K, float]],
    contestants: Sequence[C],
    key: Callable[[C], K] | None = None,
) -> C:
    """The contestant whose slowdowns against the fastest at each batch add up least: the
    one to keep when a single choice serves every batch and the batches disagree. Sums
    within NEAR_TIE of the least are a tie, which goes to the fastest at the smallest batch:
    the decode latency a user sees first. `key` gives a contestant's name in `seconds`
    (default: the contestant itself)."""
    name = key or cast(Callable[[C], K], lambda c: c)
    best = {b: min(t.values()) for b, t in seconds.items()}
    sums = [sum(t[name(c)] / best[b] for b, t in seconds.items()) for c in contestants]
    tied = [c for c, total in zip(contestants, sums, strict=True) if total <= min(sums) + NEAR_TIE]
    smallest = seconds[min(seconds)]
    return min(tied, key=lambda c: smallest[name(c)])


def timings_text(
    seconds: Mapping[int, Mapping[K, float]], chosen: K, name: Callable[[K], str] = str
) -> str:
    """`B=1 0.083 ms (F.linear 0.292)  B=8 0.180 ms (F.linear 0.480)`: per batch, the chosen
    contestant's time and the others' (named by `name`), in ms."""
    parts = []
    for batch, times in seconds.items():
        others = ", ".join(f"{name(k)} {t * 1e3:.3f}" for k, t in times.items() if k != chosen)
        parts.append(f"B={batch} {times[chosen] * 1e3:.3f} ms" + (f" ({others})" if others else ""))
    return "  ".join(parts)
