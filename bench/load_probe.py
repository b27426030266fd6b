"""The `--compile` load probe (compiled_decode.LOAD_PROBE: a child process loads each new
package before the app does) against the probe it replaced, which loaded it through
torch._inductor.aoti_load_package: both on one real package of the `tiny` model, in turns,
one child each a round (bench/RESULTS.md, issue 15).

    python bench/load_probe.py --rounds 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine import cpu_summary  # noqa: E402
from quantiles import paired  # noqa: E402

BEFORE = [
    sys.executable,
    "-c",
    "import sys, torch; torch._inductor.aoti_load_package(sys.argv[1])",
]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="infertop-probe-") as cache:
        os.environ["INFERTOP_CACHE_DIR"] = cache  # a fresh compile, not the user's kept one
        import torch

        from infertop.engine.backends.torch import compiled_decode
        from infertop.engine.backends.torch.engine import TorchEngine

        print(f"{cpu_summary()}; torch {torch.__version__}; compiling tiny ...", flush=True)
        engine = TorchEngine.load("tiny", device="cpu")
        engine.compile_decode()
        package = str(compiled_decode.package_path(engine.model))
        probes = {"now": compiled_decode.LOAD_PROBE, "before": BEFORE}
        seconds: dict[str, list[float]] = {name: [] for name in probes}
        for r in range(a.rounds):
            for name, probe in list(probes.items())[:: 1 if r % 2 else -1]:
                t0 = time.perf_counter()
                subprocess.run([*probe, package], check=True, capture_output=True)
                seconds[name].append(time.perf_counter() - t0)
    now, before = seconds["now"], seconds["before"]
    print(
        f"probe now {statistics.median(now):.2f} s, before {statistics.median(before):.2f} s "
        f"(medians of {a.rounds}); now / before paired: {paired(now, before)}"
    )


if __name__ == "__main__":
    main()
