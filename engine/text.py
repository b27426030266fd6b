"""Small helpers for text shown to people: counted nouns."""

from __future__ import annotations


def plural(n: int, noun: str, many: str | None = None) -> str:
    """`1 run`, `2 runs`, `1,024 steps` (the last word of `noun` takes the plural)."""
    word = noun if n == 1 else (many or f"{noun}s")
    return f"{n:,} {word}"
