"""The AOTInductor-compiled decode step (--compile) against transformers and the eager path.

Each compile takes ~18 s on a 2-core Intel Xeon (model 207) with nothing else running, so
one compiled engine per model kind serves every case.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from infertop.engine.backends.torch import compiled_decode
from infertop.engine.backends.torch.compiled_decode import CompiledDecode, package_path
from infertop.engine.backends.torch.engine import TorchEngine
from infertop.engine.backends.torch.threads import ThreadChoice
from infertop.engine.channel import EventQueue
from infertop.engine.config import RunConfig
from infertop.engine.errors import UserError
from infertop.engine.events import Event, LoadProgress
from infertop.engine.loader import load_engine
from infertop.engine.session import Session
from infertop.tui.app import InfertopApp
from infertop.tui.panels import DecodePanel, HeaderBar
from tests.parity.test_parity_torch import BY_ROWS, STEPS, hf_greedy

KINDS = ["llama", "qwen2", "qwen3"]
needs_compiler = pytest.mark.skipif(
    not any(shutil.which(c) for c in ("g++", "clang++", os.environ.get("CXX", "g++"))),
    reason="AOTInductor needs a C++ compiler",
)  # llama3 rope scaling, q/k/v bias, q/k norms; GQA in all


@pytest.fixture(scope="module")
def compiled(hf_models) -> dict[str, TorchEngine]:
    engines = {}
    for kind in KINDS:
        # the packed oneDNN kernel goes through the compiler too, and oneDNN on the plain
        # weight (what a compiled step runs for BY_ROWS); qwen3 runs the mix of kernels the
        # load-time timing picks
        kernel = {"llama": "oneDNN packed", "qwen2": BY_ROWS}.get(kind)
        engine = TorchEngine.load(
            str(hf_models[kind][1]), device="cpu", dtype="float32", kernel=kernel
        )
        EAGER_THREADS[kind] = engine.threads_timed
        engine.compile_decode()
        engines[kind] = engine
    return engines


EAGER_THREADS: dict[str, ThreadChoice | None] = {}  # each engine's thread timing before compiling


@needs_compiler
def test_the_compiled_step_is_timed_again_for_its_thread_count(compiled) -> None:
    """It fuses the small ops, so the count that runs it fastest may differ from eager's."""
    for kind, engine in compiled.items():
        eager, now = EAGER_THREADS[kind], engine.threads_timed
        if eager is None:  # one CPU thread here: nothing was timed
            assert now is None
            continue
        assert now is not None and now is not eager and now.seconds != eager.seconds
        assert set(now.seconds) == set(eager.seconds) and engine.decode_threads == now.chosen


@needs_compiler
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("batch", [1, 4])
def test_compiled_steps_match_transformers(hf_models, compiled, kind: str, batch: int) -> None:
    """Prefill eager, then 16 compiled steps: every step reads the keys and values the
    compiled steps before it wrote, so a cache write that did not land shows here."""
    hf = hf_models[kind][0]
    engine = compiled[kind]
    assert engine.compiled is not None and engine.backend == "torch, compiled"
    prompts = torch.randint(0, 256, (batch, 24), generator=torch.Generator().manual_seed(batch))
    _, ref_logits, ref_tokens = hf_greedy(hf, prompts, STEPS)
    n = prompts.shape[1]
    engine.prepare(batch, n + STEPS + 1)
    token = engine.logits(prompts, 0)[:, -1:].argmax(-1)
    tokens = [token]
    for s in range(STEPS):
        nxt, logits = engine.compiled(token, n + s)
        torch.testing.assert_close(logits[:, -1], ref_logits[s], atol=1e-4, rtol=0)
        assert torch.equal(nxt, engine.decode(token, n + s))  # what the runner calls
        token = nxt
        tokens.append(token)
    assert torch.equal(torch.cat(tokens, dim=1), ref_tokens)


def slowed_at(step, rows: int, seconds: float):
    """`step`, slower by a sleep on a batch of `rows` rows."""

    def call(tokens, *args, **kw):
        time.sleep(seconds if tokens.shape[0] == rows else 0.0)
        return step(tokens, *args, **kw)

    return call


