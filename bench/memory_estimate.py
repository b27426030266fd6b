"""The memory estimate (engine/footprint.py) against the measured peak: each model and shape
is loaded and run once in a fresh process, whose peak RSS over its level before loading is
set beside the estimate of weights + KV cache + temporaries.

python bench/memory_estimate.py                  # the presets and shapes of bench/RESULTS.md
python bench/memory_estimate.py --json           # one JSON line per shape (what the test reads)
python bench/memory_estimate.py --shape tiny 64 512 2
python bench/memory_estimate.py --dtype bfloat16    # the same shapes in bfloat16

The ratio estimate / measured is what the refusal rests on: it must stay within 0.85-1.15
where a model is big enough to matter (tests/engine/test_footprint.py).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from machine import cpu_model

SHAPES = [  # model, batch, input, output
    ("smollm2-135m", 1, 128, 2),
    ("qwen2.5-0.5b", 1, 128, 2),
    ("qwen3-0.6b", 4, 128, 2),
    ("smollm2-135m", 16, 512, 2),
    ("tiny", 64, 512, 2),
]

ONE = """
import json, sys
import psutil, torch  # the runtime is in the level before loading, not in the estimate
from infertop.engine.config import RunConfig
from infertop.engine.memory import peak_rss
from infertop.engine.footprint import run_need
from infertop.engine.loader import load_engine
from infertop.engine.runner import Runner
model, dtype, (b, i, o) = sys.argv[1], sys.argv[2], map(int, sys.argv[3:])
base = psutil.Process().memory_info().rss
cfg = RunConfig(
    model=model, dtype=dtype, batch_sizes=(b,), input_lens=(i,), output_lens=(o,), warmup=False
)
engine = load_engine(cfg)
Runner(engine, cfg, lambda e: None).run()
packed = getattr(engine.model, "kernel_names", {}).get("lm_head") == "oneDNN packed"
need = run_need(engine.config, dtype, [(b, i, o)], packed)
print(json.dumps({"measured": peak_rss() - base, "estimate": need.total}))
"""


def measure(model: str, b: int, i: int, o: int, dtype: str = "float32") -> dict[str, object]:
    """One shape in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-c", ONE, model, dtype, str(b), str(i), str(o)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{model} b{b} i{i}: {done.stderr[-2000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    ratio = figures["estimate"] / figures["measured"]
    return {"model": model, "shape": [b, i, o], **figures, "ratio": round(ratio, 3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", nargs=4, action="append", metavar=("MODEL", "B", "IN", "OUT"))
    p.add_argument("--json", action="store_true", help="one JSON line per shape")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    args = p.parse_args()
    shapes = [(m, int(b), int(i), int(o)) for m, b, i, o in args.shape] if args.shape else SHAPES
    if not args.json:
        print(
            f"CPU: {cpu_model()}; {args.dtype}, each shape in its own process, one after the other"
        )
        print(f"{'model':<14} {'shape':<14} {'estimate':>10} {'measured':>10} {'ratio':>6}")
    for shape in shapes:  # one after the other: in parallel they thrash a small machine
        r = measure(*shape, dtype=args.dtype)
        if args.json:
            print(json.dumps({**r, "cpu": cpu_model()}), flush=True)
            continue
        b, i, o = shape[1:]
        mb = 1e6
        print(
            f"{shape[0]:<14} {f'b{b} i{i} o{o}':<14} {r['estimate'] / mb:>8.0f}MB "  # type: ignore[operator]
            f"{r['measured'] / mb:>8.0f}MB {r['ratio']:>6.2f}",  # type: ignore[operator]
            flush=True,
        )


if __name__ == "__main__":
    main()
