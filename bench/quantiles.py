"""The nearest-rank quantile the benches print (no interpolation: a figure that was seen)."""

from __future__ import annotations


def quantile(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(len(s) * q))]