@needs_compiler
def test_each_batch_runs_the_faster_of_the_compiled_and_the_eager_step(compiled) -> None:
    """Timed at load, in turns, at batch 1 and at the largest batch: whichever is made 20 ms
    slower at a batch loses it, and decode runs the other there (batch 1 for one row, the
    largest for more)."""
    engine = compiled["qwen3"]
    real_compiled, real_forward = engine.compiled, engine.model.forward
    calls: list[str] = []

    def counted(name: str, step):
        def call(*args, **kw):
            calls.append(name)
            return step(*args, **kw)

        return call

    try:
        for slow_compiled_at, kept in ((1, ["eager", "compiled"]), (4, ["compiled", "eager"])):
            slow_eager_at = 5 - slow_compiled_at
            engine.compiled = slowed_at(counted("compiled", real_compiled), slow_compiled_at, 0.02)
            engine.model.forward = slowed_at(  # type: ignore[method-assign]
                counted("eager", real_forward), slow_eager_at, 0.02
            )
            engine.choose_eager_or_compiled(batches=(1, 4), reps=3)
            assert [engine.runs_eager(b) for b in (1, 4, 3)] == [
                k == "eager" for k in (*kept, kept[1])
            ]
            ops = engine.decode_ops
            assert ops.startswith("compiled with the step (AOTInductor); at batch 1 the "), ops
            assert (
                f"at batch 1 the {kept[0]}" in ops
                and f"above (timed at batch 4) the {kept[1]}" in ops
            )
            assert ops.endswith(f"; eager: {engine.model.ops}")
            ran = []
            for batch in (1, 4):
                engine.prepare(batch, 20)
                engine.logits(torch.ones(batch, 8, dtype=torch.long), 0)  # an eager prefill
                calls.clear()
                engine.decode(torch.ones(batch, 1, dtype=torch.long), 8)
                ran += calls
            assert ran == kept
    finally:
        engine.compiled, engine.model.forward = real_compiled, real_forward  # type: ignore[method-assign]
        engine.choose_eager_or_compiled(batches=(1, 8))


@needs_compiler
def test_batch_one_is_timed_on_the_runs_cache_not_the_thread_timings(compiled) -> None:
    """The compiled step attends over its whole cache: timed on 16 positions it looked
    faster than on the sweep's. Both steps run at the middle of the longest decode."""
    engine = compiled["qwen3"]
    model, real_compiled, real_forward = engine.model, engine.compiled, engine.model.forward
    seen: set[tuple[str, int, int]] = set()

    def recorded(name: str, step):
        def call(tokens, pos, *args, **kw):
            seen.add((name, pos, model.cache_len))
            return step(tokens, pos, *args, **kw)

        return call

    try:
        engine.compiled = recorded("compiled", real_compiled)
        engine.model.forward = recorded("eager", real_forward)  # type: ignore[method-assign]
        engine.choose_eager_or_compiled((40, 12), reps=3)
    finally:
        engine.compiled, engine.model.forward = real_compiled, real_forward  # type: ignore[method-assign]
    assert seen == {("compiled", 46, 52), ("eager", 46, 52)}


