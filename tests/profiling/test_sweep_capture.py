"""`infertop bench --profile` as bench_one_batch captures: every sweep point, in an extra run
after its timed one, a prefill file and a decode file, the decode capture at SGLang's step
(real torch profiler on the tiny preset)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from infertop.engine.backends.torch.engine import TorchEngine
from infertop.engine.bench import capture_summary
from infertop.engine.config import RunConfig
from infertop.engine.events import (
    DecodeStep,
    Event,
    PrefillDone,
    ProfileArmed,
    ProfileFailed,
    ProfileStarted,
    ProfileStopped,
    RunDone,
    TraceSaved,
)
from infertop.engine.profiling.controller import ProfileController
from infertop.engine.profiling.request import CaptureRequest
from infertop.engine.profiling.sweep_capture import SweepCapture
from infertop.engine.runner import Runner

CPU = CaptureRequest(name="sw", activities=("cpu",))


@pytest.fixture(scope="module")
def tiny() -> TorchEngine:
    return TorchEngine.load("tiny", device="cpu")


def bench_run(engine: TorchEngine, tmp_path: Path, plan: SweepCapture, o: int = 8) -> list[Event]:
    events: list[Event] = []
    cfg = RunConfig(
        model="tiny",
        batch_sizes=(1, 2),
        input_lens=(8,),
        output_lens=(o,),
        trace_dir=str(tmp_path),
        warmup=False,
        result_filename=str(tmp_path / "r.jsonl"),
        profile=plan,
    )
    Runner(engine, cfg, events.append).run()
    return events


def runs_of(events: list[Event]) -> list[list[Event]]:
    """The step events of each run, in order."""
    runs: list[list[Event]] = [[]]
    for e in events:
        if isinstance(e, PrefillDone | DecodeStep):
            runs[-1].append(e)
        elif isinstance(e, RunDone):
            runs.append([])
    return runs[:-1]


def test_every_point_gets_a_timed_run_then_a_prefill_and_a_decode_capture(
    tiny: TorchEngine, tmp_path: Path
) -> None:
    events = bench_run(tiny, tmp_path, SweepCapture(capture=CPU))
    done = [e.result for e in events if isinstance(e, RunDone)]
    assert [(r.batch_size, r.captured) for r in done] == [
        (1, False),
        (1, True),
        (2, False),
        (2, True),
    ]
    started = [(e.stage, e.batch_size) for e in events if isinstance(e, ProfileStarted)]
    assert started == [("prefill", 1), ("decode", 1), ("prefill", 2), ("decode", 2)]
    # what each run recorded: nothing in the timed ones; in the extra ones the prefill and
    # SGLang's default decode step, output_len // 2 = decode step 4 of 7
    recorded = [[e.profiled for e in run] for run in runs_of(events)]
    captured = [True, False, False, False, False, True, False, False]
    assert recorded == [[False] * 8, captured, [False] * 8, captured]
    saved = [(e.stage, e.steps) for e in events if isinstance(e, TraceSaved) and e.kind == "torch"]
    assert saved == [("prefill", 1), ("decode", 1)] * 2
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 2  # the timed runs only


def test_decode_window_from_start_step_for_n_steps(tiny: TorchEngine, tmp_path: Path) -> None:
    plan = SweepCapture(stage="decode", start_step=1, steps=3, capture=CPU)
    events = bench_run(tiny, tmp_path, plan)
    assert [e.stage for e in events if isinstance(e, ProfileStarted)] == ["decode", "decode"]
    recorded = [[e.profiled for e in run] for run in runs_of(events)]
    window = [False, False, True, True, True, False, False, False]  # prefill, then decode 0..6
    assert recorded == [[False] * 8, window, [False] * 8, window]
    stopped = [e.reason for e in events if isinstance(e, ProfileStopped)]
    assert stopped == ["3 steps captured"] * 2


def test_a_window_past_the_run_is_one_line_and_the_prefill_is_still_captured(
    tiny: TorchEngine, tmp_path: Path
) -> None:
    events = bench_run(tiny, tmp_path, SweepCapture(start_step=7, capture=CPU))
    failed = [e.message for e in events if isinstance(e, ProfileFailed)]
    past = "decode step 7 is past the 7 decode steps of output length 8"
    assert failed == [f"{past}; lower --profile-start-step"] * 2
    assert [e.stage for e in events if isinstance(e, ProfileStarted)] == ["prefill", "prefill"]
    # a window that runs past the end is saved with the steps it got
    events = bench_run(tiny, tmp_path, SweepCapture("decode", 5, 10, CPU))
    stopped = [(e.reason, e.steps) for e in events if isinstance(e, ProfileStopped)]
    assert stopped == [("its run ended", 2)] * 2


def test_a_stop_drops_the_queued_capture(tmp_path: Path) -> None:
    events: list[Event] = []
    prof = ProfileController(events.append, tmp_path, "cpu")
    prefill = CaptureRequest(stage="prefill", steps=1, activities=("timeline",))
    prof.arm_each([prefill, CaptureRequest(stage="decode", activities=("timeline",))])
    with prof.begin_step("prefill", (1, 8, 4)):
        pass
    assert prof.recording
    prof.stop()  # stopping mid-capture (a signal, an engine error): the prefill is saved
    assert not prof.busy  # and the decode capture is not armed after it
    assert [e.stage for e in events if isinstance(e, TraceSaved)] == ["prefill"]


def test_cuda_profiler_alone_brackets_the_steps_for_nsight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bench_one_batch's nsys line on a GPU. This machine has no CUDA: torch.cuda.profiler's
    start() and stop() (torch/cuda/profiler.py, no arguments; they call cudart's
    cudaProfilerStart/Stop) are replaced by doubles that record the calls."""
    calls: list[str] = []
    monkeypatch.setattr(torch.cuda.profiler, "start", lambda: calls.append("start"))
    monkeypatch.setattr(torch.cuda.profiler, "stop", lambda: calls.append("stop"))
    events: list[Event] = []
    prof = ProfileController(events.append, tmp_path, "cuda")
    prof.arm(CaptureRequest(stage="decode", steps=2, activities=("cuda_profiler",)))
    for _ in range(2):
        with prof.begin_step("decode", (1, 8, 4)):
            assert calls == ["start"]
        prof.end_step("decode", 0.0, 0.001, {})
    assert calls == ["start", "stop"]
    assert [e.kind for e in events if isinstance(e, ProfileStarted)] == ["cuda_profiler"]
    assert not [e for e in events if isinstance(e, TraceSaved)]
    assert list(tmp_path.iterdir()) == []  # nsys writes the report, not infertop
    assert capture_summary([], [], ran=True, ranges=1) == 0


