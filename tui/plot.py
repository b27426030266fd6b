"""Charts drawn as text: a braille line chart, a histogram with outlier bins, and a labelled
scatter. Pure functions of the data and the cell size, returning a rich Text.

Drawn here rather than with a plotting widget so that every chart keeps inside its box, has
whole-number run ticks, draws empty bins empty, marks what it clips, and says so when it has
no room; and so that a redraw is one Text with a span per run of equal style (cheap to render
and to send over a slow link).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text

from infertop.tui.format import by_magnitude

AXIS = "grey50"
MIN_WIDTH, MIN_HEIGHT = 24, 4


class Canvas:
    """A grid of characters, each with a style; rendered as one span per run of equal style."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.chars = [[" "] * width for _ in range(height)]
        self.styles: list[list[str]] = [[""] * width for _ in range(height)]

    def put(self, row: int, col: int, text: str, style: str = "") -> None:
        for k, ch in enumerate(text):
            if 0 <= row < self.height and 0 <= col + k < self.width:
                self.chars[row][col + k] = ch
                self.styles[row][col + k] = style

    def to_text(self) -> Text:
        out = Text(no_wrap=True, overflow="crop", end="")
        for r in range(self.height):
            if r:
                out.append("\n")
            chars, styles = self.chars[r], self.styles[r]
            start = 0
            for c in range(1, self.width + 1):
                if c == self.width or styles[c] != styles[start]:
                    out.append("".join(chars[start:c]), style=styles[start] or None)
                    start = c
        return out


def too_small(width: int, height: int, need: tuple[int, int] = (MIN_WIDTH, MIN_HEIGHT)) -> Text:
    """What a chart shows instead of a bare axis when its box is too small."""
    w, h = need
    return Text(
        f"no room for this chart ({width}x{height}; needs {w}x{h}): enlarge the terminal",
        style="dim",
        end="",
    )


def waiting(message: str) -> Text:
    return Text(message, style="dim", end="", no_wrap=True, overflow="ellipsis")


def axis_number(v: float) -> str:
    """Three significant figures, thousands grouped: 0.382, 1.18, 11.0, 157, 1,668."""
    if not math.isfinite(v):
        return "—"
    return by_magnitude(v, (0, 0, 1, 2, 3))


def nice_step(span: float, target: int) -> int:
    """A whole-number tick step (1, 2, 5 x 10^k) giving about `target` ticks over `span`."""
    raw = max(span / max(target, 1), 1.0)
    base = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if m * base >= raw:
            return int(m * base)
    return int(10 * base)


def padded_range(values: Sequence[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.08 or max(abs(hi) * 0.1, 1e-3)
    return max(0.0, lo - pad), hi + pad


# -- line chart ---------------------------------------------------------------------------

_BRAILLE = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))  # [dot row][dot col]


