"""What capping the thread count at the cgroup's CPU quota buys (engine/cpu_quota.py): in a
cgroup allowed `--cpus` CPUs (made here; needs root and a writable cgroup tree), a run's
prefill and median decode step at torch's own count (one per CPU) and at the quota's, in
turns in one process (bench/RESULTS.md, issue 15).

    sudo python bench/cpu_quota.py --cpus 1 --models tiny smollm2-135m
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

from infertop.engine.cpu_quota import command_in_cgroup, new_cgroup_with_quota

INPUT, OUTPUT = 128, 32


def measure(models: list[str], rounds: int) -> None:
    """In the cgroup: per model and batch, the two counts take turns."""
    import torch
    from machine import cpu_summary
    from quantiles import paired

    from infertop.engine.backends.torch.engine import TorchEngine
    from infertop.engine.config import RunConfig
    from infertop.engine.cpu_quota import cpu_quota
    from infertop.engine.runner import Runner

    quota = cpu_quota()
    assert quota is not None, "no quota read in the cgroup made for it"
    start = torch.get_num_threads()
    print(f"{cpu_summary()}; torch {torch.__version__}; quota {quota.source}")
    print(f"input {INPUT}, output {OUTPUT}, {rounds} rounds; torch's own count: {start}\n")
    print(f"| model | B | phase | {start} threads ms | {quota.threads} (quota) ms "
          "| quota / own, paired: median (min-max) |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for model in models:
        engine = TorchEngine.load(model, device="cpu", dummy=True, threads=start)
        cfg = RunConfig(model=model, input_lens=(INPUT,), output_lens=(OUTPUT,))
        for batch in (1, 8):
            times: dict[tuple[int, str], list[float]] = {}
            for r in range(rounds):
                for n in (start, quota.threads) if r % 2 == 0 else (quota.threads, start):
                    engine.prefill_threads = engine.decode_threads = n
                    result = Runner(engine, cfg, lambda _e: None).run_shape(batch, INPUT, OUTPUT)
                    assert result is not None
                    times.setdefault((n, "prefill"), []).append(result.prefill_latency)
                    decode = statistics.median(result.decode_latencies)
                    times.setdefault((n, "decode"), []).append(decode)
            for phase in ("prefill", "decode"):
                own, capped = times[start, phase], times[quota.threads, phase]
                print(
                    f"| {model} | {batch} | {phase} | {statistics.median(own) * 1e3:.2f} "
                    f"| {statistics.median(capped) * 1e3:.2f} | {paired(capped, own)} |",
                    flush=True,
                )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cpus", type=float, default=1.0)
    p.add_argument("--models", nargs="+", default=["tiny", "smollm2-135m"])
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.inside:
        measure(a.models, a.rounds)
        return
    group = new_cgroup_with_quota(f"infertop-bench-{os.getpid()}", a.cpus)
    try:
        me = [sys.executable, __file__, "--inside", "--rounds", str(a.rounds), "--models"]
        subprocess.run(command_in_cgroup(group, [*me, *a.models]), check=True)
    finally:
        group.rmdir()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