@needs_compiler
def test_compiled_and_eager_write_the_same_cache(compiled) -> None:
    engine = compiled["qwen3"]
    model = engine.model
    prompts = torch.randint(0, 256, (2, 10), generator=torch.Generator().manual_seed(7))
    engine.prepare(2, 20)
    caches = []
    for step in (engine.compiled, lambda t, p: (model.forward(t, p).argmax(-1), None)):
        token = engine.logits(prompts, 0)[:, -1:].argmax(-1)
        for pos in range(10, 16):
            token = step(token, pos)[0]
        caches.append([k[:, :, :16].clone() for k in model.k_cache + model.v_cache])
    for a, b in zip(*caches, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


@needs_compiler
def test_the_compiled_step_is_kept_and_loaded_by_the_next_build(
    compiled, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The package is kept under a key of what it depends on: a second build of the same
    model loads it instead of compiling, and steps the same; other kernels are another key;
    a kept file that does not load is compiled over."""
    engine = compiled["llama"]
    model = engine.model
    assert engine.compiled is not None and package_path(model).is_file()
    assert engine.compile_stage().startswith("loading the compiled decode step")
    again = CompiledDecode.build(model)
    assert again.cached

    prompts = torch.randint(0, 256, (2, 12), generator=torch.Generator().manual_seed(3))
    engine.prepare(2, 20)
    logits = []
    for step in (engine.compiled, again):
        token = engine.logits(prompts, 0)[:, -1:].argmax(-1)
        for pos in range(12, 18):
            token, out = step(token, pos)
        logits.append(out)
    torch.testing.assert_close(logits[0], logits[1], atol=0, rtol=0)

    o = model.kernels["o"]
    other = {**model.kernels, "o": replace(o, name="F.linear" if o.name != "F.linear" else "x")}
    key = package_path(model)
    monkeypatch.setattr(model, "kernels", other)
    assert package_path(model) != key
    monkeypatch.undo()

    # what the compile over it writes, without ~20 s of compiling again: the real package
    real, compiles = package_path(model), []
    monkeypatch.setattr(
        compiled_decode,
        "_compile",
        lambda step, m, path: compiles.append(path) or shutil.copyfile(real, path),
    )
    monkeypatch.setenv("INFERTOP_CACHE_DIR", str(tmp_path / "cache"))
    broken = package_path(model)
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not a package")
    rebuilt = CompiledDecode.build(model)
    assert not rebuilt.cached and len(compiles) == 1
    assert CompiledDecode.build(model).cached and len(compiles) == 1
    assert broken.read_bytes() == real.read_bytes()
    assert not list(broken.parent.glob("*.part.pt2"))  # no half-written file left behind


@needs_compiler
def test_a_package_that_kills_its_loader_is_one_line_and_never_kept(
    compiled, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On torch 2.11.0+cu130 (an Intel Xeon) loading any CPU package died with SIGSEGV. A
    new package is loaded in a child process first: here that child really dies of SIGSEGV,
    and the build says so in one line, keeps nothing, and this process carries on; with a
    loader that lives, the same package is kept."""
    model = compiled["llama"].model
    real = package_path(model)  # compiled by the fixture, kept in the session's cache
    monkeypatch.setenv("INFERTOP_CACHE_DIR", str(tmp_path / "cache"))
    # what the compile writes, without 20 s of compiling again: the fixture's real package
    monkeypatch.setattr(
        compiled_decode, "_compile", lambda step, m, path: shutil.copyfile(real, path)
    )
    loader = compiled_decode.LOAD_PROBE
    crash = "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"
    monkeypatch.setattr(compiled_decode, "LOAD_PROBE", [sys.executable, "-c", crash])
    with pytest.raises(UserError) as err:
        CompiledDecode.build(model)
    message = str(err.value)
    assert "(SIGSEGV)" in message and "run without --compile" in message
    assert "\n" not in message
    assert not list((tmp_path / "cache").rglob("*.pt2"))  # nothing kept, nothing half-written

    monkeypatch.setattr(compiled_decode, "LOAD_PROBE", loader)
    assert not CompiledDecode.build(model).cached
    assert CompiledDecode.build(model).cached


@needs_compiler
def test_the_load_probe_loads_through_aoti_load_package_where_the_native_loader_differs(
    compiled,
) -> None:
    """The probe calls torch 2.13's native package loader; where another torch's takes other
    arguments (a TypeError, stood in for here) it loads the package the documented way."""
    real = package_path(compiled["llama"].model)
    other_torch = """
import torch
native, calls = torch._C._aoti.AOTIModelPackageLoader, []
def loader(*args):  # the probe's own call fails; aoti_load_package's gets the real one
    calls.append(args)
    if len(calls) == 1:
        raise TypeError(f"takes 2 positional arguments but {len(args)} were given")
    return native(*args)
loader.load_metadata_from_package = native.load_metadata_from_package
torch._C._aoti.AOTIModelPackageLoader = loader
import atexit
atexit.register(lambda: print(len(calls)))
"""
    probe = [sys.executable, "-c", other_torch + compiled_decode.LOAD_PROBE_CODE]
    done = subprocess.run([*probe, str(real)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout) >= 2  # the native call, then the long way's
    assert compiled_decode.LOAD_PROBE[-1] == compiled_decode.LOAD_PROBE_CODE


def test_compile_is_for_torch_on_the_cpu() -> None:
    with pytest.raises(UserError, match="--compile is for the torch backend"):
        load_engine(RunConfig(model="tiny", backend="mlx", compile=True))


@needs_compiler
def test_bench_compile_writes_results(tmp_path: Path) -> None:
    out = tmp_path / "runs.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "infertop", "bench", "--model", "tiny", "--compile"]
        + ["--batch-size", "1", "3", "--input-len", "8", "--output-len", "4"]
        + ["--result-filename", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "[torch, compiled]" in proc.stdout
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["batch_size"] for r in rows] == [1, 3]  # one compile, two batch sizes
    assert all(r["median_decode_latency"] > 0 for r in rows)


def test_no_compiler_is_one_line_naming_the_fix(tmp_path: Path) -> None:
    env = dict(
        os.environ,
        CXX=str(tmp_path / "no-such-g++"),
        TORCHINDUCTOR_FORCE_DISABLE_CACHES="1",
        INFERTOP_CACHE_DIR=str(tmp_path / "empty-cache"),  # no step kept from another test
    )
    proc = subprocess.run(
        [sys.executable, "-m", "infertop", "bench", "--model", "tiny", "--compile"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, proc.stderr
    assert "C++ compiler" in errors[0] and "drop --compile" in errors[0]


class StageQueue(EventQueue):
    """A real EventQueue that also remembers the load stages it carried."""

    def __init__(self) -> None:
        super().__init__()
        self.stages: list[str] = []

    def put(self, ev: Event) -> None:
        if isinstance(ev, LoadProgress):
            self.stages.append(ev.stage)
        super().put(ev)


@needs_compiler
async def test_the_live_screen_runs_compiled(tmp_path: Path) -> None:
    cfg = RunConfig(
        model="tiny",
        compile=True,
        input_lens=(16,),
        output_lens=(32,),
        trace_dir=str(tmp_path / "traces"),
    )
    queue = StageQueue()
    session = Session(cfg, queue)
    app = InfertopApp(session, refresh_hz=10)
    # 160 columns: a narrower header leaves out the backend's name for a long kernel mix
    async with app.run_test(size=(160, 48)) as pilot:
        end = time.monotonic() + 120
        while "p99" not in str(app.query_one(DecodePanel).render()):
            assert time.monotonic() < end, "no decode numbers in time"
            await pilot.pause(0.1)
        assert "torch, compiled" in str(app.query_one(HeaderBar).render())
        await pilot.press("q")
        await pilot.pause(0.1)
    # compiled here, or kept from the bench test's compile of the same tiny model
    kept = ("compiling the decode step", "loading the compiled decode step")
    assert any(s.startswith(kept) for s in queue.stages)
    assert session.finished.is_set()
