"""bfloat16 decode with the kernels chosen at load, against the same engine on F.linear, against
transformers in bfloat16, and against infertop in float32, in turns in one process
(bench/RESULTS.md, issue 15).

The load-time choice times oneDNN's packed linear for a bfloat16 model where the CPU runs it
natively (AVX512-BF16 or AMX); before, bfloat16 had F.linear only. Same weights for everyone:
the transformers model (seeded random init, bfloat16) is saved with save_pretrained and
infertop loads that directory. Each figure is the median over rounds of a run's median
decode step (Runner.run_shape for infertop; generate() steps for transformers).

    python bench/bf16_decode.py              # ~5 minutes on 2 quiet cores
    python bench/bf16_decode.py --rounds 2
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from decode_vs_transformers import (  # noqa: E402
    BATCHES,
    INPUT_LEN,
    OUTPUT_LEN,
    SHAPES,
    Group,
    Series,
    contestants,
    hf_steps,
    infertop_steps,
    run_rounds,
    saved_hf_model,
)
from machine import cpu_summary  # noqa: E402
from quantiles import paired  # noqa: E402

from infertop.engine.backends.torch.engine import TorchEngine  # noqa: E402
from infertop.engine.backends.torch.kernels import PLAIN  # noqa: E402

CHOSEN, FORCED, HF, F32 = "bf16", "bf16[F.linear]", "transformers bf16", "float32"
# (a, b) pairs printed as a / b
RATIOS = ((CHOSEN, FORCED), (CHOSEN, HF), (CHOSEN, F32))


def groups_for(root: Path) -> tuple[list[Group], list[str]]:
    """Per (shape, batch), the four contestants; and the kernel choices, a line each."""
    groups: list[Group] = []
    lines: list[str] = []
    for shape in SHAPES:
        hf, directory = saved_hf_model(shape.hf_config(), root / shape.name, torch.bfloat16)
        spec = str(directory)
        loaded = {
            CHOSEN: TorchEngine.load(spec, device="cpu", dtype="bfloat16"),
            FORCED: TorchEngine.load(spec, device="cpu", dtype="bfloat16", kernel=PLAIN.name),
            F32: TorchEngine.load(spec, device="cpu", dtype="float32"),
        }
        cs = {who: contestants(shape.name, e, hf) for who, e in loaded.items()}
        lines += [f"{shape.name} bf16: {c}" for c in loaded[CHOSEN].kernel_choices]
        for b in BATCHES:
            g: Group = {
                (shape.name, b, who): lambda c=c, b=b: infertop_steps(c, b) for who, c in cs.items()
            }
            g[shape.name, b, HF] = lambda c=cs[CHOSEN], b=b: hf_steps(c, b)
            groups.append(g)
    return groups, lines


def table(series: dict[tuple[str, int, str], Series]) -> list[str]:
    out = [
        "| shape | B | a / b | a ms | b ms | paired a/b: median (min-max) |",
        "|---|---|---|---|---|---|",
    ]
    for shape in SHAPES:
        for b in BATCHES:
            for a, c in RATIOS:
                sa, sc = series[shape.name, b, a], series[shape.name, b, c]
                out.append(
                    f"| {shape.name} | {b} | infertop {a} / {c if c == HF else 'infertop ' + c} "
                    f"| {sa.median * 1e3:.3f} | {sc.median * 1e3:.3f} "
                    f"| {paired(sa.per_round, sc.per_round)} |"
                )
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()
    print(
        f"{cpu_summary()}; torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"input {INPUT_LEN}, output {OUTPUT_LEN}, {a.rounds} rounds; "
        f"oneDNN bf16 supported: {torch.ops.mkldnn._is_mkldnn_bf16_supported()}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="infertop-bf16-") as tmp:
        groups, lines = groups_for(Path(tmp))
        series = run_rounds(groups, a.rounds, "bf16")
    print("\n".join(["", *table(series), "", "Kernels chosen at load:", ""]))
    print("\n".join(f"- `{line}`" for line in lines))


if __name__ == "__main__":
    main()
