"""What the decode thread count chosen at load buys: the decode step at the chosen count
against the step at torch's starting count, in turns in one process (bench/RESULTS.md,
issue 15). `--start N` emulates a process that starts with N threads, as one in a container
allowed fewer CPUs than its host has does.

    python bench/thread_choice.py --start 2 8 --models tiny smollm2-135m
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from machine import cpu_summary  # noqa: E402
from quantiles import paired  # noqa: E402

from infertop.engine.backends.torch.engine import TorchEngine  # noqa: E402
from infertop.engine.config import RunConfig  # noqa: E402
from infertop.engine.runner import Runner  # noqa: E402

INPUT, OUTPUT = 128, 32


def median_decode(engine: TorchEngine, batch: int) -> float:
    """The median decode step of one run, as the runner times it (Runner.run_shape)."""
    cfg = RunConfig(model=engine.config.name, input_lens=(INPUT,), output_lens=(OUTPUT,))
    result = Runner(engine, cfg, lambda _event: None).run_shape(batch, INPUT, OUTPUT)
    assert result is not None, "the run was skipped (out of memory?)"
    return statistics.median(result.decode_latencies)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--start", type=int, nargs="+", default=[torch.get_num_threads()])
    p.add_argument("--models", nargs="+", default=["tiny", "smollm2-135m"])
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    p.add_argument("--rounds", type=int, default=6)
    a = p.parse_args()
    print(f"{cpu_summary()}; torch {torch.__version__}; input {INPUT}, output {OUTPUT}")
    print("| model | start threads | chosen for decode | B | step at start ms | at chosen ms "
          "| chosen / start, paired: median (min-max) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for model in a.models:
        for start in a.start:
            torch.set_num_threads(start)  # what torch starts with here, untimed
            engine = TorchEngine.load(model, device="cpu", dummy=True, batches=(1, max(a.batches)))
            chosen = engine.decode_threads
            print(f"<!-- {model}, start {start}: {engine.thread_choice} -->", flush=True)
            for batch in a.batches:
                if chosen == start:  # nothing to compare: the step is the same
                    print(f"| {model} | {start} | {chosen} | {batch} | - | - | 1 (same count) |")
                    continue
                times: dict[int, list[float]] = {start: [], chosen: []}
                for r in range(a.rounds):
                    for n in [start, chosen] if r % 2 == 0 else [chosen, start]:
                        engine.decode_threads = n
                        times[n].append(median_decode(engine, batch))
                engine.decode_threads = chosen
                print(
                    f"| {model} | {start} | {chosen} | {batch} "
                    f"| {statistics.median(times[start]) * 1e3:.3f} "
                    f"| {statistics.median(times[chosen]) * 1e3:.3f} "
                    f"| {paired(times[chosen], times[start])} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
