"""The machine a figure was measured on: every bench script prints it beside its figures."""

from __future__ import annotations

import platform
import subprocess


def cpu_model() -> str:
    """`lscpu`'s model name (CPUs differ between sessions of these machines)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(
            line.split(":", 1)[1].strip() for line in out.splitlines() if "Model name" in line
        )
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def lscpu_field(name: str) -> str | None:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return None
    for line in out.splitlines():
        if line.split(":", 1)[0].strip() == name:
            return line.split(":", 1)[1].strip()
    return None


def cpu_summary() -> str:
    """`lscpu` model name "AMD EPYC", 2 CPUs, L2 2 MiB (2 instances), L3 32 MiB (1 instance)."""
    cpus = lscpu_field("CPU(s)") or "?"
    l2, l3 = lscpu_field("L2 cache") or "?", lscpu_field("L3 cache") or "?"
    return f'`lscpu` model name "{cpu_model()}", {cpus} CPUs, L2 {l2}, L3 {l3}'
