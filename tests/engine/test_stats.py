"""The rolling statistics the live screen shows: percentiles as numpy computes them, windows
that keep only their last values, and captured steps kept out of the figures."""

from __future__ import annotations

import math
import random

import numpy as np

from infertop.engine.events import DecodeStep, PrefillDone
from infertop.engine.stats import LiveStats, Window, percentile


def test_percentiles_match_numpy_s_linear_interpolation() -> None:
    rng = random.Random(0)
    for n in (1, 2, 3, 10, 101, 1000):
        values = sorted(rng.uniform(0, 10) for _ in range(n))
        for q in (0, 1, 25, 50, 90, 99, 100):
            assert math.isclose(percentile(values, q), float(np.percentile(values, q)))
    assert math.isnan(percentile([], 50))


def test_a_window_keeps_only_its_last_values_and_counts_all() -> None:
    w = Window(4)
    for v in range(10):
        w.add(float(v))
    assert list(w.values) == [6.0, 7.0, 8.0, 9.0] and w.count == 10 and len(w) == 4
    assert w.last == 9.0 and w.mean() == 7.5
    assert w.percentiles(0, 50, 100) == (6.0, 7.5, 9.0)
    w.clear()
    assert len(w) == 0 and w.count == 0 and math.isnan(w.mean()) and math.isnan(w.last)


def test_captured_steps_stay_out_of_the_figures_but_in_the_history() -> None:
    stats = LiveStats()
    steps = [DecodeStep(0, 4, s, 10 + s, 0.002) for s in range(1, 6)]
    steps.append(DecodeStep(0, 4, 6, 16, 0.5, profiled=True))  # a captured, slow step
    assert stats.apply(steps)
    bs = stats.batches[4]
    assert len(bs.decode) == 5 and bs.decode.percentiles(50) == (0.002,)
    assert bs.decode_throughput() == 4 / 0.002
    assert [marked for _, _, marked in bs.decode_history] == [False] * 5 + [True]
    stats.apply([PrefillDone(0, 4, 128, 0.1)])
    assert bs.prefill_tps.last == 4 * 128 / 0.1


def test_an_empty_batch_has_no_throughput() -> None:
    stats = LiveStats()
    assert math.isnan(stats.batch(8).decode_throughput())
