"""The matmul kernel chosen by measurement at load (engine/backends/torch/kernels.py), on
the real kernels of this CPU; each forced kernel is checked against transformers in
tests/parity/test_parity_torch.py."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from infertop.engine.backends.torch import fused_build
from infertop.engine.backends.torch.engine import TorchEngine
from infertop.engine.backends.torch.kernels import (
    MAX_TIMED_BATCH,
    MAX_TIMED_BYTES,
    ONEDNN,
    ONEDNN_PLAIN,
    PLAIN,
    Kernel,
    candidates,
    choose_kernels,
    onednn_usable,
    own_matmul_here,
    summary_of,
    timing_samples,
)
from infertop.engine.backends.torch.model import TorchLlama
from infertop.engine.presets import PRESETS
from tests.engine.test_bench_cli import infertop

needs_cc = pytest.mark.skipif(fused_build.compiler() is None, reason="no C compiler here")

CPU, F32 = torch.device("cpu"), torch.float32


@pytest.fixture(autouse=True)
def one_thread():
    """These tests time kernels that differ by a sleep of a millisecond. On torch's threads,
    with the other test worker busy on the same 2 cores, every parallel region waited on a
    descheduled thread: oneDNN's 96x64 matvec read 6 ms at best of 7, and a choice that
    the sleeps decide came out the other way (1 run in 2 of this file beside test_threads)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def slowed(kernel: Kernel, seconds: float) -> Kernel:
    """`kernel`, made slower by a sleep per call (named for it)."""

    def run(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        time.sleep(seconds)
        return kernel.run(x, w, b)

    return Kernel(f"{kernel.name} + {seconds * 1e3:g} ms", kernel.pack, run)


def test_a_clearly_slower_candidate_is_never_chosen() -> None:
    gen = torch.Generator().manual_seed(0)
    weights = {
        "qkv": [torch.randn(96, 64, generator=gen), torch.randn(96, 64, generator=gen)],
        "lm_head": [torch.randn(512, 64, generator=gen)],
    }
    slow = slowed(PLAIN, 0.003)  # 3 ms a call; these matvecs take microseconds
    for order in ([slow, *candidates(CPU, F32)], [*candidates(CPU, F32), slow]):
        choices = choose_kernels(weights, [1, 8], order)
        assert all(c.chosen != slow.name for c in choices.values())
        for c in choices.values():
            assert c.seconds[1][slow.name] > 2e-3 and c.seconds[8][slow.name] > 2e-3


def test_the_choice_is_the_fastest_in_both_regimes_when_one_kernel_wins_both() -> None:
    gen = torch.Generator().manual_seed(0)
    weights = {"down": [torch.randn(64, 128, generator=gen)]}
    fast, slow = slowed(PLAIN, 0.0005), slowed(PLAIN, 0.004)
    (choice,) = choose_kernels(weights, [1, 4], [slow, fast]).values()
    assert choice.chosen == fast.name
    assert choice.fastest(1) == choice.fastest(4) == fast.name


def slowed_at(
    kernel: Kernel, rows: int, seconds: float, name: str, every_call: float = 0.0
) -> Kernel:
    """`kernel`, slower by a sleep when its input has `rows` rows (and by `every_call` on
    every call), counting its calls."""
    calls: list[int] = []

    def run(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        calls.append(x.shape[0])
        time.sleep(every_call + (seconds if x.shape[0] == rows else 0.0))
        return kernel.run(x, w, b)

    slowed = Kernel(name, kernel.pack, run)
    CALLS[name] = calls
    return slowed


CALLS: dict[str, list[int]] = {}
# The sleep that sets the slowdowns where two kernels each win one batch. On CI's 2-core
# guest, beside the other test worker, a 1 ms sleep read 3.0 ms at best of 3 rounds (every
# call over SLOW_CALL_S, so 3) and 2 ms one read 2.4: the choice swapped. A kernel wins here
# by a whole UNIT, which no wakeup that late can take from it.
UNIT = 0.010


def test_kernels_of_one_layout_split_the_batches_each_wins() -> None:
    """Two kernels over the same plain weight, each slow in one regime: the choice is both,
    by rows; a compiled step gets the one that loses less over both batches. Every call
    sleeps a UNIT, so the slowdowns are the sleeps' (2x and 10x): measured against the tiny
    matmuls' own microseconds, they swapped in one CI dry run."""
    weights = {"gate_up": [torch.randn(96, 64, generator=torch.Generator().manual_seed(0))]}
    one_row = slowed_at(PLAIN, 8, 9 * UNIT, "fast at one row", every_call=UNIT)
    more_rows = slowed_at(
        ONEDNN_PLAIN if ONEDNN_PLAIN in candidates(CPU, F32) else PLAIN,
        1,
        UNIT,
        "fast above",
        every_call=UNIT,
    )
    (choice,) = choose_kernels(weights, [1, 8], [one_row, more_rows]).values()
    assert choice.chosen == "fast at one row at B=1, fast above above", choice.describe()
    assert choice.describe().startswith(f"gate_up 96x64: {choice.chosen}  B=1 ")
    kernel = choice.kernel
    assert kernel.pack is PLAIN.pack
    (w,) = weights["gate_up"]
    for rows, ran in ((1, "fast at one row"), (8, "fast above"), (3, "fast above")):
        CALLS[ran].clear()
        x = torch.randn(rows, 64)
        torch.testing.assert_close(kernel.run(x, w), F.linear(x, w), atol=1e-5, rtol=0)
        assert CALLS[ran] == [rows]
    assert kernel.in_graph is more_rows.run  # 2x at B=1 loses less than 10x at B=8


def test_a_kernel_a_graph_cannot_call_leaves_the_graph_the_one_that_loses_least() -> None:
    """The C matmul is a ctypes call, which a compiled step cannot make: chosen, it runs
    eagerly, and the graph runs the kernel of its layout that loses least over the batches."""
    weights = {"down": [torch.randn(64, 96, generator=torch.Generator().manual_seed(0))]}
    # sleeps on every call, so the slowdowns are the sleeps', not the tiny matmuls': the
    # fastest 1 UNIT at each batch; the others 2 and 6, 4 and 2
    fastest = slowed_at(PLAIN, 0, 0.0, "fastest", every_call=UNIT).run
    ctypes_like = Kernel("fastest, ungraphable", PLAIN.pack, fastest, F.linear, False)
    slow_above = slowed_at(PLAIN, 8, 4 * UNIT, "slow above", every_call=2 * UNIT)
    slow_at_one = slowed_at(PLAIN, 1, 2 * UNIT, "slow at one row", every_call=2 * UNIT)
    kernels = [slow_above, ctypes_like, slow_at_one]
    (choice,) = choose_kernels(weights, [1, 8], kernels).values()
    assert choice.chosen == ctypes_like.name, choice.describe()
    assert choice.kernel.run is fastest and choice.kernel.graph_run is slow_at_one.run
    split_run = slowed_at(PLAIN, 8, 4 * UNIT, "x", every_call=2 * UNIT).run
    split = Kernel("ungraphable, slow above", PLAIN.pack, split_run, F.linear, False)
    (choice,) = choose_kernels(weights, [1, 8], [split, slow_at_one]).values()
    assert choice.chosen == "ungraphable, slow above at B=1, slow at one row above"
    assert choice.kernel.graph_run is slow_at_one.run


@needs_cc
@pytest.mark.parametrize("threads", [1, 2])
def test_the_c_matmul_gives_f_linears_answer_on_any_shape(threads) -> None:
    """fused_ops.c's own_matmul: one row in four-row blocks, more in pairs of weight rows
    against eight rows at a time, each with tails; split over threads from 128 KB; more
    rows than the choice times run F.linear."""
    own = own_matmul_here(CPU, F32)
    assert own is not None and own in candidates(CPU, F32) and not own.graphable
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    for n, k in ((1, 1), (3, 15), (5, 16), (101, 67), (4099, 33), (2050, 512)):
        w, b = torch.randn(n, k, generator=gen), torch.randn(n, generator=gen)
        for rows in (1, 2, 7, 8, 9, 17, MAX_TIMED_BATCH, MAX_TIMED_BATCH + 1):
            x = torch.randn(rows, 1, k, generator=gen)
            for bias in (None, b):
                got = own.run(x, w, bias)
                assert got.shape == (rows, 1, n)
                torch.testing.assert_close(got, F.linear(x, w, bias), atol=1e-4, rtol=1e-5)


@needs_cc
@pytest.mark.parametrize("threads", [1, 2])
def test_the_bfloat16_c_matmul_rounds_the_float32_sums_on_any_shape(threads) -> None:
    """own_matmul_bf16: bfloat16 weights widened to float32, the sums in float32 and the
    result rounded once, to nearest even, as .to(torch.bfloat16) rounds: within a rounding of
    the float32 product of the same bfloat16 values (F.linear's answer is that too), split
    over threads from 32K weights; another dtype, or more rows than the choice times, runs
    F.linear."""
    bf16 = torch.bfloat16
    own = own_matmul_here(CPU, bf16)
    assert own is not None and own in candidates(CPU, bf16) and not own.graphable
    assert own is not own_matmul_here(CPU, F32) and own_matmul_here(CPU, torch.float16) is None
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    same, values = 0, 0
    for n, k in ((1, 1), (3, 15), (5, 16), (101, 67), (4099, 33), (2050, 512)):
        w, b = torch.randn(n, k, generator=gen).to(bf16), torch.randn(n, generator=gen).to(bf16)
        for rows in (1, 2, 7, 8, 9, 17, MAX_TIMED_BATCH, MAX_TIMED_BATCH + 1):
            x = torch.randn(rows, 1, k, generator=gen).to(bf16)
            for bias in (None, b):
                got = own.run(x, w, bias)
                assert got.shape == (rows, 1, n) and got.dtype == bf16
                exact = F.linear(x.float(), w.float(), None if bias is None else bias.float())
                # one rounding of a float32 sum: at most half a bfloat16 step, 2^-8 of it
                torch.testing.assert_close(got.float(), exact, atol=1e-4, rtol=2**-8)
                same += int((got == exact.to(bf16)).sum())
                values += got.numel()
    # rounded to nearest as .to() rounds, not cut (which would miss about half); the sums'
    # order differs from F.linear's, which moves a few across a rounding boundary
    assert same > 0.98 * values, (same, values)
    x, w = torch.randn(2, 64).to(bf16), torch.randn(8, 64)  # float32 weights: not its own
    torch.testing.assert_close(own.run(x.float(), w), F.linear(x.float(), w))


CAPPED_C_MATMUL = """
import torch, torch.nn.functional as F
from infertop.engine.backends.torch.fused_build import load_fused_ops
from infertop.engine.backends.torch.kernels import own_matmul_here
own, fused = own_matmul_here(torch.device("cpu"), torch.float32), load_fused_ops()
assert own is not None and not isinstance(fused, str), fused
gen = torch.Generator().manual_seed(0)
for n, k in ((3, 7), (101, 67), (2050, 512)):
    w, b = torch.randn(n, k, generator=gen), torch.randn(n, generator=gen)
    for rows in (1, 5, 8, 9):
        x = torch.randn(rows, 1, k, generator=gen)
        torch.testing.assert_close(own.run(x, w, b), F.linear(x, w, b), atol=1e-4, rtol=1e-5)
print(fused.library)
"""


@needs_cc
@pytest.mark.skipif(shutil.which("objdump") is None, reason="no objdump to read the library")
@pytest.mark.skipif(platform.machine() != "x86_64", reason="x86's instruction sets")
@pytest.mark.parametrize(
    ("capability", "wider", "widest", "left_out"),
    [("avx2", ("AVX512",), "%ymm", "%zmm"), ("default", ("AVX2", "AVX512"), "%xmm", "%ymm")],
)
def test_the_c_library_keeps_to_torchs_instruction_set(
    capability: str, wider: tuple[str, ...], widest: str, left_out: str, tmp_path: Path
) -> None:
    """ATEN_CPU_CAPABILITY caps torch's kernels and the C library's build alike; the C
    matmul's sums then take that width's registers (fused_ops.c's MM_LANES), and still give
    F.linear's answer. This CPU stands in for one without AVX-512 (or AVX)."""
    if torch.backends.cpu.get_cpu_capability() not in wider:
        pytest.skip(f"this CPU has nothing wider than {capability} to leave out")
    env = {**os.environ, "ATEN_CPU_CAPABILITY": capability, "INFERTOP_CACHE_DIR": str(tmp_path)}
    run = [sys.executable, "-c", CAPPED_C_MATMUL]
    done = subprocess.run(run, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    library = Path(done.stdout.split()[-1])
    assert library.parent.parent == tmp_path
    code = subprocess.run(["objdump", "-d", str(library)], capture_output=True, text=True).stdout
    assert widest in code and left_out not in code


def test_kernels_of_two_layouts_do_not_split_the_batches() -> None:
    """A weight is stored once: F.linear's plain weight cannot serve oneDNN packed's rows."""
    if ONEDNN not in candidates(CPU, F32):
        pytest.skip("oneDNN does not run here")
    weights = {"o": [torch.randn(96, 64, generator=torch.Generator().manual_seed(0))]}
    # a UNIT on every call: the slowdowns are the sleeps' (11x and 2x), not the matmuls'
    plain = slowed_at(PLAIN, 8, 10 * UNIT, "plain, fast at one row", every_call=UNIT)
    packed = slowed_at(ONEDNN, 1, UNIT, "packed, fast above", every_call=UNIT)
    (choice,) = choose_kernels(weights, [1, 8], [plain, packed]).values()
    assert choice.chosen == packed.name and choice.kernel is packed


def test_each_call_reads_the_next_layer_weight_as_the_step_does() -> None:
    """A kernel fast only on the weight it ran last (as a cache makes one) would win timed
    on one weight, and lose in the step; timed on the layers in turn, it loses there too."""
    gen = torch.Generator().manual_seed(0)
    layers = [torch.randn(96, 64, generator=gen) for _ in range(4)]
    last: list[torch.Tensor | None] = [None]

    def run(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        time.sleep(0.0 if w is last[0] else 0.003)
        last[0] = w
        return F.linear(x, w, b)

    from_the_cache = Kernel("fast on the weight it ran last", PLAIN.pack, run)
    steady = slowed(PLAIN, 0.001)
    (choice,) = choose_kernels({"o": layers}, [1, 8], [from_the_cache, steady]).values()
    assert choice.chosen == steady.name, choice.describe()
    samples = timing_samples(layers)  # all four: 96 KB, under MAX_TIMED_BYTES
    assert len(samples) == 4 and all(s is w for s, w in zip(samples, layers, strict=True))
    big = torch.zeros(MAX_TIMED_BYTES // (4 * 64) + 1, 64)
    assert [s.shape for s in timing_samples([big, big])] == [(MAX_TIMED_BYTES // 256, 64)]


def cold(kernel: Kernel, slow_calls: int, seconds: float) -> Kernel:
    """`kernel`, slow by a sleep on each of its first `slow_calls` calls only (a cold start)."""
    calls = 0

    def run(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        nonlocal calls
        calls += 1
        if calls <= slow_calls:
            time.sleep(seconds)
        return kernel.run(x, w, b)

    return Kernel(f"cold {kernel.name}", kernel.pack, run)


def test_a_kernel_slow_only_on_its_first_calls_still_wins_when_it_is_the_fastest() -> None:
    """On a 16-core Xeon the first kernel timed in the process read 5.0 ms for a 0.05 ms
    matvec and lost its choice. Here the fastest kernel sleeps 4 ms on each of its first 8
    calls (the 6 warm-up calls and the first timed round at batch 1); the steady one always
    takes 1 ms more than it does afterwards."""
    gen = torch.Generator().manual_seed(0)
    weights = {"down": [torch.randn(64, 128, generator=gen)]}
    fast_but_cold = cold(slowed(PLAIN, 0.0002), slow_calls=8, seconds=0.004)
    steady = slowed(PLAIN, 0.0012)
    (choice,) = choose_kernels(weights, [1, 8], [fast_but_cold, steady]).values()
    assert choice.chosen == fast_but_cold.name, choice.describe()
    assert choice.fastest(1) == choice.fastest(8) == fast_but_cold.name


def test_the_model_runs_the_chosen_kernels_and_records_them() -> None:
    model = TorchLlama.dummy(PRESETS["tiny"], F32, CPU)
    plain = {p: ws[0].clone() for p, ws in model.projection_layers().items()}
    model.choose_kernels((1, 8))
    assert set(model.kernel_choices) == {"qkv", "o", "gate_up", "down", "lm_head"}
    for name, choice in model.kernel_choices.items():
        assert choice.shape == tuple(plain[name].shape)
        assert set(choice.seconds) == ({1, 8} if len(candidates(CPU, F32)) > 1 else set())
    # each projection runs the kernel recorded for it, on its weight in that kernel's form
    lin = {"qkv": model.linears.qkv, "lm_head": model.linears.lm_head}
    x = torch.randn(2, PRESETS["tiny"].hidden_size)
    stored = {p: ws[0] for p, ws in model.projection_layers().items()}
    for name in lin:
        kernel = model.kernel_choices[name].kernel
        assert lin[name] is kernel.run
        want = F.linear(x, plain[name])
        torch.testing.assert_close(lin[name](x, stored[name]), want, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("dtype", "supported"),
    [
        (torch.bfloat16, torch.ops.mkldnn._is_mkldnn_bf16_supported),
        (torch.float16, torch.ops.mkldnn._is_mkldnn_fp16_supported),
    ],
)
def test_a_half_precision_model_times_onednn_where_the_cpu_runs_it(dtype, supported) -> None:
    """bfloat16 and float16 get oneDNN packed as a candidate where oneDNN runs that type
    natively (AVX512-BF16 or AMX; AVX512-FP16), bfloat16 the C matmul where the library
    builds; a type with F.linear alone is not timed."""
    model = TorchLlama.dummy(PRESETS["tiny"], dtype, CPU)
    model.choose_kernels((1, 8))
    timed = {k for c in model.kernel_choices.values() for t in c.seconds.values() for k in t}
    onednn = {ONEDNN.name, ONEDNN_PLAIN.name} if supported() else set()
    own = own_matmul_here(CPU, dtype)  # the C matmul: float32's and bfloat16's
    assert (own is not None) == (dtype == torch.bfloat16 and fused_build.compiler() is not None)
    ours = {PLAIN.name, *onednn, *([] if own is None else [own.name])}
    assert timed == (ours if len(ours) > 1 else set())
    x = torch.randn(2, PRESETS["tiny"].hidden_size).to(dtype)
    out = model.linears.gate_up(x, model.layers[0].w13)
    assert out.dtype == dtype and out.shape == (2, 2 * PRESETS["tiny"].intermediate_size)


def test_bench_prints_the_choices_and_a_forced_kernel_is_one_line() -> None:
    p = infertop("bench", "--model", "tiny", "--input-len", "8", "--output-len", "2")
    assert p.returncode == 0, p.stderr
    assert "Kernels, timed on the weights at load: " in p.stdout
    if fused_build.compiler() is not None:  # and how the ops between them run
        assert "\nDecode ops between the matmuls: fused in C (fused-ops-" in p.stdout, p.stdout
    lines = [line.strip() for line in p.stdout.splitlines()]
    timed = "B=1 " if len(candidates(CPU, F32)) > 1 else ""
    chosen = {}
    for proj in ("qkv", "o", "gate_up", "down", "lm_head"):
        (line,) = [line for line in lines if line.startswith(f"{proj} ") and timed in line]
        chosen[proj] = line.split(": ", 1)[1].split("  ")[0]
    # the batch-1 step, timed with each matvec where its layers can run either in one C call:
    # on their plain weights (oneDNN at batch 1 too), none packed
    packed = any(ONEDNN.name in chosen[p] for p in ("qkv", "o", "gate_up", "down"))
    step_timed = own_matmul_here(CPU, F32) is not None and not packed
    step_line = "batch 1, timed on the step: the layers' matvecs on "
    assert any(line.startswith(step_line) for line in lines) == step_timed, p.stdout
    engine = TorchEngine.load("tiny", device="cpu", kernel=PLAIN.name)
    assert engine.kernel == "F.linear" and engine.kernel_choices == ()


def test_the_header_names_the_most_used_kernel_first_and_a_pair_short() -> None:
    """An 80-column header cuts the mix after its first name: that one is the most used."""
    pair = "F.linear at B=1, oneDNN above"
    names = ["F.linear", pair, pair, "oneDNN packed", pair]
    assert summary_of(names) == "F.linear/oneDNN (3/5) + F.linear (1/5) + oneDNN packed (1/5)"
    assert summary_of([pair] * 5) == "F.linear/oneDNN"


def test_timing_holds_one_projections_packed_samples_at_a_time() -> None:
    """Three projections of 64 MB of samples each, timed with oneDNN packed (a copy per
    sample) in a fresh process: the peak rises by about one projection's copies. The loop
    kept the last batch's copies alive into the next projection and libc kept their pages:
    a load peaked 125 MB over the memory estimate (smollm2-135m, 0.83 in CI)."""
    if not onednn_usable(torch.device("cpu"), torch.float32):
        pytest.skip("this torch has no oneDNN")
    child = """
import psutil, torch
from infertop.engine.backends.torch.kernels import MAX_TIMED_BYTES, ONEDNN, PLAIN, choose_kernels
from infertop.engine.memory import peak_rss
gen = torch.Generator().manual_seed(0)
rows = MAX_TIMED_BYTES // (8 * 1024 * 4)
weights = {p: [torch.randn(rows, 1024, generator=gen) for _ in range(8)] for p in "abc"}
base = max(psutil.Process().memory_info().rss, peak_rss())
choose_kernels(weights, (1, 8), [PLAIN, ONEDNN], reps=1)
print((peak_rss() - base) / MAX_TIMED_BYTES)
"""
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    # one projection's copies read 1.14-1.17 here; the old loop read 2.15
    assert float(done.stdout) < 1.5, done.stdout
