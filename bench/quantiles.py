"""The statistics the benches print: the nearest-rank quantile (no interpolation: a figure
that was seen), and paired ratios of measurements taken in the same rounds."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def quantile(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(len(s) * q))]


def paired(a: Sequence[float], b: Sequence[float], digits: int = 2) -> str:
    """`0.64 (0.53-0.74)`: the median of the per-round ratios a/b and their range (a and b
    taken in the same rounds, so each ratio shares its round's state of the machine)."""
    rs = [x / y for x, y in zip(a, b, strict=True)]
    return f"{statistics.median(rs):.{digits}f} ({min(rs):.{digits}f}-{max(rs):.{digits}f})"
