"""infertop's torch engine versus Hugging Face transformers' generate(), decode step by step.

Everything runs in one process. A round runs every measurement of a (shape, batch) group once,
in an order that rotates from round to round, so infertop, transformers and the matvec floor
take turns going first; each figure is the median over rounds of a run's median decode step.
Both sides use the same weights: the transformers model (seeded random init) is saved with
save_pretrained and infertop loads that directory.

infertop runs as the engine builds itself: at load it times each projection's candidate
kernels (F.linear, oneDNN packed, oneDNN on the plain weight, the C matmul at batch 1) on the
real weights and keeps the fastest, per batch regime where two share a weight
(engine/backends/torch/kernels.py; the choices are printed and written with the figures).
The floor is the time of just the weight matrix-vector products at B=1, over the engine's
own weights, with each kernel: the engine's own choice, every matrix on F.linear, on oneDNN
packed (packed from them), on oneDNN plain, on the C matmul; each engine's target compares
against the fastest of its floors (the least median over rounds). The default engine and
the `--compile` one are two loads, so two copies of the weights: each gets its own floors,
as two copies of one matrix time up to 8% apart by where each starts in its page. For
information, a further engine is loaded from the same directory with the kernel forced to
F.linear, so the table shows what the choice buys.

    python bench/decode_vs_transformers.py             # ~5-6 minutes on 2 quiet cores
    python bench/decode_vs_transformers.py --quick     # 2 rounds, ~1.5 minutes
    python bench/decode_vs_transformers.py --profile   # plus torch.profiler op tables

Decode step times from generate(): a StoppingCriteria records time.perf_counter() each time
generate() calls it, which is once per generated token, right after that token is appended.
The first call closes the prefill (and first token); each difference between consecutive
calls is one whole decode step (input prep, forward with the KV cache, logits processors,
argmax, append), so 32 new tokens give 31 decode steps, as infertop's runner times them.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from machine import cpu_heading, cpu_summary
from quantiles import paired
from transformers import (
    GenerationConfig,
    LlamaConfig,
    LlamaForCausalLM,
    StoppingCriteria,
    StoppingCriteriaList,
)
from transformers import __version__ as transformers_version

from infertop.engine.backends.torch.engine import TorchEngine
from infertop.engine.backends.torch.fused_decode import LAYER_PROJECTIONS
from infertop.engine.backends.torch.kernels import (
    ONEDNN,
    ONEDNN_PLAIN,
    PLAIN,
    Linear,
    candidates,
    own_matmul_here,
)
from infertop.engine.config import RunConfig, human_count
from infertop.engine.events import Event
from infertop.engine.presets import PRESETS
from infertop.engine.runner import Runner

INPUT_LEN = 128
OUTPUT_LEN = 32
PROMPT_SEED = 42
WEIGHT_SEED = 0
VOCAB = 32000
BATCHES = (1, 8)
HEADING = "## Engine decode vs transformers, kernels chosen at load (issue 15)"

TARGET_VS_HF = 0.8  # infertop / transformers, median decode step
TARGET_VS_FLOOR = 1.15  # infertop / the fastest kernel over its weight matrices, B=1
TARGET_COMPILED_VS_FLOOR = 1.05
TARGET_TINY_MS = 0.3  # infertop's decode step on the tiny preset, B=1

FORCED = "[F.linear]"  # label suffix of the engine whose kernel is forced to F.linear
PLAIN_FLOOR = "floor[F.linear]"
ONEDNN_FLOOR = "floor[oneDNN packed]"
ONEDNN_PLAIN_FLOOR = "floor[oneDNN]"  # oneDNN on the plain weights
OWN_FLOOR = "floor[C matmul]"  # fused_ops.c's own_sgemv on the plain weights
FASTEST = "fastest floor"
COMPILED = "[--compile]"  # label suffix of the engine whose decode step is AOTInductor-compiled
# torch's count at start: transformers and the floors run on it; infertop's decode sets its
# own count, chosen at load (engine/backends/torch/threads.py), and leaves it set
START_THREADS = torch.get_num_threads()

Key = tuple[str, int, str]  # (shape label, batch size, what was timed)


@dataclass(frozen=True)
class Shape:
    name: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int

    def hf_config(self) -> LlamaConfig:
        return LlamaConfig(
            vocab_size=VOCAB,
            hidden_size=self.hidden,
            intermediate_size=self.intermediate,
            num_hidden_layers=self.layers,
            num_attention_heads=self.heads,
            num_key_value_heads=self.kv_heads,
            max_position_embeddings=2048,
            tie_word_embeddings=False,
        )


SHAPES = (
    Shape("56M", hidden=512, layers=8, heads=8, kv_heads=8, intermediate=1376),
    Shape("250M", hidden=1024, layers=16, heads=16, kv_heads=16, intermediate=2816),
)


# -- the contestants -------------------------------------------------------------------------
class StepClock(StoppingCriteria):
    """Never stops generation; records perf_counter() at every call (one per new token)."""

    def __init__(self) -> None:
        self.stamps: list[float] = []

    def __call__(self, input_ids: torch.Tensor, scores: object, **kwargs: object) -> torch.Tensor:
        self.stamps.append(time.perf_counter())
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


def _no_events(_event: Event) -> None:
    pass


@dataclass
class Contestants:
    """One model shape, loaded by infertop and by transformers from the same weights."""

    label: str
    engine: TorchEngine
    runner: Runner
    hf: LlamaForCausalLM
    gen_config: GenerationConfig
    prompts: dict[int, torch.Tensor] = field(default_factory=dict)

    @property
    def params(self) -> int:
        return self.engine.config.param_count()

    @property
    def hf_params(self) -> int:
        return sum(p.numel() for p in self.hf.parameters())


def contestants(label: str, engine: TorchEngine, hf: LlamaForCausalLM) -> Contestants:
    run_cfg = RunConfig(
        model=engine.config.name,
        backend="torch",
        device="cpu",
        dtype="float32",
        input_lens=(INPUT_LEN,),
        output_lens=(OUTPUT_LEN,),
        seed=PROMPT_SEED,
        warmup=False,
    )
    gen_config = GenerationConfig(
        do_sample=False,
        num_beams=1,
        min_new_tokens=OUTPUT_LEN,
        max_new_tokens=OUTPUT_LEN,
        use_cache=True,
        pad_token_id=0,
        bos_token_id=hf.config.bos_token_id,
        eos_token_id=hf.config.eos_token_id,
    )
    c = Contestants(label, engine, Runner(engine, run_cfg, _no_events), hf, gen_config)
    for b in BATCHES:  # the very prompts the runner makes, for transformers too
        c.prompts[b] = engine.random_prompts(b, INPUT_LEN, PROMPT_SEED)
    return c


def compiled_engine(spec: str) -> TorchEngine:
    """What `infertop bench --compile` runs: the engine as it builds itself, decode compiled."""
    engine = TorchEngine.load(spec, device="cpu", dtype="float32")
    engine.compile_decode((INPUT_LEN, OUTPUT_LEN))
    assert engine.compiled is not None
    print(f"  compiled {spec}'s decode step in {engine.compiled.compile_seconds:.1f} s")
    return engine


def saved_hf_model(
    config: LlamaConfig, directory: Path, dtype: torch.dtype
) -> tuple[LlamaForCausalLM, Path]:
    """transformers' model with seeded random weights in `dtype`, saved to `directory` for
    infertop to load."""
    torch.manual_seed(WEIGHT_SEED)
    hf = LlamaForCausalLM(config).to(dtype).eval()
    hf.save_pretrained(directory)
    return hf, directory


def build(
    shape: Shape, root: Path, compile: bool
) -> tuple[Contestants, Contestants, Contestants | None]:
    """transformers model with seeded random weights -> save_pretrained -> infertop loads it
    three times: as it builds itself, with its kernel forced to F.linear, and with --compile
    (unless `compile` is false)."""
    hf, directory = saved_hf_model(shape.hf_config(), root / shape.name, torch.float32)
    engine = TorchEngine.load(str(directory), device="cpu", dtype="float32")
    forced = TorchEngine.load(str(directory), device="cpu", dtype="float32", kernel=PLAIN.name)
    return (
        contestants(shape.name, engine, hf),
        contestants(shape.name + FORCED, forced, hf),
        contestants(shape.name + COMPILED, compiled_engine(str(directory)), hf)
        if compile
        else None,
    )


def infertop_steps(c: Contestants, batch: int) -> list[float]:
    """Runner.run_shape -> _timed_run: prepare, random_prompts, prefill, decode + wait per step."""
    result = c.runner.run_shape(batch, INPUT_LEN, OUTPUT_LEN)
    assert result is not None, "infertop run skipped (out of memory?)"
    return list(result.decode_latencies)


def hf_generate(c: Contestants, batch: int, clock: StepClock | None = None) -> torch.Tensor:
    prompts = c.prompts[batch]
    with torch.inference_mode():
        return c.hf.generate(
            prompts,
            attention_mask=torch.ones_like(prompts),
            generation_config=c.gen_config,
            stopping_criteria=StoppingCriteriaList([clock] if clock else []),
        )


def hf_steps(c: Contestants, batch: int) -> list[float]:
    torch.set_num_threads(START_THREADS)
    clock = StepClock()
    hf_generate(c, batch, clock)
    stamps = clock.stamps
    assert len(stamps) == OUTPUT_LEN, f"generate made {len(stamps)} tokens, not {OUTPUT_LEN}"
    return [b - a for a, b in zip(stamps, stamps[1:], strict=False)]


def greedy_agreement(
    c: Contestants, batch: int, theirs: torch.Tensor | None = None
) -> tuple[int, int, torch.Tensor]:
    """(tokens equal, tokens compared, transformers' tokens) between infertop's and
    transformers' greedy outputs; `theirs` reuses transformers' tokens from an earlier call."""
    e = c.engine
    e.prepare(batch, INPUT_LEN + OUTPUT_LEN)
    tok = e.prefill(c.prompts[batch])
    ours = [tok]
    for step in range(1, OUTPUT_LEN):
        tok = e.decode(tok, INPUT_LEN + step - 1)
        ours.append(tok)
    mine = torch.cat(ours, dim=1)
    if theirs is None:
        theirs = hf_generate(c, batch)[:, INPUT_LEN:]
    return int((mine == theirs).sum()), mine.numel(), theirs


# -- matvec floors ---------------------------------------------------------------------------
def matvec_steps(pairs: list[tuple[Linear, torch.Tensor]], batch: int, reps: int) -> list[float]:
    """Time linear(x, W) over every (kernel, matrix) pair in sequence, for a (batch, K) fp32
    activation, on torch's starting thread count."""
    torch.set_num_threads(START_THREADS)
    gen = torch.Generator().manual_seed(1)
    in_dims = [w.shape[1] for _, w in pairs]  # a oneDNN-packed weight keeps its (N, K) shape
    xs = {d: torch.randn(batch, d, generator=gen) for d in set(in_dims)}
    calls = [(linear, xs[d], w) for d, (linear, w) in zip(in_dims, pairs, strict=True)]
    times: list[float] = []
    with torch.inference_mode():
        for _ in range(reps):
            t0 = time.perf_counter()
            for linear, x, w in calls:
                linear(x, w)
            times.append(time.perf_counter() - t0)
    return times


def own_plain_matrices(c: Contestants, f: Contestants) -> list[torch.Tensor]:
    """c's matrices where it keeps them plain, else the forced engine's (plain throughout):
    the kernels that run on plain weights are timed over c's own copy, so a floor and the
    engine it is compared with read the same pages (two copies of one matrix time up to 8%
    apart by where each starts in its page: RESULTS.md, "Where a weight starts in its page")."""
    m = c.engine.model
    names = [*(p for _ in m.layers for p in LAYER_PROJECTIONS), "lm_head"]
    own, plain = m.weight_matrices(), f.engine.model.weight_matrices()
    assert len(names) == len(own) == len(plain)
    return [
        w if m.kernels[name].pack is PLAIN.pack else fw
        for name, (_, w), (_, fw) in zip(names, own, plain, strict=True)
    ]


def floors(c: Contestants, f: Contestants) -> dict[str, list[tuple[Linear, torch.Tensor]]]:
    """The decode step's matrices under each kernel, over c's own weights: c's choice, and
    all F.linear, all oneDNN packed (packed from them), all oneDNN and all the C matmul
    where they run. Each kind is named for c (`kind of <label>`) but for the default engine."""
    plain = own_plain_matrices(c, f)
    out = {"floor": c.engine.model.weight_matrices(), PLAIN_FLOOR: [(PLAIN.run, w) for w in plain]}
    cpu, f32 = torch.device("cpu"), torch.float32
    if ONEDNN in candidates(cpu, f32):
        out[ONEDNN_FLOOR] = [(ONEDNN.run, ONEDNN.pack(w)) for w in plain]
        out[ONEDNN_PLAIN_FLOOR] = [(ONEDNN_PLAIN.run, w) for w in plain]
    own = own_matmul_here(cpu, f32)
    if own is not None:
        out[OWN_FLOOR] = [(own.run, w) for w in plain]
    return {of(kind, c.label): pairs for kind, pairs in out.items()}


def of(kind: str, label: str) -> str:
    """A floor's key for one engine, named by its label (`56M[--compile]` or
    `infertop[--compile]`): the default engine's floors keep their bare names."""
    _, bracket, suffix = label.partition("[")
    return kind if not bracket else f"{kind} of infertop[{suffix}"


def floors_of(who: str, kinds: list[str]) -> list[str]:
    """The floors timed over `who`'s weights ("infertop": the default engine's, bare names)."""
    mine = [k for k in kinds if k.startswith("floor")]
    if who == "infertop":
        return [k for k in mine if " of " not in k]
    return [k for k in mine if k.endswith(" of " + who)]


def add_fastest_floor(series: dict[Key, Series]) -> None:
    """Per shape and engine, its floor with the least median over rounds (the targets'
    floor). Not each round's least floor: the least of five noisy readings sits below any
    one kernel's median (56M, one run: 7.435 ms, against 7.686 for the fastest kernel's)."""
    for s in SHAPES:
        for who in ("infertop", "infertop" + COMPILED):
            kinds = floors_of(who, [k[2] for k in series if k[:2] == (s.name, 1)])
            if kinds:
                fastest = min(kinds, key=lambda k: series[s.name, 1, k].median)
                series[s.name, 1, of(FASTEST, who)] = Series(
                    list(series[s.name, 1, fastest].per_round)
                )


# -- rounds ----------------------------------------------------------------------------------
@dataclass
class Series:
    """Per-round medians of one measurement."""

    per_round: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.per_round)


