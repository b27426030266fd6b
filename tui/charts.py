"""Charts: decode and prefill latency history, a decode latency histogram, and throughput
against latency across batch sizes (as TGI's benchmark draws it).

Drawn with textual-plot: a Textual-native widget (axes follow the app theme), actively
maintained, and tolerant of NaN/inf; a bench of the candidates showed textual-plotext
and Sparkline no cheaper per redraw, and textual-plotext pins an outdated plotext.
Each chart redraws only when its data changed, and the time chart at most twice a second:
every millisecond of UI work on a 2-core machine is taken from the engine.
"""

from __future__ import annotations

import math
import time

import numpy as np
from rich.text import Text
from textual.geometry import Size
from textual_plot import HiResMode, PlotWidget

from engine.stats import BatchStats, LiveStats
from tui.format import rate
from tui.panels import Panel

COLORS = ("cyan", "magenta", "green", "yellow", "red", "blue", "bright_white")


class Chart(PlotWidget):
    """A read-only plot: no focus, so it never takes the app's keys (+, -, r, arrows)."""

    can_focus = False
    MIN_INTERVAL = 0.0  # seconds between redraws

    def __init__(self, title: str, **kw: object) -> None:
        super().__init__(allow_pan_and_zoom=False, **kw)  # type: ignore[arg-type]
        self.border_title = title
        self._key: object = None
        self._drawn_at = 0.0
        self._layouts = 0
        self._measured = Size(0, 0)

    def on_mount(self) -> None:
        self.margin_left = 7
        self.margin_top = 0

    def due(self, key: object) -> bool:
        """True when the data changed and the chart may redraw now."""
        now = time.monotonic()
        if key == self._key or now - self._drawn_at < self.MIN_INTERVAL:
            return False
        self._key, self._drawn_at = key, now
        # textual-plot re-measures its canvas only on a layout refresh; without one, a chart
        # whose first draw came before the layout settled draws past its right edge. A layout
        # pass costs more than the draw, so only the first draws and size changes get one.
        if self._layouts < 3 or self.size != self._measured:
            self._layouts += 1
            self._measured = self.size
            self.refresh(layout=True)
        return True


def _finite(values: list[float]) -> list[float]:
    return [v for v in values if math.isfinite(v)]


def _limits(values: list[float]) -> tuple[float, float]:
    """Padded y limits so the extreme points are not drawn under the axis frame."""
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.1 or max(abs(hi) * 0.1, 1e-3)
    return max(0.0, lo - pad), hi + pad


class SeriesChart(Chart):
    """The last few hundred values of one series, newest on the right."""

    MIN_INTERVAL = 1.0
    COLOR = "cyan"

    def draw_series(self, values: list[float], xlabel: str) -> None:
        values = _finite(values)
        self.clear()
        self.set_xlabel(xlabel)
        if not values:
            return
        xs = np.arange(len(values))
        if len(values) > 1:
            self.plot(xs, values, line_style=self.COLOR, hires_mode=HiResMode.BRAILLE)
        else:
            self.scatter(xs, values, marker="●", marker_style=self.COLOR)
        self.set_ylimits(*_limits(values))
        self.set_xlimits(-0.5, len(values) - 0.5 + len(values) * 0.02)


class HistoryChart(SeriesChart):
    """Decode step latency over the last few hundred steps (all batch sizes, in order)."""

    def __init__(self, **kw: object) -> None:
        super().__init__("Decode step latency (ms)", **kw)

    def refresh_from(self, stats: LiveStats) -> None:
        if self.due(stats.steps_seen):
            self.draw_series([v * 1e3 for v in stats.decode_history], "recent steps →")


class PrefillChart(SeriesChart):
    """Prefill latency of the last few hundred runs."""

    COLOR = "magenta"
    MIN_INTERVAL = 2.0

    def __init__(self, **kw: object) -> None:
        super().__init__("Prefill latency per run (ms)", **kw)

    def refresh_from(self, stats: LiveStats) -> None:
        if self.due(stats.prefills_seen):
            self.draw_series([v * 1e3 for v in stats.prefill_history], "recent runs →")


