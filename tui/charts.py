"""The chart widgets: decode step latency and prefill latency per run of the selected batch
size, its decode step histogram, and throughput against latency across all batch sizes (as
TGI's benchmark draws it). The drawing itself is tui/plot.py.

A chart redraws when its data changed, at most every MIN_INTERVAL seconds while data streams
in, and at once when the selected batch size changes or the statistics are reset: every
millisecond of UI work on a 2-core machine is taken from the engine.
"""

from __future__ import annotations

import math
import time

from rich.console import RenderableType
from rich.text import Text
from textual.widget import Widget

from infertop.engine.stats import BatchStats, LiveStats
from infertop.tui import plot

COLORS = ("cyan", "magenta", "green", "yellow", "blue", "bright_white", "red")
CAPTURED = "[red]●[/] captured by the profiler"
CAPTURED_NO_COLOR = "[reverse]⣿[/] captured by the profiler"  # NO_COLOR: in reverse video


def clock() -> float:
    """The charts' clock for throttling (a test steps its own)."""
    return time.monotonic()


class Chart(Widget):
    """A read-only chart: no focus, so it never takes the app's keys; drawn for its current
    size on render, so it always fits its box."""

    can_focus = False
    MIN_INTERVAL = 0.0  # seconds between redraws while data streams in

    def __init__(self, title: str, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.min_interval = self.MIN_INTERVAL  # the app slows it on a low-bandwidth link
        self.title = title
        self.border_title = title
        self._key: object = None
        self._view: object = None  # what is shown (batch size, reset generation)
        self._drawn_at = 0.0
        self._cache: tuple[object, Text] | None = None

    def due(self, view: object, key: object, empty: bool = False) -> bool:
        """True when the chart should redraw: new data (throttled), or at once a new view or
        the first data of an `empty` chart."""
        now = clock()
        if key == self._key and view == self._view:
            return False
        if view == self._view and not empty and now - self._drawn_at < self.min_interval:
            return False
        self._view, self._key, self._drawn_at = view, key, now
        self._cache = None
        self.refresh()
        return True

    def render(self) -> RenderableType:
        size = (self.content_size.width, self.content_size.height)
        if self._cache is None or self._cache[0] != size:
            self._cache = (size, self.draw(*size))
        return self._cache[1]

    def draw(self, width: int, height: int) -> Text:
        raise NotImplementedError


class HistoryChart(Chart):
    """One batch size's latest step latencies (ms) against their step or run number."""

    MIN_INTERVAL = 1.0
    COLOR = "cyan"
    X_NAME = "step"
    TITLE = ""
    HISTORY = ""  # the BatchStats field it draws

    def __init__(self, **kw: object) -> None:
        super().__init__(self.TITLE, **kw)
        self.points: list[tuple[int, float, bool]] = []

    def history(self, bs: BatchStats) -> list[tuple[int, float, bool]]:
        return list(getattr(bs, self.HISTORY))

    def refresh_from(self, stats: LiveStats, batch: int) -> None:
        bs = stats.batches.get(batch)
        points = self.history(bs) if bs else []
        key = (len(points), points[-1] if points else None)
        if not self.due((batch, stats.generation), key, empty=not self.points):
            return
        self.points = list(points)
        self.border_title = f"{self.title} · bs {batch}"
        legend = CAPTURED_NO_COLOR if self.app.no_color else CAPTURED
        self.border_subtitle = legend if any(m for _, _, m in self.points) else ""

    def draw(self, width: int, height: int) -> Text:
        if not self.points:
            return plot.waiting("no run of this batch size yet")
        xs = [n for n, _, _ in self.points]
        ys = [v * 1e3 for _, v, _ in self.points]
        marked = [m for _, _, m in self.points]
        # without colour (NO_COLOR) a captured point is told apart in reverse video
        mark = "reverse" if self.app.no_color else "red"
        return plot.line_chart(
            xs, ys, marked, width, height, x_name=self.X_NAME, color=self.COLOR, mark_color=mark
        )


class DecodeHistoryChart(HistoryChart):
    TITLE = "Decode step latency (ms)"
    HISTORY = "decode_history"


class PrefillChart(HistoryChart):
    MIN_INTERVAL = 2.0
    COLOR = "magenta"
    X_NAME = "run"
    TITLE = "Prefill latency per run (ms)"
    HISTORY = "prefill_history"


class LatencyHistogram(Chart):
    """The selected batch size's decode step latencies (captured steps left out), over their
    1st-99th percentile range, with the values outside it counted in marked end bins."""

    MIN_INTERVAL = 2.0

    def __init__(self, **kw: object) -> None:
        super().__init__("Histogram (ms)", **kw)
        self.values: list[float] = []

    def refresh_from(self, stats: LiveStats, batch: int) -> None:
        bs = stats.batches.get(batch)
        if not self.due((batch, stats.generation), bs.decode.count if bs else 0, not self.values):
            return
        self.values = [v * 1e3 for v in bs.decode.values] if bs else []
        self.border_title = f"{self.title} · bs {batch}"
        marks = []
        if self.values:
            sp = plot.spread(self.values)
            if sp.under:
                marks.append(f"[yellow]<[/]{plot.axis_number(sp.lo)}: {sp.under:,}")
            if sp.over:
                marks.append(f"[yellow]≥[/]{plot.axis_number(sp.over_from)}: {sp.over:,}")
        self.border_subtitle = " · ".join(marks)

    def draw(self, width: int, height: int) -> Text:
        if not self.values:
            return plot.waiting("no decode step yet")
        return plot.histogram(self.values, width, height)


class ThroughputChart(Chart):
    """Decode throughput (tok/s) against median step latency (ms), one point per batch size:
    the chart that compares batch sizes, with a legend."""

    def __init__(self, **kw: object) -> None:
        super().__init__("tok/s vs step latency · all batch sizes", **kw)
        self.points: list[tuple[str, float, float, str]] = []

    def refresh_from(self, stats: LiveStats, batch: int) -> None:
        key = tuple((b, bs.runs, bs.decode.count) for b, bs in sorted(stats.batches.items()))
        if not self.due((batch, stats.generation), key, empty=not self.points):
            return
        self.points = []
        legend = []
        for n, (b, bs) in enumerate(sorted(stats.batches.items())):
            (p50,) = bs.decode.percentiles(50)
            if not (math.isfinite(p50) and p50 > 0):
                continue
            color = COLORS[n % len(COLORS)]
            style = f"bold {color} underline" if b == batch else color
            self.points.append((f"bs {b}", p50 * 1e3, bs.decode_throughput(), style))
            legend.append(f"[{style}]● bs {b}[/]")
        self.border_subtitle = " ".join(legend)

    def draw(self, width: int, height: int) -> Text:
        if not self.points:
            return plot.waiting("no decode step yet")
        return plot.scatter(self.points, width, height, x_unit="ms")