Task = Callable[[], list[float]]
Group = dict[Key, Task]  # measurements interleaved with each other, round by round


def main_groups(
    cs: list[tuple[Contestants, Contestants, Contestants | None]],
    tiny: Contestants,
    tiny_hfdir: Contestants,
    tiny_compiled: Contestants | None,
    reps: int,
) -> list[Group]:
    """Per (shape, batch): infertop, infertop --compile, transformers and (for information)
    infertop with F.linear forced; at B=1 also the matvec floors. Then the tiny preset's
    fixed cost."""
    groups: list[Group] = []
    for c, f, k in cs:
        n = c.label
        for b in BATCHES:
            g: Group = {
                (n, b, "infertop"): lambda c=c, b=b: infertop_steps(c, b),
                (n, b, "transformers"): lambda c=c, b=b: hf_steps(c, b),
                (n, b, "infertop" + FORCED): lambda f=f, b=b: infertop_steps(f, b),
            }
            if k is not None:
                g[n, b, "infertop" + COMPILED] = lambda k=k, b=b: infertop_steps(k, b)
            if b == 1:
                forced_floor = {of("floor", f.label): f.engine.model.weight_matrices()}
                each = [floors(c, f), forced_floor, floors(k, f) if k is not None else {}]
                for kind, pairs in (kv for d in each for kv in d.items()):
                    g[n, b, kind] = lambda pairs=pairs: matvec_steps(pairs, 1, reps)
            groups.append(g)
    tiny_group: Group = {
        ("tiny", 1, "infertop"): lambda: infertop_steps(tiny, 1),
        ("tiny", 1, "transformers"): lambda: hf_steps(tiny, 1),
        ("tiny", 1, "infertop-hfdir"): lambda: infertop_steps(tiny_hfdir, 1),
    }
    if tiny_compiled is not None:
        tiny_group["tiny", 1, "infertop" + COMPILED] = lambda: infertop_steps(tiny_compiled, 1)
    return [*groups, tiny_group]


