"""CPU time of one `t` view swap, in process on the recorded event stream at 160x48: the app
as it ships beside the same app with Textual's stock Footer (rebuilt on every focus change)
and animations on (the Tabs' sliding underline). Variants alternate in one run; each figure
is the process CPU per swap minus the same app's idle CPU.

    python bench/view_swap_cpu.py [--swaps 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from textual.widgets import Footer  # noqa: E402

from bench.machine import cpu_model  # noqa: E402
from infertop.tui.app import InfertopApp  # noqa: E402
from infertop.tui.footer import KeyFooter  # noqa: E402
from tests.helpers import replay_app  # noqa: E402

VARIANTS = ("as shipped", "stock Footer", "animations on", "stock Footer + animations")


async def cpu_per_swap(variant: str, swaps: int) -> float:
    app = replay_app()
    if "animations" in variant:
        app.animation_level = "full"
    # the footer subscribes its method when mounted: swap the class's for the stock one
    own = KeyFooter.bindings_changed
    if "stock Footer" in variant:
        KeyFooter.bindings_changed = Footer.bindings_changed  # type: ignore[method-assign]
    try:
        return await swaps_of(app, swaps)
    finally:
        KeyFooter.bindings_changed = own  # type: ignore[method-assign]


async def swaps_of(app: InfertopApp, swaps: int) -> float:
    async with app.run_test(size=(160, 48)):
        await asyncio.sleep(1.0)
        c0 = time.process_time()
        await asyncio.sleep(2.0)
        idle_per_s = (time.process_time() - c0) / 2.0
        c0 = time.process_time()
        for _ in range(swaps):
            app.action_toggle_view()
            await asyncio.sleep(0.25)
        busy = time.process_time() - c0
    return (busy - idle_per_s * 0.25 * swaps) / swaps


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--swaps", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    found: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for _ in range(a.rounds):
        for v in VARIANTS:
            found[v].append(asyncio.run(cpu_per_swap(v, a.swaps)))
    print(f"machine: {cpu_model()}, {os.cpu_count()} CPUs")
    print(f"CPU ms per `t` swap (median of {a.rounds} rounds of {a.swaps} swaps)")
    base = statistics.median(found["as shipped"])
    for v, xs in found.items():
        m = statistics.median(xs)
        print(f"{v:<28}{m * 1e3:8.1f} ms   x{m / base:.2f} of as shipped")


if __name__ == "__main__":
    main()
