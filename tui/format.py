"""Number formatting for the screen: one style everywhere (digits grouped by thousands, no
k/M suffixes), milliseconds, rates and bytes."""

from __future__ import annotations

import math

MAGNITUDES = (1000, 100, 10, 1)


def by_magnitude(v: float, decimals: tuple[int, int, int, int, int]) -> str:
    """`v` with decimals[k] digits after the point, k the first of |v| >= 1000, 100, 10, 1
    (else the last), thousands grouped."""
    bands = zip(MAGNITUDES, decimals[:-1], strict=True)
    places = next((d for limit, d in bands if abs(v) >= limit), decimals[-1])
    return f"{v:,.{places}f}" if abs(v) >= MAGNITUDES[0] else f"{v:.{places}f}"


def ms(seconds: float | None) -> str:
    """Seconds shown as milliseconds: 0.382, 11.04, 157.3, 1,668."""
    if seconds is None or math.isnan(seconds):
        return "—"
    return by_magnitude(seconds * 1e3, (0, 1, 2, 3, 3))


def rate(v: float | None) -> str:
    """Tokens per second: 45.7, 2,970, 20,312."""
    if v is None or math.isnan(v):
        return "—"
    if v >= 100:
        return f"{v:,.0f}"
    return f"{v:.1f}"


_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def nbytes(n: int | None) -> str:
    if n is None:
        return "—"
    value = float(n)
    for unit in _UNITS:
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def nbytes_of(used: int, total: int) -> str:
    """`used/total unit` in the total's unit: 0.6/23.5 GiB."""
    value, unit = float(total), "B"
    for unit in _UNITS:
        if value < 1024 or unit == "TiB":
            break
        value /= 1024
    scale = 1024 ** _UNITS.index(unit)
    return f"{used / scale:.1f}/{total / scale:.1f} {unit}"


def pct(v: float | None) -> str:
    return "—" if v is None or math.isnan(v) else f"{v:.0f}%"