class LatencyHistogram(Chart):
    """Distribution of decode step latencies for the selected batch size."""

    BINS = 20
    MIN_INTERVAL = 2.0

    def __init__(self, **kw: object) -> None:
        super().__init__("Decode step histogram (ms)", **kw)

    def refresh_from(self, bs: BatchStats | None) -> None:
        if not self.due((bs.batch_size, bs.decode.count) if bs else None):
            return
        self.clear()
        values = _finite([v * 1e3 for v in bs.decode.values]) if bs else []
        if not values:
            return
        # Outliers (first steps, a GC pause) would squash the body into one bin: the top
        # bin holds everything above p99.
        (p99,) = bs.decode.percentiles(99) if bs else (max(values) / 1e3,)
        top = max(min(max(values), p99 * 1e3 * 1.05), min(values) + 1e-3)
        counts, edges = np.histogram(np.clip(values, None, top), bins=self.BINS)
        centers = (edges[:-1] + edges[1:]) / 2
        self.bar(centers, counts, width=float(edges[1] - edges[0]) or 1e-3, bar_style="cyan")
        self.set_ylimits(0, float(counts.max()) * 1.1)
        self.set_xlimits(float(edges[0]), float(edges[-1]))


class ThroughputChart(Panel):
    """Decode throughput (tok/s) against median step latency (ms), one point per batch size,
    drawn as text: a handful of labelled points needs no plotting canvas."""

    def __init__(self, **kw: object) -> None:
        super().__init__("Throughput (tok/s) vs decode latency (ms)", **kw)

    def refresh_from(self, stats: LiveStats) -> None:
        # redraw when a run finishes (cheap key first: this is called on every tick)
        key = (tuple((b, bs.runs) for b, bs in stats.batches.items()), self.content_size)
        if key == self._key:
            return
        points = []
        for b, bs in sorted(stats.batches.items()):
            (p50,) = bs.decode.percentiles(50)
            if math.isfinite(p50) and p50 > 0:
                points.append((b, p50 * 1e3, b / p50))
        size = self.content_size
        self.show(key, lambda: scatter_text(points, size.width, size.height))


def scatter_text(points: list[tuple[int, float, float]], width: int, height: int) -> Text:
    """A text scatter plot: y axis tok/s, x axis ms, each point labelled with its batch size.
    Rows start at the axis (no leading blanks: SVG screenshots collapse them)."""
    if not points or width < 20 or height < 5:
        return Text("waiting for decode steps…", style="dim")
    plot_w, plot_h = width - 1, height - 2
    xs = [x for _, x, _ in points]
    ys = [y for _, _, y in points]
    x0, x1 = _limits(xs)
    y0, y1 = _limits(ys)
    grid = [["·" if c % 8 == 7 else " " for c in range(plot_w)] for _ in range(plot_h)]
    styles: dict[tuple[int, int], str] = {}
    for row, text in ((0, f"{rate(y1)} tok/s"), (plot_h - 1, f"{rate(y0)} tok/s")):
        for k, ch in enumerate(text[:plot_w]):
            grid[row][k] = ch
            styles[(row, k)] = "dim"
    for n, (b, x, y) in enumerate(points):
        label = f"● bs{b}"
        col = min(round((x - x0) / (x1 - x0) * (plot_w - 1)), plot_w - len(label))
        row = plot_h - 1 - round((y - y0) / (y1 - y0) * (plot_h - 1))
        for k, ch in enumerate(label):
            grid[row][col + k] = ch
            styles[(row, col + k)] = COLORS[n % len(COLORS)]
    t = Text(no_wrap=True)
    for r in range(plot_h):
        t.append("│", style="dim")
        # one span per run of equal style (cheap to render), and a new span wherever ink
        # follows blanks: SVG export drops a span's leading blanks, which would shift it
        row, run_start, run_style = grid[r], 0, styles.get((r, 0), "grey23")
        for c in range(1, plot_w + 1):
            style = styles.get((r, c), "grey23") if c < plot_w else ""
            if style != run_style or (c < plot_w and row[c] != " " and row[c - 1] == " "):
                t.append("".join(row[run_start:c]), style=run_style)
                run_start, run_style = c, style
        t.append("\n")
    t.append("└" + "─" * plot_w + "\n", style="dim")
    left, right = f"{x0:.3g} ms", f"{x1:.3g} ms"
    t.append(left + "─" * max(plot_w + 1 - len(left) - len(right), 1) + right, style="dim")
    return t
