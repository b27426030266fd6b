"""Process memory across repeated captures: the engine runs its sweep round and round in a
worker thread (as in the live screen) and an open-ended capture (`p`, Enter) is taken every
`--every` seconds; RSS is read after each save.

python bench/capture_memory.py                        # tiny, 5 minutes, a capture every 20 s
python bench/capture_memory.py --model smollm2-135m
python bench/capture_memory.py --captures 5 --every 1 --json  # what the test runs

Prints RSS before the first capture, after each one, and the largest growth over the level
after the first capture (the figure the live screen promises to keep under 100 MiB).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time

import psutil
from machine import cpu_model

from infertop.engine.channel import EventQueue
from infertop.engine.commands import StartProfile, Stop
from infertop.engine.config import RunConfig
from infertop.engine.events import ProfileFailed, ProfileStopped
from infertop.engine.loader import load_engine
from infertop.engine.profiling.request import CaptureRequest
from infertop.engine.runner import Runner


def measure(
    model: str,
    minutes: float,
    every: float,
    batch_sizes: tuple[int, ...] = (1, 8),
    captures: int = 0,
) -> dict[str, object]:
    """Captures every `every` seconds for `minutes`, or exactly `captures` of them."""
    with tempfile.TemporaryDirectory(prefix="capmem-") as trace_dir:  # traces: ~40 MB each
        return _measure(model, minutes, every, batch_sizes, captures, trace_dir)


def _measure(
    model: str,
    minutes: float,
    every: float,
    batch_sizes: tuple[int, ...],
    captures: int,
    trace_dir: str,
) -> dict[str, object]:
    cfg = RunConfig(model=model, batch_sizes=batch_sizes, warmup=False, trace_dir=trace_dir)
    events = EventQueue()
    holder: dict[str, Runner] = {}

    def engine_thread() -> None:  # load and run in one thread, as the live screen does
        runner = Runner(load_engine(cfg), cfg, events, repeat=True)
        holder["runner"] = runner
        runner.run()

    thread = threading.Thread(target=engine_thread, daemon=True)
    thread.start()
    while "runner" not in holder:
        time.sleep(0.05)
    runner = holder["runner"]
    proc = psutil.Process()
    time.sleep(min(every, 3.0))  # a few runs first
    before = proc.memory_info().rss
    after: list[int] = []
    end = time.monotonic() + minutes * 60
    k = 0
    while (len(after) < captures) if captures else (time.monotonic() < end or not after):
        started = time.monotonic()
        runner.send(StartProfile(CaptureRequest(name=f"mem{k}")))
        while True:
            got = events.drain()
            if any(isinstance(e, ProfileFailed) for e in got):
                raise RuntimeError(f"capture failed: {got}")
            if any(isinstance(e, ProfileStopped) for e in got):
                break
            time.sleep(0.01)
        after.append(proc.memory_info().rss)
        k += 1
        time.sleep(max(0.0, every - (time.monotonic() - started)))
    runner.send(Stop())
    thread.join(10)
    mib = 2**20
    return {
        "model": model,
        "batch_sizes": list(batch_sizes),
        "cpu": cpu_model(),
        "captures": len(after),
        "rss_before_mib": round(before / mib, 1),
        "rss_after_each_mib": [round(a / mib, 1) for a in after],
        "max_growth_after_first_mib": round((max(after) - after[0]) / mib, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="tiny")
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--every", type=float, default=20.0, help="seconds between captures")
    p.add_argument("--batch-size", type=int, nargs="+", default=[1, 8])
    p.add_argument("--captures", type=int, default=0, help="this many, however long they take")
    p.add_argument("--json", action="store_true", help="one JSON line (for the test)")
    args = p.parse_args()
    result = measure(args.model, args.minutes, args.every, tuple(args.batch_size), args.captures)
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"{result['model']}, batch sizes {result['batch_sizes']}, on {result['cpu']}: "
        f"{result['captures']} captures"
    )
    print(f"RSS before the first capture: {result['rss_before_mib']} MiB")
    print(f"RSS after each capture (MiB): {result['rss_after_each_mib']}")
    print(
        f"largest growth over the level after the first: {result['max_growth_after_first_mib']} MiB"
    )


if __name__ == "__main__":
    main()