def test_activities_this_device_lacks_are_named_beside_the_trace_it_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--profile-activities CPU GPU CUDA_PROFILER` on a CPU: the CPU trace is saved and
    bench said nothing of the other two (a user took GPU for recorded)."""
    events: list[Event] = []
    prof = ProfileController(events.append, tmp_path, "cpu")
    prof.arm(CaptureRequest(stage="decode", steps=1, activities=("cpu", "device", "cuda_profiler")))
    (armed,) = [e for e in events if isinstance(e, ProfileArmed)]
    with prof.begin_step("decode", (1, 8, 4)):
        torch.ones(4).sum()
    prof.end_step("decode", 0.0, 0.001, {})
    saved = [e for e in events if isinstance(e, TraceSaved)]
    assert {t.kind for t in saved} == {"torch", "ops"}
    assert capture_summary(saved, [], ran=True, left_out=list(armed.left_out) * 2) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "Not captured: GPU records a device's own activity and this run is on cpu",
        "Not captured: CUDA_PROFILER brackets the steps for Nsight Systems and needs a CUDA device",
    ]
    # the default (SGLang's CPU GPU, and the timeline) is not a request for a GPU
    prof.arm(CaptureRequest(stage="decode", steps=1))
    assert [e.left_out for e in events if isinstance(e, ProfileArmed)][-1] == ()


def test_cuda_profiler_without_cuda_names_the_fix(tmp_path: Path) -> None:
    events: list[Event] = []
    prof = ProfileController(events.append, tmp_path, "cpu")
    prof.arm(CaptureRequest(activities=("cuda_profiler",)))
    (failed,) = [e.message for e in events if isinstance(e, ProfileFailed)]
    assert "needs a CUDA device" in failed and "--profile-activities CPU" in failed