def line_chart(
    xs: Sequence[int],
    ys: Sequence[float],
    marked: Sequence[bool],
    width: int,
    height: int,
    *,
    x_name: str,
    color: str = "cyan",
    mark_color: str = "red",
) -> Text:
    """ys against whole-number xs as a braille line. Marked points (run under a capture) are
    drawn in `mark_color`; the y range follows the unmarked points, and marked points beyond
    it are clipped to its edge (the caller's legend says so)."""
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        return too_small(width, height)
    if not ys:
        return waiting("no data yet")
    plain = [y for y, m in zip(ys, marked, strict=True) if not m] or list(ys)
    lo, hi = padded_range(plain)
    labels = [axis_number(hi), axis_number((lo + hi) / 2), axis_number(lo)]
    label_w = max(len(s) for s in labels)
    plot_w, plot_h = width - label_w - 2, height - 2
    canvas = Canvas(width, height)
    for row, text in ((0, labels[0]), (plot_h // 2, labels[1]), (plot_h - 1, labels[2])):
        if row == plot_h // 2 and plot_h < 5:
            continue  # no room for a middle label
        canvas.put(row, 0, text.rjust(label_w), AXIS)
        canvas.put(row, label_w + 1, "┤", AXIS)
    for row in range(plot_h):
        if canvas.chars[row][label_w + 1] == " ":
            canvas.put(row, label_w + 1, "│", AXIS)

    dots_w, dots_h = plot_w * 2, plot_h * 4
    x0, x1 = xs[0], xs[-1]

    def dot(x: int, y: float) -> tuple[int, int]:
        c = 0 if x1 == x0 else round((x - x0) / (x1 - x0) * (dots_w - 1))
        frac = (min(max(y, lo), hi) - lo) / (hi - lo)
        return c, dots_h - 1 - round(frac * (dots_h - 1))

    bits = [[0] * plot_w for _ in range(plot_h)]
    hot: set[tuple[int, int]] = set()  # cells that hold a marked point
    prev: tuple[int, int] | None = None
    for x, y, m in zip(xs, ys, marked, strict=True):
        c, r = dot(x, y)
        if m:
            hot.add((r // 4, c // 2))
        for dc, dr in _segment(prev, (c, r)):
            bits[dr // 4][dc // 2] |= _BRAILLE[dr % 4][dc % 2]
        prev = (c, r)
    for r in range(plot_h):
        for c in range(plot_w):
            if bits[r][c]:
                style = mark_color if (r, c) in hot else color
                canvas.put(r, label_w + 2 + c, chr(0x2800 + bits[r][c]), style)
    if len(ys) == 1:
        c, r = dot(xs[0], ys[0])
        canvas.put(r // 4, label_w + 2 + c // 2, "●", mark_color if marked[0] else color)

    _x_axis(canvas, plot_h, label_w, plot_w, x0, x1, x_name)
    return canvas.to_text()


def _segment(a: tuple[int, int] | None, b: tuple[int, int]) -> list[tuple[int, int]]:
    """The dots of a straight line from a to b (Bresenham); just b when there is no a."""
    if a is None:
        return [b]
    (c0, r0), (c1, r1) = a, b
    dc, dr = abs(c1 - c0), -abs(r1 - r0)
    sc, sr = (1 if c1 > c0 else -1), (1 if r1 > r0 else -1)
    err, out = dc + dr, []
    while True:
        out.append((c0, r0))
        if (c0, r0) == (c1, r1):
            return out
        e2 = 2 * err
        if e2 >= dr:
            err += dr
            c0 += sc
        if e2 <= dc:
            err += dc
            r0 += sr


def _x_axis(
    canvas: Canvas, row: int, label_w: int, plot_w: int, x0: int, x1: int, x_name: str
) -> None:
    """The axis line with whole-number ticks, and their labels below (each fully inside)."""
    left = label_w + 2
    canvas.put(row, label_w + 1, "└" + "─" * plot_w, AXIS)
    canvas.put(row + 1, 0, x_name[: label_w + 1].rjust(label_w + 1), AXIS)
    step = nice_step(x1 - x0, max(plot_w // 10, 1))
    first = math.ceil(x0 / step) * step
    taken_until = left  # labels may not touch: one blank between them
    for v in range(first, x1 + 1, step):
        col = 0 if x1 == x0 else round((v - x0) / (x1 - x0) * (plot_w * 2 - 1)) // 2
        text = f"{v:,}"
        start = min(max(left + col - len(text) // 2, taken_until), left + plot_w - len(text))
        if start < taken_until or start < left:
            continue
        canvas.put(row, left + col, "┬", AXIS)
        canvas.put(row + 1, start, text, AXIS)
        taken_until = start + len(text) + 1


# -- histogram ----------------------------------------------------------------------------

_EIGHTHS = " ▁▂▃▄▅▆▇█"


@dataclass(frozen=True)
class Spread:
    """Where a histogram's body lies, and what falls outside it."""

    lo: float  # the body's first edge: the 1st percentile (the minimum for small samples)
    hi: float  # its last edge, inclusive: the 99th percentile (the maximum)
    under: int  # values below lo: the `<` bin
    over: int  # values above hi: the `>` bin ...
    over_from: float  # ... which holds every value from this one (the smallest of them) up


def spread(values: Sequence[float]) -> Spread:
    """The 1st-99th percentile body (everything for samples under 50, too few for tails).
    Values tied at a percentile stay in the body."""
    s = sorted(values)
    lo, hi = (_quantile(s, 0.01), _quantile(s, 0.99)) if len(s) >= 50 else (s[0], s[-1])
    under = sum(v < lo for v in s)
    above = [v for v in s if v > hi]
    if hi <= lo:
        pad = max(abs(lo) * 0.05, 1e-3)
        lo, hi = lo - pad, hi + pad
    return Spread(lo, hi, under, len(above), above[0] if above else math.nan)


def _quantile(s: Sequence[float], q: float) -> float:
    k = (len(s) - 1) * q
    f = math.floor(k)
    c = min(f + 1, len(s) - 1)
    return s[f] + (s[c] - s[f]) * (k - f)


def histogram(values: Sequence[float], width: int, height: int, *, color: str = "cyan") -> Text:
    """Bars over the 1st-99th percentile; values below count in a `<` bin at the left, values
    above in a `>` bin at the right (both in yellow; `spread` says from where). Empty bins
    stay empty."""
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        return too_small(width, height)
    if not values:
        return waiting("no data yet")
    sp = spread(values)
    lo, hi, under, over = sp.lo, sp.hi, sp.under, sp.over
    body = [v for v in values if lo <= v <= hi]
    count_w = len(f"{len(values):,}")
    plot_w, plot_h = width - count_w - 2, height - 2
    outlier_cols = (2 if under else 0) + (2 if over else 0)
    bins = max(2, min(32, (plot_w - outlier_cols) // 2))
    bin_w = (plot_w - outlier_cols) // bins
    counts = [0] * bins
    for v in body:
        counts[min(int((v - lo) / (hi - lo) * bins), bins - 1)] += 1
    top = max([*counts, under, over, 1])

    canvas = Canvas(width, height)
    canvas.put(0, 0, f"{top:,}".rjust(count_w), AXIS)
    canvas.put(plot_h - 1, 0, "0".rjust(count_w), AXIS)
    for r in range(plot_h):
        canvas.put(r, count_w + 1, "│", AXIS)
    left = count_w + 2
    columns: list[tuple[int, int, str]] = []  # (first column, count, style)
    col = left
    if under:
        columns.append((col, under, "yellow"))
        col += 2
    for n in counts:
        columns.append((col, n, color))
        col += bin_w
    body_end = col
    if over:
        columns.append((col + 1, over, "yellow"))
    for start, n, style in columns:
        width_cells = 1 if style == "yellow" else max(bin_w - 1, 1)
        for r, ch in enumerate(_bar(n, top, plot_h)):
            if ch != " ":
                canvas.put(r, start, ch * width_cells, style)

    canvas.put(plot_h, count_w + 1, "└" + "─" * plot_w, AXIS)
    labels_row = plot_h + 1
    lo_text, hi_text = axis_number(lo), axis_number(hi)
    body_start = left + (2 if under else 0)
    if under:
        canvas.put(labels_row, left, "<", "yellow")
    canvas.put(labels_row, body_start, lo_text, AXIS)
    hi_start = max(body_end - len(hi_text), body_start + len(lo_text) + 1)
    canvas.put(labels_row, hi_start, hi_text, AXIS)
    mid_text = axis_number((lo + hi) / 2)
    mid_start = (body_start + body_end - len(mid_text)) // 2
    if body_start + len(lo_text) + 1 < mid_start and mid_start + len(mid_text) + 1 < hi_start:
        canvas.put(labels_row, mid_start, mid_text, AXIS)
    if over:  # `>` the body's last edge: `≥` beside it read as a bin from there, against the
        # subtitle's `≥` its smallest value (`>0.875` and `≥1.07` say the same bin)
        canvas.put(labels_row, body_end + 1, ">", "yellow")
    return canvas.to_text()


def _bar(n: int, top: int, rows: int) -> list[str]:
    """A vertical bar of n/top of `rows` rows, top row first; a non-empty bin shows at least
    one eighth, an empty one nothing."""
    if n <= 0:
        return [" "] * rows
    eighths = max(1, round(n / top * rows * 8))
    out = []
    for r in range(rows):
        below = (rows - 1 - r) * 8  # eighths in the rows under this one
        out.append(_EIGHTHS[min(max(eighths - below, 0), 8)])
    return out


# -- scatter ------------------------------------------------------------------------------


def scatter(
    points: Sequence[tuple[str, float, float, str]],
    width: int,
    height: int,
    *,
    x_unit: str,
) -> Text:
    """Labelled points (label, x, y, style): y values labelled on the left, x below."""
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        return too_small(width, height)
    if not points:
        return waiting("no data yet")
    x0, x1 = padded_range([p[1] for p in points])
    y0, y1 = padded_range([p[2] for p in points])
    top, bottom = axis_number(y1), axis_number(y0)
    label_w = max(len(top), len(bottom))
    plot_h, plot_w = height - 2, width - label_w - 2
    canvas = Canvas(width, height)
    for r in range(plot_h):
        canvas.put(r, label_w + 1, "│", AXIS)
    canvas.put(0, 0, top.rjust(label_w) + " ┤", AXIS)
    canvas.put(plot_h - 1, 0, bottom.rjust(label_w) + " ┤", AXIS)
    left = label_w + 2
    for label, x, y, style in points:
        text = f"● {label}"
        col = min(round((x - x0) / (x1 - x0) * (plot_w - 1)), max(plot_w - len(text), 0))
        row = plot_h - 1 - round((y - y0) / (y1 - y0) * (plot_h - 1))
        canvas.put(row, left + col, text[: plot_w - col], style)
    canvas.put(plot_h, label_w + 1, "└" + "─" * plot_w, AXIS)
    lo, hi = f"{axis_number(x0)} {x_unit}", f"{axis_number(x1)} {x_unit}"
    canvas.put(plot_h + 1, left, lo, AXIS)
    canvas.put(plot_h + 1, max(width - len(hi), left + len(lo) + 1), hi, AXIS)
    return canvas.to_text()
