"""The decode step with its ops between the matmuls in C (fused_ops.c): the same logits and
cache as the ATen step, built once per CPU into the cache, visible in a profiler trace, and
the ATen step with a one-line reason wherever the library cannot be had."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from infertop.engine.backends.torch import blas_sgemv, fused_build, fused_decode, one_row_matvec
from infertop.engine.backends.torch.engine import TorchEngine
from infertop.engine.backends.torch.fused_build import load_fused_ops
from infertop.engine.backends.torch.fused_decode import LAYER_PROJECTIONS
from infertop.engine.backends.torch.kernels import (
    OWN_NAME,
    PLAIN,
    PROJECTIONS,
    Kernel,
    kernel_named,
    onednn_usable,
    ran_at,
)
from infertop.engine.backends.torch.one_row_matvec import KEPT, choose_matvec
from tests.helpers import infertop_bench

needs_cc = pytest.mark.skipif(fused_build.compiler() is None, reason="no C compiler here")
CPU = torch.device("cpu")


def fused_and_aten(engine: TorchEngine, prompts: torch.Tensor, steps: int):
    """Decode logits and caches of the fused step and of the ATen step from one prefill."""
    model, (b, n) = engine.model, prompts.shape
    engine.prepare(b, n + steps)
    fused = model.fused
    assert fused is not None, model.ops
    engine.logits(prompts, 0)
    prefilled = [c.clone() for c in model.k_cache + model.v_cache]
    out = {}
    for name, step in (("fused", fused), ("aten", None)):
        for cache, saved in zip(model.k_cache + model.v_cache, prefilled, strict=True):
            cache.copy_(saved)
        model.fused = step
        tokens = prompts[:, -1:]
        logits = []
        for s in range(steps):
            logits.append(engine.logits(tokens, n + s)[:, -1])
            tokens = logits[-1].argmax(-1, keepdim=True)
        out[name] = logits, [c.clone() for c in model.k_cache + model.v_cache]
    model.fused = fused
    return out["fused"], out["aten"]


def assert_fused_is_aten(engine: TorchEngine, seed: int) -> None:
    """At batch 1 and 3, six steps: the fused step's logits and cache are the ATen step's."""
    for batch in (1, 3):
        prompts = torch.randint(0, 256, (batch, 20), generator=torch.Generator().manual_seed(seed))
        (fused, fused_cache), (aten, aten_cache) = fused_and_aten(engine, prompts, steps=6)
        for got, want in zip(fused + fused_cache, aten + aten_cache, strict=True):
            torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


@needs_cc
@pytest.mark.parametrize("kind", ["llama", "qwen2", "qwen3"])  # GQA; q/k/v bias; head norms
@pytest.mark.parametrize("batch", [1, 3])
def test_the_fused_step_gives_the_aten_step_logits_and_cache(hf_models, kind, batch) -> None:
    _, directory = hf_models[kind]
    engine = TorchEngine.load(str(directory), device="cpu", dtype="float32", threads=1)
    assert engine.decode_ops.startswith("fused in C")
    prompts = torch.randint(0, 256, (batch, 20), generator=torch.Generator().manual_seed(batch))
    (fused, fused_cache), (aten, aten_cache) = fused_and_aten(engine, prompts, steps=12)
    for step, (got, want) in enumerate(zip(fused, aten, strict=True)):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0, msg=f"decode step {step}")
    for got, want in zip(fused_cache, aten_cache, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


@needs_cc
@pytest.mark.parametrize("kernel", ["F.linear", "oneDNN packed"])  # at batch 1: one C call, or not
def test_the_attention_splits_its_heads_over_two_threads_with_the_same_answer(
    hf_models, kernel, monkeypatch
) -> None:
    """The attention's heads run on torch's OpenMP threads (each with its own scores row),
    here from the first position on."""
    monkeypatch.setattr(fused_decode, "PARALLEL_ATTENTION_BYTES", 0)
    _, directory = hf_models["qwen3"]
    engine = TorchEngine.load(str(directory), kernel=kernel, threads=2)
    assert_fused_is_aten(engine, seed=3)


@needs_cc
@pytest.mark.parametrize(
    ("kind", "kernel"),
    [("llama", "F.linear"), ("qwen2", "F.linear"), ("qwen3", "F.linear"), ("qwen2", "C matmul")],
)
def test_batch_1_runs_its_layers_in_one_c_call_with_the_aten_step_logits(
    hf_models, kind, kernel
) -> None:
    """With F.linear at batch 1, the layers run in decode_one_row, which calls torch's sgemv
    itself; with the C matmul, the library's own_sgemv (qwen2: with the q/k/v bias). The
    lm_head keeps its kernel. The same logits and cache as the ATen step."""
    _, directory = hf_models[kind]
    engine = TorchEngine.load(str(directory), kernel=kernel, threads=1)
    assert engine.decode_ops.endswith("; at batch 1 its layers in one C call"), engine.decode_ops
    prompts = torch.randint(0, 256, (1, 20), generator=torch.Generator().manual_seed(7))
    (fused, fused_cache), (aten, aten_cache) = fused_and_aten(engine, prompts, steps=12)
    assert engine.model.fused is not None and engine.model.fused.plan is not None
    assert engine.model.fused.plan.one_row is not None  # the steps above ran in one call
    for step, (got, want) in enumerate(zip(fused, aten, strict=True)):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0, msg=f"decode step {step}")
    for got, want in zip(fused_cache, aten_cache, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


SERIAL_CLANG = "clang builds them without OpenMP: set CC=gcc to run them on torch's threads"
needs_clang = pytest.mark.skipif(shutil.which("clang") is None, reason="no clang here")
on_libgomp = pytest.mark.skipif(
    not fused_build.torch_runs_on_libgomp(), reason="torch runs on another OpenMP runtime here"
)


@needs_clang
@on_libgomp
def test_a_clang_build_gives_the_aten_logits_and_says_it_runs_on_one_thread(
    hf_models, tmp_path, monkeypatch
) -> None:
    """clang cannot build the library for torch's GNU OpenMP (its -fopenmp links LLVM's
    libomp; -fopenmp=libgomp emits no parallel code): its C ops then run on one thread
    (bench/compilers.py). The ops line says so and names the fix; the answers are the ATen
    step's all the same."""
    monkeypatch.setenv("CC", str(shutil.which("clang")))
    monkeypatch.setenv("INFERTOP_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(fused_decode, "PARALLEL_ATTENTION_BYTES", 0)
    _, directory = hf_models["qwen2"]
    engine = TorchEngine.load(str(directory), kernel=OWN_NAME, threads=2)
    (library,) = (tmp_path / "fused-ops").iterdir()
    assert engine.decode_ops == (
        f"fused in C ({library.name}); at batch 1 its layers in one C call; on one thread "
        "(clang builds them without OpenMP: set CC=gcc to run them on torch's threads)"
    )
    assert engine.warnings == (f"the decode step's C ops run on one thread; {SERIAL_CLANG}",)
    assert_fused_is_aten(engine, seed=5)


@needs_clang
@on_libgomp
def test_bench_warns_that_the_c_ops_run_on_one_thread(tmp_path) -> None:
    """`infertop bench` in a CI job: the warning goes to stderr, with the fix."""
    env = {**os.environ, "CC": str(shutil.which("clang")), "INFERTOP_CACHE_DIR": str(tmp_path)}
    done = infertop_bench("--model", "tiny", "--input-len", "8", "--output-len", "2", env=env)
    assert done.returncode == 0, done.stderr
    line = f"warning: the decode step's C ops run on one thread; {SERIAL_CLANG}\n"
    assert line in done.stderr, done.stderr


@needs_clang
@on_libgomp
@pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc here")
def test_a_gcc_is_found_before_a_clang_named_cc(tmp_path, monkeypatch) -> None:
    """With CC unset, a `cc` that is clang gives way to a gcc: only a GCC builds the library
    for torch's threads. $CC, where set, is taken as it is."""
    for name, target in (("cc", "clang"), ("gcc", "gcc")):
        (tmp_path / name).symlink_to(str(shutil.which(target)))
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert fused_build.compiler() == str(tmp_path / "gcc")
    monkeypatch.setenv("CC", str(tmp_path / "cc"))
    assert fused_build.compiler() == str(tmp_path / "cc")


@needs_cc
@pytest.mark.parametrize("slow", [PLAIN.name, OWN_NAME])
def test_the_batch_1_step_keeps_the_matvec_it_runs_faster_on(hf_models, slow) -> None:
    """one_row_matvec.py times the batch-1 step with each matvec in every layer projection.
    Made slower (a sleep) while its layers run `slow`, the step keeps the other: in one C
    call that calls it, each kernel above batch 1 as it was, with the ATen step's logits
    (qwen2: with the q/k/v bias). The sleep falls outside the lm_head's call, so it does
    not move the lm_head's choice."""
    _, directory = hf_models["qwen2"]
    engine = TorchEngine.load(str(directory), kernel=PLAIN.name, threads=1)
    model, step = engine.model, engine.timing_step(1, compiled=False)

    def slowed() -> object:
        if ran_at(model.kernel_names["qkv"], 1) == slow:
            time.sleep(0.010)  # a whole 10 ms: beside the other test worker, sleeps wake late
        return step()

    choice = choose_matvec(model, slowed)
    fast = OWN_NAME if slow == PLAIN.name else PLAIN.name
    assert choice is not None and choice.chosen == fast, choice
    assert choice.seconds[slow] > choice.seconds[fast] and set(choice.seconds) == {slow, fast}
    assert choice.describe().startswith(
        f"batch 1, timed on the step: the layers' matvecs on {fast}"
    )
    assert {ran_at(model.kernel_names[p], 1) for p in LAYER_PROJECTIONS} == {fast}
    assert {ran_at(model.kernel_names[p], 8) for p in PROJECTIONS} == {PLAIN.name}
    head = model.kernel_names["lm_head"]
    assert ran_at(head, 1) == choice.head_chosen and ran_at(head, 8) == PLAIN.name
    assert set(choice.head_seconds) == {PLAIN.name, OWN_NAME}
    assert max(choice.head_seconds.values()) < 0.010, choice  # the sleep is not the head's
    model.free_cache()
    prompts = torch.randint(0, 256, (1, 20), generator=torch.Generator().manual_seed(5))
    (fused, _), (aten, _) = fused_and_aten(engine, prompts, steps=6)
    assert model.fused is not None and model.fused.plan is not None
    one_row = model.fused.plan.one_row
    assert one_row is not None
    own, blas = model.fused.own_sgemv, model.fused.sgemv
    assert one_row.step.qkv_mv == one_row.step.down_mv == (own if fast == OWN_NAME else blas)
    for got, want in zip(fused, aten, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


@needs_cc
@pytest.mark.parametrize("slow", [PLAIN.name, OWN_NAME])
def test_the_batch_1_step_keeps_the_lm_heads_matvec_it_runs_faster_on(
    hf_models, slow, monkeypatch
) -> None:
    """The lm_head's matvec is timed within the step: made slower (a longer sleep in its
    call) when the lm_head runs `slow`, the step keeps the other for it, names both times,
    and the layers' choice is made on the step less the lm_head, so no sleep reaches it.
    The logits stay the ATen step's."""
    _, directory = hf_models["qwen2"]
    engine = TorchEngine.load(str(directory), kernel=PLAIN.name, threads=1)
    model = engine.model
    vocab = model.cfg.vocab_size
    real = one_row_matvec.candidates

    def slowed(k: Kernel) -> Kernel:
        # every lm_head call sleeps, `slow`'s longer: only the step less its lm_head keeps
        # the sleeps out of the layers' times; 10 ms apart, more than a sleep wakes late on
        # CI's 2-core guest beside the other test worker (up to 2 ms at best of 3)
        pause = 0.020 if k.name == slow else 0.010

        def run(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None):
            if w.shape[0] == vocab:  # the lm_head, called from Python
                time.sleep(pause)
            return k.run(x, w, b)

        return replace(k, run=run)

    # the kernel the model runs and the ones the choice swaps in
    model.run_kernels({p: slowed(k) for p, k in model.kernels.items()})
    monkeypatch.setattr(one_row_matvec, "candidates", lambda *a: list(map(slowed, real(*a))))
    choice = choose_matvec(model, engine.timing_step(1, compiled=False))
    fast = OWN_NAME if slow == PLAIN.name else PLAIN.name
    assert choice is not None and choice.head_chosen == fast, choice
    assert choice.head_seconds[slow] > 0.020 > choice.head_seconds[fast] > 0.010, choice
    assert max(choice.seconds.values()) < 0.010, choice  # the layers' part has no sleep
    assert f"; the lm_head's on {fast}  B=1 " in choice.describe(), choice.describe()
    assert ran_at(model.kernel_names["lm_head"], 1) == fast
    model.free_cache()  # the logits: the slowed kernel only sleeps
    prompts = torch.randint(0, 256, (1, 20), generator=torch.Generator().manual_seed(6))
    (fused, _), (aten, _) = fused_and_aten(engine, prompts, steps=6)
    for got, want in zip(fused, aten, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


@needs_cc
@pytest.mark.skipif(not onednn_usable(CPU, torch.float32), reason="this torch has no oneDNN")
@pytest.mark.parametrize("slow", ["oneDNN", "the matvecs"])
def test_a_batch_1_step_on_onednn_is_timed_against_the_matvecs_in_one_c_call(
    hf_models, slow
) -> None:
    """Where a projection's choice runs oneDNN on the plain weight at batch 1 (an AMD EPYC's
    choice), the layers go op by op; the step is also timed with each matvec in one C call
    and keeps the fastest. Made slower (a sleep) on `slow`, it keeps the other: the matvec
    in one C call, or oneDNN op by op with every kernel as chosen. The logits stay the ATen
    step's."""
    _, directory = hf_models["qwen2"]
    chosen = "oneDNN at B=1, C matmul above"
    engine = TorchEngine.load(str(directory), kernel=chosen, threads=1)
    model, step = engine.model, engine.timing_step(1, compiled=False)
    assert model.fused is not None and model.fused.one_row_reason is not None

    def slowed() -> object:
        on_onednn = ran_at(model.kernel_names["qkv"], 1) == "oneDNN"
        if on_onednn == (slow == "oneDNN"):
            time.sleep(0.010)
        return step()

    choice = choose_matvec(model, slowed)
    assert choice is not None, model.ops
    assert set(choice.seconds) == set(choice.head_seconds) == {KEPT, PLAIN.name, OWN_NAME}
    layers_at_1 = {ran_at(model.kernel_names[p], 1) for p in LAYER_PROJECTIONS}
    if slow == "oneDNN":
        assert choice.chosen in (PLAIN.name, OWN_NAME), choice
        assert choice.seconds[KEPT] > max(choice.seconds[m] for m in (PLAIN.name, OWN_NAME))
        assert layers_at_1 == {choice.chosen} and model.fused.one_row_reason is None
    else:
        assert choice.chosen == KEPT, choice
        assert choice.seconds[KEPT] < min(choice.seconds[m] for m in (PLAIN.name, OWN_NAME))
        assert layers_at_1 == {"oneDNN"} and model.fused.one_row_reason is not None
        assert f"the layers' matvecs on {KEPT}  B=1 " in choice.describe(), choice.describe()
    assert {ran_at(model.kernel_names[p], 8) for p in PROJECTIONS} == {OWN_NAME}
    model.free_cache()
    prompts = torch.randint(0, 256, (1, 20), generator=torch.Generator().manual_seed(7))
    (fused, _), (aten, _) = fused_and_aten(engine, prompts, steps=6)
    assert model.fused.plan is not None
    assert (model.fused.plan.one_row is None) == (choice.chosen == KEPT)
    for got, want in zip(fused, aten, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


@needs_cc
def test_batch_1_goes_op_by_op_where_a_layer_runs_another_kernel_and_says_why() -> None:
    engine = TorchEngine.load("tiny", kernel="oneDNN packed", threads=1)
    reason = "qkv, o, gate_up, down run oneDNN packed at batch 1"
    assert engine.decode_ops.endswith(f"; at batch 1 op by op ({reason})"), engine.decode_ops
    engine.prepare(1, 16)
    token = engine.prefill(torch.tensor([[1, 2, 3]])).view(1, 1)
    engine.decode(token, 3)
    assert engine.model.fused is not None and engine.model.fused.plan is not None
    assert engine.model.fused.plan.one_row is None


@needs_cc
def test_without_an_sgemv_in_torch_batch_1_goes_op_by_op_and_says_why(monkeypatch) -> None:
    """A torch whose library exports no sgemv_ (another BLAS): named, and the same tokens."""
    want = decodes(TorchEngine.load("tiny", kernel="F.linear", threads=1), batch=1)
    c10 = blas_sgemv.torch_cpu_library().with_name(
        blas_sgemv.torch_cpu_library().name.replace("torch_cpu", "c10")
    )
    monkeypatch.setattr(blas_sgemv, "torch_cpu_library", lambda: c10)
    monkeypatch.setattr(blas_sgemv, "PROBED", {})
    engine = TorchEngine.load("tiny", kernel="F.linear", threads=1)
    assert engine.decode_ops.endswith(f"; at batch 1 op by op (no sgemv_ in {c10.name})")
    assert engine.model.fused is not None and engine.model.fused.sgemv == f"no sgemv_ in {c10.name}"
    assert torch.equal(decodes(engine, batch=1), want)


@needs_cc
def test_the_c_matmul_keeps_batch_1_in_one_c_call_without_torchs_sgemv(monkeypatch) -> None:
    """Layers on the C matmul need no sgemv_ from torch: batch 1 still runs in one C call,
    with the tokens of F.linear's step. A mix of the two kernels needs it, and says so."""
    want = decodes(TorchEngine.load("tiny", kernel="F.linear", threads=1), batch=1)
    monkeypatch.setattr(blas_sgemv, "torch_cpu_library", lambda: Path("/nowhere.so"))
    monkeypatch.setattr(blas_sgemv, "PROBED", {})
    engine = TorchEngine.load("tiny", kernel="C matmul", threads=1)
    assert engine.decode_ops.endswith("; at batch 1 its layers in one C call"), engine.decode_ops
    assert torch.equal(decodes(engine, batch=1), want)
    assert engine.model.fused is not None and engine.model.fused.plan is not None
    assert engine.model.fused.plan.one_row is not None
    cpu, f32 = torch.device("cpu"), torch.float32
    mixed = {p: "F.linear" if p in ("o", "down") else "C matmul" for p in PROJECTIONS}
    engine.model.use_kernels({p: kernel_named(k, cpu, f32) for p, k in mixed.items()})
    assert engine.decode_ops.endswith("; at batch 1 op by op (no sgemv_ in nowhere.so)")


@needs_cc
def test_a_token_outside_the_vocabulary_is_refused_before_c_reads_it() -> None:
    engine = TorchEngine.load("tiny", kernel="F.linear", threads=1)
    engine.prepare(1, 16)
    engine.prefill(torch.tensor([[1, 2, 3]]))
    vocab = engine.config.vocab_size
    with pytest.raises(IndexError, match=f"token {vocab} is outside the vocabulary of {vocab}"):
        engine.decode(torch.tensor([[vocab]]), 3)


@needs_cc
def test_the_comparison_catches_a_step_that_writes_the_wrong_position(hf_models) -> None:
    """The test above can fail: a fused step one position off gives other logits."""
    _, directory = hf_models["llama"]
    engine = TorchEngine.load(str(directory), device="cpu", dtype="float32", threads=1)
    fused = engine.model.fused
    assert fused is not None
    engine.model.fused = lambda tokens, pos: fused(tokens, pos + 1)
    prompts = torch.randint(0, 256, (1, 20), generator=torch.Generator().manual_seed(0))
    engine.prepare(1, 40)
    engine.logits(prompts, 0)
    off = engine.logits(prompts[:, -1:], 20)
    engine.model.fused = fused
    engine.logits(prompts, 0)
    assert (off - engine.logits(prompts[:, -1:], 20)).abs().max() > 1e-3


@needs_cc
def test_the_library_is_built_once_into_the_cache(tmp_path, monkeypatch) -> None:
    """A fresh cache builds it (the load says so); the next load finds it and says nothing."""
    monkeypatch.setenv("INFERTOP_CACHE_DIR", str(tmp_path))
    stages: list[str] = []
    engine = TorchEngine.load("tiny", threads=1, stage=stages.append)
    assert any("fused C ops" in s for s in stages), stages
    built = list((tmp_path / "fused-ops").iterdir())
    assert len(built) == 1 and engine.decode_ops.startswith(f"fused in C ({built[0].name}); ")
    if fused_build.torch_runs_on_libgomp():  # GCC's build: its C ops on torch's threads
        assert engine.model.fused is not None and engine.model.fused.serial is None
        assert "on one thread" not in engine.decode_ops
    stages.clear()
    TorchEngine.load("tiny", threads=1, stage=stages.append)
    assert not any("fused C ops" in s for s in stages), stages
    assert list((tmp_path / "fused-ops").iterdir()) == built


def test_each_mac_cpu_gets_its_own_library(tmp_path, monkeypatch) -> None:
    """Without /proc/cpuinfo (macOS), sysctl's brand string and feature flags key the build:
    a cache copied from an M3 to an M1 must not hand the M1 a library built with -mcpu=native
    for instructions it lacks. The sysctl here is a script printing what macOS's
    `sysctl machdep.cpu.brand_string hw.optional` prints."""
    monkeypatch.setattr(fused_build, "CPUINFO", tmp_path / "no-cpuinfo")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    sysctl = bin_dir / "sysctl"
    paths = {}
    for chip, bf16 in (("Apple M3 Pro", 1), ("Apple M1", 0)):
        sysctl.write_text(
            "#!/bin/sh\n"
            f"echo 'machdep.cpu.brand_string: {chip}'\n"
            f"echo 'hw.optional.arm.FEAT_BF16: {bf16}'\n"
        )
        sysctl.chmod(0o755)
        fused_build.cpu_description.cache_clear()
        assert chip in fused_build.cpu_identity()
        paths[chip] = fused_build.library_path("cc")
    fused_build.cpu_description.cache_clear()
    assert paths["Apple M3 Pro"] != paths["Apple M1"]


def decodes(engine: TorchEngine, batch: int = 2) -> torch.Tensor:
    engine.prepare(batch, 16)
    prompts = torch.randint(0, 512, (batch, 8), generator=torch.Generator().manual_seed(0))
    token = engine.prefill(prompts).view(batch, 1)
    return torch.cat([engine.decode(token, 8), engine.decode(token, 9)], dim=-1)


@needs_cc
@pytest.mark.parametrize(
    "why",
    ["no compiler", "a compiler that fails", "an unwritable cache", "turned off", "bfloat16"],
)
def test_without_the_library_the_step_keeps_its_aten_ops(why, tmp_path, monkeypatch) -> None:
    """Each way of not having the library: a one-line reason that names the fix, and the
    same tokens as the fused step."""
    monkeypatch.setenv("INFERTOP_CACHE_DIR", str(tmp_path / "cache"))
    want = decodes(TorchEngine.load("tiny", threads=1))
    dtype, expected = "float32", ""
    if why == "no compiler":
        monkeypatch.delenv("CC", raising=False)
        monkeypatch.setenv("PATH", str(tmp_path))
        expected = "ATen (no C compiler (cc, gcc or clang) found: install one to fuse them)"
    elif why == "a compiler that fails":
        fake = tmp_path / "cc"
        fake.write_text("#!/bin/sh\necho 'cc: error: this compiler is broken' >&2\nexit 1\n")
        fake.chmod(0o755)
        monkeypatch.setenv("CC", str(fake))
        expected = "this compiler is broken); set CC to a C compiler)"
    elif why == "an unwritable cache":
        (tmp_path / "a-file").write_text("")
        monkeypatch.setenv("INFERTOP_CACHE_DIR", str(tmp_path / "a-file"))
        expected = "; set INFERTOP_CACHE_DIR)"
    elif why == "turned off":
        monkeypatch.setenv("INFERTOP_FUSED_OPS", "0")
        expected = "ATen (turned off by INFERTOP_FUSED_OPS=0)"
    else:
        dtype, expected = "bfloat16", "ATen (the C ops are float32 on a CPU only)"
    engine = TorchEngine.load("tiny", threads=1, dtype=dtype)
    assert engine.model.fused is None
    assert engine.decode_ops.startswith("ATen (") and engine.decode_ops.endswith(expected)
    assert "\n" not in engine.decode_ops
    if dtype == "float32":
        assert torch.equal(decodes(engine), want)


@needs_cc
def test_a_damaged_library_in_the_cache_is_named(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("INFERTOP_CACHE_DIR", str(tmp_path))
    cc = fused_build.compiler()
    assert cc is not None
    path = fused_build.library_path(cc)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a library")
    reason = load_fused_ops()
    assert isinstance(reason, str) and reason.endswith("delete it to rebuild)"[:-1]), reason


@needs_cc
@pytest.mark.parametrize("kernel", ["F.linear", "C matmul"])
def test_a_capture_shows_the_fused_ops(kernel) -> None:
    """The real torch profiler around fused decode steps: each C call is a named range, at
    batch 1 too, where outside a capture the layers run in one C call; so is each C matmul."""
    engine = TorchEngine.load("tiny", kernel=kernel, threads=1)
    assert engine.decode_ops.endswith("at batch 1 its layers in one C call")
    engine.prepare(1, 16)
    token = engine.prefill(torch.tensor([[1, 2, 3]])).view(1, 1)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        engine.decode(token, 3)
    names = {e.key: e.count for e in prof.key_averages()}
    layers = engine.config.num_hidden_layers
    assert names.get("infertop::decode_attention") == layers, names
    assert names.get("infertop::add_rms_norm") == 2 * layers
    assert names.get("infertop::rms_norm") == 1 and names.get("infertop::silu_mul") == layers
    matmuls = 4 * layers + 1 if kernel == "C matmul" else None  # and the lm_head
    assert names.get("infertop::matmul") == matmuls


def test_bench_says_how_the_ops_run_and_why() -> None:
    done = infertop_bench(
        "--model", "tiny", "--input-len", "8", "--output-len", "2",
        env={**os.environ, "INFERTOP_FUSED_OPS": "0"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    line = "Decode ops between the matmuls: ATen (turned off by INFERTOP_FUSED_OPS=0)\n"
    assert line in done.stdout, done.stdout


@needs_cc
def test_a_batch_larger_than_the_cache_is_refused_not_written_past_it() -> None:
    engine = TorchEngine.load("tiny", threads=1)
    engine.prepare(2, 16)
    engine.prefill(torch.ones(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="a decode step of batch 3 on a cache for 2"):
        engine.decode(torch.ones(3, 1, dtype=torch.long), 4)