def run_rounds(groups: list[Group], rounds: int, name: str) -> dict[Key, Series]:
    series: dict[Key, Series] = {}
    for r in range(rounds):
        t0 = time.perf_counter()
        for g in groups:
            keys = list(g)
            k = r % len(keys)
            order = keys[k:] + keys[:k]  # rotate, so each measurement takes its turn first
            if (r // len(keys)) % 2:
                order.reverse()
            for key in order:
                times = g[key]()
                series.setdefault(key, Series()).per_round.append(statistics.median(times))
        print(f"  {name} round {r + 1}/{rounds}: {time.perf_counter() - t0:.1f} s", flush=True)
    return series


# -- report ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    shape: str
    batch: int
    what: str  # "a / b"
    a: Key
    b: Key | None  # None: `a` alone, against a target in ms
    target: float | None  # ratio (or ms when b is None); None: for information


def rows_for(series: dict[Key, Series]) -> list[Row]:
    rows: list[Row] = []
    for s in SHAPES:
        n = s.name
        for who in ("infertop", "infertop" + COMPILED):
            for b in BATCHES:
                hf = (n, b, "transformers")
                rows.append(Row(n, b, f"{who} / transformers", (n, b, who), hf, TARGET_VS_HF))
            floor = (n, 1, of(FASTEST, who))
            target = TARGET_VS_FLOOR if who == "infertop" else TARGET_COMPILED_VS_FLOOR
            what = f"{who} / its fastest matvec floor"
            rows.append(Row(n, 1, what, (n, 1, who), floor, target))
    for who in ("infertop", "infertop" + COMPILED):
        rows.append(Row("tiny", 1, f"{who} fixed cost", ("tiny", 1, who), None, TARGET_TINY_MS))
    tiny_hf = ("tiny", 1, "transformers")
    rows.append(Row("tiny", 1, "infertop / transformers", ("tiny", 1, "infertop"), tiny_hf, None))
    forced = "infertop" + FORCED
    for s in SHAPES:  # the information rows: the floors, and what the choice buys
        n = s.name
        kinds = [k[2] for k in series if k[:2] == (n, 1)]
        for who in ("infertop", "infertop" + COMPILED):
            fastest = (n, 1, of(FASTEST, who))
            for kind in floors_of(who, kinds):
                rows.append(Row(n, 1, f"{kind} / {fastest[2]}", (n, 1, kind), fastest, None))
        theirs, ours = (n, 1, of("floor", "infertop" + COMPILED)), (n, 1, "floor")
        rows.append(Row(n, 1, f"{theirs[2]} / {ours[2]}", theirs, ours, None))  # two copies
        for b in BATCHES:
            hf = (n, b, "transformers")
            rows.append(Row(n, b, forced + " / transformers", (n, b, forced), hf, None))
        floor = (n, 1, of("floor", forced))
        rows.append(Row(n, 1, forced + " / its matvec floor", (n, 1, forced), floor, None))
    return [r for r in rows if r.a in series and (r.b is None or r.b in series)]


HEADER = (
    "shape",
    "B",
    "decode step: a / b",
    "a ms",
    "b ms",
    "a/b",
    "paired a/b: med (min-max)",
    "target",
    "met",
)


def cells(row: Row, series: dict[Key, Series]) -> tuple[str, ...]:
    a = series[row.a]
    target = "-" if row.target is None else f"<= {row.target}"
    if row.b is None:
        value = a.median * 1e3
        met = "-" if row.target is None else ("yes" if value <= row.target else "NO")
        return (
            row.shape,
            str(row.batch),
            row.what,
            f"{value:.3f}",
            "-",
            "-",
            "-",
            target + " ms",
            met,
        )
    b = series[row.b]
    ratio = a.median / b.median
    met = "-" if row.target is None else ("yes" if ratio <= row.target else "NO")
    ratios = paired(a.per_round, b.per_round)
    return (
        row.shape,
        str(row.batch),
        row.what,
        f"{a.median * 1e3:.3f}",
        f"{b.median * 1e3:.3f}",
        f"{ratio:.2f}",
        ratios,
        target,
        met,
    )


def render(rows: list[Row], series: dict[Key, Series], markdown: bool) -> str:
    body = [HEADER, *(cells(r, series) for r in rows)]
    if markdown:
        lines = ["| " + " | ".join(r) + " |" for r in body]
        lines.insert(1, "|" + "---|" * len(HEADER))
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in body) for i in range(len(HEADER))]
    return "\n".join(
        "  ".join(
            c.ljust(w) if i in (0, 2) else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in body
    )


def write_results(path: Path, heading: str, section: str) -> None:
    """Replace this benchmark's section for this CPU in the results file (or append it)."""
    old = path.read_text() if path.exists() else "# Bench results\n"
    start = old.find(heading + "\n")
    if start < 0:
        new = old.rstrip("\n") + "\n\n" + section
    else:
        end = old.find("\n## ", start + len(heading))
        new = old[:start] + section + ("" if end < 0 else "\n" + old[end + 1 :])
    path.write_text(new)


def profile_decode(c: Contestants, batch: int, steps: int = 8, top: int = 12) -> None:
    """torch.profiler over infertop decode steps: time per step, matmul share, op counts."""
    mm_ops = ("aten::mm", "aten::addmm", "mkldnn::_linear_pointwise")
    from torch.profiler import ProfilerActivity, profile

    e = c.engine
    e.prepare(batch, INPUT_LEN + OUTPUT_LEN)
    tok = e.decode(e.prefill(c.prompts[batch]), INPUT_LEN)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for step in range(steps):
            tok = e.decode(tok, INPUT_LEN + 1 + step)
    avgs = prof.key_averages()
    total = sum(a.self_cpu_time_total for a in avgs)
    mm = sum(a.self_cpu_time_total for a in avgs if a.key in mm_ops)
    calls = sum(a.count for a in avgs) / steps
    print(
        f"\n-- torch.profiler, infertop {c.label} ({e.model.kernel}) B={batch}: "
        f"{total / steps / 1e3:.3f} ms self CPU per step, matmuls {mm / total:.1%}, "
        f"{calls:.0f} op calls per step"
    )
    print(avgs.table(sort_by="self_cpu_time_total", row_limit=top))


def kernels_line(cs: list[Contestants]) -> str:
    """Which matmul kernel each engine chose, and whether torch has oneDNN (mkldnn) at all."""
    kinds = ", ".join(f"{c.label} {c.engine.model.kernel}" for c in cs)
    mkldnn = torch.backends.mkldnn.is_available()
    return f"kernels chosen: {kinds}; torch.backends.mkldnn available: {mkldnn}"


def choices_lines(cs: list[Contestants], compiled: list[Contestants]) -> list[str]:
    """Each engine's per-projection choice with its load-time timings (seconds -> ms), its
    thread count, and how its decode step runs the ops between the matmuls (with --compile:
    which step runs batch 1)."""
    both = [*cs, *compiled]  # each load chooses for itself, on its own copy of the weights
    kernels = [f"- {c.label}: `{line}`" for c in both for line in c.engine.kernel_choices]
    threads = [f"- {c.label}: `{c.engine.thread_choice}`" for c in both if c.engine.thread_choice]
    ops = [f"- {c.label}: decode ops `{c.engine.decode_ops}`" for c in both]
    return [*kernels, *threads, *ops]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="infertop decode vs transformers generate()")
    p.add_argument("--rounds", type=int, help="rounds (default 5; 2 with --quick)")
    p.add_argument("--quick", action="store_true", help="2 rounds, fewer floor repeats")
    p.add_argument(
        "--profile",
        action="store_true",
        help="also print torch.profiler tables of infertop decode steps",
    )
    p.add_argument(
        "--results",
        type=Path,
        default=Path(__file__).with_name("RESULTS.md"),
        help="markdown file whose section to update (default bench/RESULTS.md)",
    )
    p.add_argument("--no-write", action="store_true", help="leave the results file alone")
    p.add_argument(
        "--no-compile",
        action="store_true",
        help="leave out the --compile rows (where AOTInductor does not work)",
    )
    args = p.parse_args(argv)
    rounds = args.rounds or (2 if args.quick else 5)
    floor_reps = 11 if args.quick else 31
    threads = START_THREADS
    t_start = time.perf_counter()
    print(
        f"torch {torch.__version__}, transformers {transformers_version}, {threads} threads, "
        f"{platform.machine()}; float32 cpu, input {INPUT_LEN}, output {OUTPUT_LEN}, "
        f"{rounds} rounds"
    )

    with tempfile.TemporaryDirectory(prefix="infertop-bench-") as tmp:
        root = Path(tmp)
        cs = [build(s, root, not args.no_compile) for s in SHAPES]
        tiny_hf_cfg = LlamaConfig(**PRESETS["tiny"].to_hf_dict())
        tiny_hf, _ = saved_hf_model(tiny_hf_cfg, root / "tiny", torch.float32)
        tiny = contestants("tiny", TorchEngine.load("tiny", "cpu", "float32"), tiny_hf)
        tiny_hfdir = contestants("tiny-hfdir", TorchEngine.load(str(root / "tiny"), "cpu"), tiny_hf)
        tiny_compiled = (
            None
            if args.no_compile
            else contestants("tiny" + COMPILED, compiled_engine("tiny"), tiny_hf)
        )
        for c in [*(c for c, _, _ in cs), tiny]:
            print(
                f"{c.label}: {human_count(c.params)} params (infertop {c.params:,}, "
                f"transformers {c.hf_params:,}), infertop kernel {c.engine.model.kernel}, "
                f"transformers attention {c.hf.config._attn_implementation}"
            )
        kernels = kernels_line([c for c, _, _ in cs] + [tiny])
        print(kernels)
        print(f"{FORCED}: a second engine from the same directory, kernel forced to F.linear")
        print(f"{COMPILED}: a third, its decode step compiled with AOTInductor (--compile)")
        print("tiny: infertop runs the preset's own dummy weights; tiny-hfdir loads transformers'")

        print("warming up; greedy tokens equal between infertop and transformers:")
        for c, f, k in cs:
            for b in BATCHES:
                same, n, theirs = greedy_agreement(c, b)
                same_f, _, _ = greedy_agreement(f, b, theirs)
                compiled = ""
                if k is not None:
                    same_k, _, _ = greedy_agreement(k, b, theirs)
                    compiled = f", {k.label}: {same_k}/{n}"
                print(f"  {c.label} B={b}: {same}/{n} ({f.label}: {same_f}/{n}{compiled})")
        same, n, _ = greedy_agreement(tiny_hfdir, 1)
        print(f"  {tiny_hfdir.label} B=1: {same}/{n}")
        infertop_steps(tiny, 1)
        gc.collect()
        groups = main_groups(cs, tiny, tiny_hfdir, tiny_compiled, floor_reps)
        series = run_rounds(groups, rounds, "main")
        add_fastest_floor(series)
        rows = rows_for(series)
        choices = choices_lines([c for c, _, _ in cs], [k for _, _, k in cs if k is not None])
        print("\n".join(["kernels, decode threads and ops chosen at load:", *choices]))
        print()
        print(render(rows, series, markdown=False))
        print(
            "\na/b = a's median over rounds / b's; paired = the per-round ratios. Rows without "
            f"a target are information. {kernels}. "
            f"{time.perf_counter() - t_start:.0f} s in all."
        )
        if args.profile:
            for c, f, _ in cs:
                for b in BATCHES:
                    profile_decode(c, b)
                    profile_decode(f, b)

    if not args.no_write:
        cmd = " ".join(["python bench/decode_vs_transformers.py", *sys.argv[1:]])
        date = datetime.date.today().isoformat()
        heading = f"{HEADING}: {cpu_heading()}"
        section = "\n".join(
            [
                heading,
                "",
                f"{date}, `{cmd}`: {cpu_summary()}; torch {torch.__version__}, transformers "
                f"{transformers_version}, {threads} threads, {platform.machine()}, float32, "
                f"input {INPUT_LEN}, output {OUTPUT_LEN}, {rounds} rounds; {kernels}.",
                "",
                render(rows, series, markdown=True),
                "",
                "Kernels chosen at load (`infertop bench` prints the same lines; times are the "
                "fastest of the load-time calls):",
                "",
                *choices,
                "",
                "Method: one process; per (shape, batch) the measurements run once a round in a "
                "rotating order; each figure is the median over rounds of one run's median decode "
                "step. infertop: Runner.run_shape (engine.prepare/random_prompts/prefill/decode/"
                "wait) on TorchEngine.load of the saved directory, as the engine builds itself; "
                "transformers: greedy generate() with use_cache on the same prompt ids and "
                "weights, step = difference of consecutive StoppingCriteria perf_counter() stamps "
                "(31 per run); matvec floors: linear(x, w) of a (1, K) fp32 activation over "
                "every matrix of the decode step in sequence, over the engine's own weights "
                "(the forced engine's plain copy where the engine keeps a matrix packed), with "
                f"its chosen kernels (floor), all F.linear ({PLAIN_FLOOR}), all oneDNN packed "
                f"({ONEDNN_FLOOR}), all oneDNN on the plain weights ({ONEDNN_PLAIN_FLOOR}) and "
                f"all the C matmul on them ({OWN_FLOOR}); the `--compile` engine's the same over "
                f"its weights (`... of infertop{COMPILED}`); each engine's target floor is the "
                f"one of its floors with the least median ({FASTEST}). Rows "
                f"without a target: information; infertop{FORCED} is a second TorchEngine.load "
                "of the same directory with kernel='F.linear' (no timing, plain weights). "
                f"infertop{COMPILED} is a third load with engine.compile_decode() (what "
                "`--compile` does): the decode step exported with dynamic batch and cache "
                "length and compiled by AOTInductor, calling the kernels chosen at load.",
                "",
            ]
        )
        write_results(args.results, heading, section)
        print(f"updated {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
