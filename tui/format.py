"""Number formatting for the screen: milliseconds, rates and bytes in a fixed width."""

from __future__ import annotations

import math


def ms(seconds: float) -> str:
    if seconds is None or math.isnan(seconds):
        return "—"
    v = seconds * 1e3
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 100:
        return f"{v:.1f}"
    if v >= 10:
        return f"{v:.2f}"
    return f"{v:.3f}"


def rate(v: float) -> str:
    if v is None or math.isnan(v):
        return "—"
    if v >= 1e6:
        return f"{v / 1e6:.2f}M"
    if v >= 1e4:
        return f"{v / 1e3:.1f}k"
    return f"{v:,.1f}"


def nbytes(n: int | None) -> str:
    if n is None:
        return "—"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def pct(v: float) -> str:
    return "—" if v is None or math.isnan(v) else f"{v:.0f}%"
