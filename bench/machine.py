"""The machine a figure was measured on: every bench script prints it beside its figures."""

from __future__ import annotations

import platform
import subprocess
from functools import cache


@cache
def lscpu() -> str:
    """`lscpu`'s output, once per process: every line below reads it."""
    try:
        return subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return ""


def cpu_model() -> str:
    """`lscpu`'s model name (CPUs differ between sessions of these machines)."""
    return lscpu_field("Model name") or platform.processor() or "unknown CPU"


def lscpu_field(name: str) -> str | None:
    for line in lscpu().splitlines():
        if line.split(":", 1)[0].strip() == name:
            return line.split(":", 1)[1].strip()
    return None


def cpu_generation() -> str:
    """`family 6, model 207`: one model name ("Intel(R) Xeon(R) Processor") spans generations."""
    family, model = lscpu_field("CPU family"), lscpu_field("Model")
    return f"family {family}, model {model}" if family and model else "family and model unknown"


def cpu_summary() -> str:
    """`lscpu` model name "AMD EPYC" (family 25, model 1), 2 CPUs, L2 2 MiB (2 instances), ..."""
    cpus = lscpu_field("CPU(s)") or "?"
    l2, l3 = lscpu_field("L2 cache") or "?", lscpu_field("L3 cache") or "?"
    return f'`lscpu` model name "{cpu_model()}" ({cpu_generation()}), {cpus} CPUs, L2 {l2}, L3 {l3}'


def cpu_heading() -> str:
    """A results heading's machine: the same model name on two generations or core counts
    (the 16-core device host and a 2-core session) must not overwrite each other's figures."""
    return f"{cpu_model()} ({cpu_generation()}, {lscpu_field('CPU(s)') or '?'} CPUs)"
