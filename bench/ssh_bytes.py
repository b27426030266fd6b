"""What the live screen costs a slow SSH link: the bytes the real app writes to a real
terminal (tmux), per second, and which widgets' repaints they go to.

For each preset and terminal size: start `infertop --model PRESET` (the default flags: batch
sizes 1 and 8) in a tmux pane of that size, wait until it runs and has shown a few runs, then
pipe the pane's output (what the app writes, as ssh would carry it) to a file for
`--seconds` and count it. The bytes are attributed to widgets by where each write lands: a
repaint is a cursor move (`ESC[row;colH`) and what follows it, and the layout at that size
(the same app, headless, at the same size) says whose cell that is.

    python bench/ssh_bytes.py                      # tiny and smollm2-135m, 80x24 and 160x48
    python bench/ssh_bytes.py --low-bandwidth      # the same with --low-bandwidth
    python bench/ssh_bytes.py --preset tiny --size 160x48 --seconds 20

KB here is 1,000 bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import cpu_summary  # noqa: E402
from bench.tmux import pane, wait_for  # noqa: E402

PRESETS = ("tiny", "smollm2-135m")
SIZES = ((80, 24), (160, 48))
MOVE = re.compile(rb"\x1b\[(\d+);(\d+)H")
SGR = re.compile(rb"\x1b\[[0-9;]*m")


def layout(width: int, height: int) -> dict[tuple[int, int], str]:
    """Each cell's widget (the nearest one with an id) at this terminal size, from the app
    run headless on a replayed event stream (the layout does not depend on the model)."""
    from infertop.engine.config import RunConfig
    from infertop.tui.app import InfertopApp
    from tests.replay import DATA, FixedSampler, ReplaySession, from_json

    cells: dict[tuple[int, int], str] = {}

    async def run() -> None:
        session = ReplaySession(from_json(DATA.read_text()), RunConfig(model="tiny"))
        app = InfertopApp(session, sampler=FixedSampler(), start_worker=False)
        async with app.run_test(size=(width, height)) as pilot:
            await pilot.pause()
            for y in range(height):
                for x in range(width):
                    try:
                        widget, _ = app.get_widget_at(x, y)
                    except Exception:  # noqa: BLE001 (no widget there)
                        continue
                    node = widget
                    while node is not None and not node.id:
                        node = node.parent
                    cells[x, y] = node.id if node is not None and node.id else type(widget).__name__
            app.exit()

    asyncio.run(run())
    return cells


def attribute(data: bytes, cells: dict[tuple[int, int], str]) -> Counter[str]:
    """Bytes per widget: each cursor move and what follows it, up to the next move, go to
    the widget whose cell the move lands on."""
    out: Counter[str] = Counter()
    moves = list(MOVE.finditer(data))
    out["(before the first move)"] += moves[0].start() if moves else len(data)
    for k, m in enumerate(moves):
        end = moves[k + 1].start() if k + 1 < len(moves) else len(data)
        row, col = int(m.group(1)) - 1, int(m.group(2)) - 1
        out[cells.get((col, row), "(screen)")] += end - m.start()
    return out


TEXTUAL_DRIVER = "TEXTUAL_DRIVER=textual.drivers.linux_driver:LinuxDriver "


def key_to_screen(session: str, presses: int) -> list[float]:
    """Seconds from `space` sent to the header changed (pausing/resuming shows at once, as
    bench/ui_overhead.py times it; the pane read every 2 ms)."""
    found = []
    for _ in range(presses * 2):  # pause, resume, ...
        before = pane(session).splitlines()[0]
        t0 = time.perf_counter()
        subprocess.run(["tmux", "send-keys", "-t", session, "Space"], check=True)
        wait_for(session, lambda s, before=before: s.splitlines()[0] != before, timeout=10)
        found.append(time.perf_counter() - t0)
        time.sleep(0.7)  # the engine answers (paused, running) before the next press
    return found


def measure(
    preset: str, width: int, height: int, a: argparse.Namespace, textual: bool
) -> tuple[bytes, str, list[float]]:
    """The bytes the app wrote over a.seconds, once it runs and has drawn a few runs; with
    Textual's own driver (every repainted cell sent) when `textual`, else infertop's. Then
    a.keys presses of space, timed to the screen."""
    session = f"infertop-bytes-{os.getpid()}-{time.monotonic_ns()}"
    base = Path(tempfile.mkdtemp(prefix="infertop-bytes-"))
    out = base / "pane.out"
    flags = " --low-bandwidth" if a.low_bandwidth else ""
    env = ("NO_COLOR=1 " if a.no_color else "") + (TEXTUAL_DRIVER if textual else "")
    cmd = (
        f"cd {base} && {env}{sys.executable} -m infertop --model {preset}{flags} "
        f"--trace-dir {base / 'traces'}; sleep 30"
    )
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", str(width), "-y", str(height), cmd],
        check=True,
    )
    try:
        wait_for(session, lambda s: "● running" in s, timeout=300, poll=0.2)
        time.sleep(a.warmup)  # a few runs of each batch size, so every chart has data
        screen = pane(session)
        subprocess.run(["tmux", "pipe-pane", "-o", "-t", session, f"cat > {out}"], check=True)
        time.sleep(a.seconds)
        subprocess.run(["tmux", "pipe-pane", "-t", session], check=True)
        keys = key_to_screen(session, a.keys)
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        time.sleep(1)
        return out.read_bytes(), screen, keys
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", action="append", help="default: tiny and smollm2-135m")
    p.add_argument("--size", action="append", help="WxH; default: 80x24 and 160x48")
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--warmup", type=float, default=8.0, help="seconds after running shows")
    p.add_argument("--low-bandwidth", action="store_true")
    p.add_argument("--no-color", action="store_true", help="run the app with NO_COLOR=1")
    p.add_argument(
        "--textual-driver", action="store_true", help="also measure with Textual's own driver"
    )
    p.add_argument("--keys", type=int, default=5, help="space presses timed (x2: pause, resume)")
    p.add_argument("--show", action="store_true", help="print the screen measured")
    a = p.parse_args()
    presets = a.preset or list(PRESETS)
    sizes = [tuple(map(int, s.split("x"))) for s in a.size] if a.size else list(SIZES)
    setting = "--low-bandwidth" if a.low_bandwidth else "default settings"
    print(f"machine: {cpu_summary()}; {setting}{', NO_COLOR=1' if a.no_color else ''}")
    print(
        f"{'preset':<14}{'size':>8}  {'driver':<9}{'KB/s':>7}{'SGR share':>11}"
        f"{'key ms p50/max':>16}  where the bytes go (share)"
    )
    drivers = [True, False] if a.textual_driver else [False]
    for width, height in sizes:
        cells = layout(width, height)
        for preset in presets:
            rates = {}
            for textual in drivers:
                data, screen, keys = measure(preset, width, height, a, textual)
                key_ms = (
                    f"{statistics.median(keys) * 1e3:.0f}/{max(keys) * 1e3:.0f}" if keys else "-"
                )
                if a.show:
                    print(screen)
                per = attribute(data, cells)
                total = len(data)
                sgr = sum(len(m.group(0)) for m in SGR.finditer(data))
                top = ", ".join(
                    f"{name} {n / max(total, 1):.0%}" for name, n in per.most_common(6) if n
                )
                name = "Textual" if textual else "infertop"
                rates[name] = total / a.seconds / 1000
                print(
                    f"{preset:<14}{f'{width}x{height}':>8}  {name:<9}{rates[name]:>7.2f}"
                    f"{sgr / max(total, 1):>11.0%}{key_ms:>16}  {top}"
                )
            if len(rates) == 2:
                print(f"{'':<24}infertop / Textual: {rates['infertop'] / rates['Textual']:.2f}")


if __name__ == "__main__":
    main()
