"""The text charts: they keep inside their box, tick runs with whole numbers, draw empty bins
empty, keep an outlier from squashing the histogram, mark what they clip, and say when they
have no room."""

from __future__ import annotations

import random
import re

import pytest

from infertop.tui.plot import (
    axis_number,
    histogram,
    line_chart,
    nice_step,
    scatter,
    spread,
    too_small,
)


def lines(text) -> list[str]:  # noqa: ANN001
    return text.plain.split("\n")


@pytest.mark.parametrize(("width", "height"), [(24, 4), (46, 6), (90, 14), (150, 30)])
def test_every_chart_stays_inside_its_box(width: int, height: int) -> None:
    rng = random.Random(0)
    ys = [rng.uniform(0.3, 0.6) for _ in range(300)]
    drawn = [
        line_chart(list(range(1, 301)), ys, [False] * 300, width, height, x_name="step"),
        histogram([*ys, 40.0], width, height),
        scatter([("bs 1", 0.4, 2500.0, "cyan"), ("bs 8", 0.6, 13000.0, "red")], width, height,
                x_unit="ms"),
    ]  # fmt: skip
    for text in drawn:
        rows = lines(text)
        assert len(rows) == height
        assert all(len(r) == width for r in rows), [len(r) for r in rows]


def test_run_axis_has_whole_number_ticks_that_fit() -> None:
    for runs in (1, 2, 3, 7, 13, 300):
        xs = list(range(1, runs + 1))
        text = line_chart(xs, [100.0 + x % 3 for x in xs], [False] * runs, 50, 8, x_name="run")
        labels = lines(text)[-1].split()
        assert labels[0] == "run"
        ticks = [int(t.replace(",", "")) for t in labels[1:]]  # a fraction would not parse
        assert ticks and all(1 <= t <= runs for t in ticks), (runs, labels)
        assert ticks == sorted(set(ticks))
    assert nice_step(299, 8) == 50 and nice_step(2, 8) == 1


def test_the_last_tick_label_is_never_cut() -> None:
    xs = list(range(990, 1001))
    text = line_chart(xs, [1.0] * len(xs), [False] * len(xs), 30, 6, x_name="step")
    assert "1,000" in lines(text)[-1]


def test_marked_points_are_drawn_in_their_own_colour_and_clipped_to_the_scale() -> None:
    ys = [150.0] * 10
    ys[5] = 1668.0  # a profiled prefill: 10x the others
    marked = [k == 5 for k in range(10)]
    text = line_chart(list(range(1, 11)), ys, marked, 40, 8, x_name="run")
    assert any(span.style == "red" for span in text.spans)
    top = axis_number(max(ys))
    assert top not in text.plain  # the scale follows the unmarked runs


def test_histogram_empty_bins_are_empty() -> None:
    values = [1.0] * 60 + [2.0] * 60 + [3.0] * 60  # three bars and nothing between them
    text = histogram(values, 60, 10)
    rows = lines(text)[:-2]
    ink = sorted({c for row in rows for c, ch in enumerate(row) if ch in "▁▂▃▄▅▆▇█"})
    gaps = [b - a for a, b in zip(ink, ink[1:], strict=False) if b - a > 1]
    assert len(gaps) == 2 and min(gaps) > 10  # two empty ranges stay blank, not a band
    assert not any(span.style == "yellow" for span in text.spans)  # ties are no outliers
    sp = spread(values)
    assert (sp.lo, sp.hi, sp.under, sp.over) == (1.0, 3.0, 0, 0)


def test_an_outlier_does_not_squash_the_histogram_into_one_bar() -> None:
    rng = random.Random(1)
    values = [rng.gauss(20.0, 1.0) for _ in range(1000)] + [2000.0]  # one warmup outlier
    sp = spread(values)
    lo, hi = sp.lo, sp.hi
    assert hi < 30 and sp.over >= 1 and sp.under >= 1
    assert sp.over == sum(v > hi for v in values) and sp.over_from > hi
    text = histogram(values, 60, 12)
    rows = lines(text)
    body = {c for row in rows[:-2] for c, ch in enumerate(row) if ch == "█"}
    assert len(body) > 10  # many bins with full cells, not one
    labels = rows[-1]
    # the under/overflow bins are marked: `< lo` and `> hi` (`≥ hi` read as a bin from hi)
    assert labels.split()[0] == "<" and labels.split()[-2:] == [axis_number(hi), ">"]
    assert axis_number(hi) in labels and axis_number(lo) in labels  # labels fit whole


def test_histogram_labels_fit_for_wide_numbers() -> None:
    values = [900.0 + k for k in range(0, 101, 4)]  # up to 1,000, too few for percentiles
    labels = lines(histogram(values, 30, 6))[-1]
    assert "1,000" in labels


def test_a_chart_without_room_says_so() -> None:
    for text in (
        line_chart([1, 2], [1.0, 2.0], [False, False], 20, 3, x_name="run"),
        histogram([1.0, 2.0], 10, 8),
        scatter([("bs 1", 1.0, 1.0, "cyan")], 30, 2, x_unit="ms"),
    ):
        assert "no room for this chart" in text.plain and "enlarge the terminal" in text.plain
    assert "┤" not in too_small(10, 2).plain  # no bare axis


def test_scatter_labels_every_point_and_keeps_the_axis_labels_clear() -> None:
    text = scatter(
        [("bs 1", 0.38, 2600.0, "cyan"), ("bs 8", 0.6, 13000.0, "magenta")], 50, 8, x_unit="ms"
    )
    plain = text.plain
    assert "● bs 1" in plain and "● bs 8" in plain
    assert re.search(r"\d ms\s+\d", lines(text)[-1])  # both x labels, apart


@pytest.mark.parametrize(
    ("value", "shown"),
    [(0.3821, "0.382"), (1.184, "1.18"), (11.04, "11.0"), (157.3, "157"), (1668.2, "1,668")],
)
def test_axis_numbers(value: float, shown: str) -> None:
    assert axis_number(value) == shown
