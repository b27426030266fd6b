"""Profiling: real torch.profiler captures on CPU, stage windows, names, the timeline, and the
NPU/Metal paths through doubles that mirror the real APIs."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from infertop.engine.backends.torch.engine import TorchEngine
from infertop.engine.commands import StartProfile
from infertop.engine.config import RunConfig
from infertop.engine.events import (
    DecodeStep,
    Notice,
    PrefillDone,
    ProfileArmed,
    ProfileFailed,
    ProfileStarted,
    ProfileStopped,
    RunDone,
    TraceSaved,
)
from infertop.engine.profiling.controller import ProfileController
from infertop.engine.profiling.naming import safe_name, sweep_stale_temps, trace_stem, unique_path
from infertop.engine.profiling.request import CaptureRequest
from infertop.engine.runner import Runner
from infertop.engine.session import Session
from infertop.tui.app import InfertopApp
from infertop.tui.screens import ProfileDialog
from tests.helpers import HeldInCapture, run_capture, until

DOUBLES = Path(__file__).resolve().parents[1] / "doubles"


@pytest.fixture(scope="module")
def tiny() -> TorchEngine:
    return TorchEngine.load("tiny", device="cpu")


def trace_events(path: str | Path) -> list[dict]:
    with gzip.open(path, "rt") as f:
        data = json.load(f)
    assert "traceEvents" in data
    return data["traceEvents"]


def annotations(events: list[dict]) -> list[str]:
    return [e["name"] for e in events if e.get("name", "").startswith("infertop.")]


def test_profiler_only_sees_the_thread_that_started_it() -> None:
    """The fact behind starting captures in the engine thread (DESIGN.md)."""
    a = torch.randn(64, 64)
    done = threading.Event()

    def work() -> None:
        for _ in range(20):
            torch.mm(a, a)
        done.set()

    with torch.profiler.profile() as prof:
        t = threading.Thread(target=work)
        t.start()
        t.join()
    assert done.is_set()
    assert not [e for e in prof.events() if e.name == "aten::mm"]


async def test_keypress_capture_holds_engine_ops_from_the_engine_thread(tmp_path: Path) -> None:
    cfg = RunConfig(
        model="tiny",
        batch_sizes=(1,),
        input_lens=(16,),
        output_lens=(64,),
        trace_dir=str(tmp_path),
        run_name="keys",
    )
    queue = HeldInCapture(steps=10)  # the engine waits at its 10th captured step for the p
    session = Session(cfg, queue)
    app = InfertopApp(session, refresh_hz=10)
    async with app.run_test(size=(120, 40)) as pilot:
        while session.steps_done < 20:
            await pilot.pause(0.05)
        # the screen learns that the model runs at its next drain: p before it is refused
        await until(pilot, lambda: app.state == "running")
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, ProfileDialog))
        await pilot.press("enter")  # the dialog's defaults: all stages, until stopped
        # the header shows it at its next repaint (a slow machine may be a refresh behind)
        await until(pilot, lambda: "REC" in str(app.query_one("#header").render()))
        await until(pilot, lambda: queue.captured == 10)
        await pilot.press("p")
        queue.release.set()
        while app.capture:
            await pilot.pause(0.05)
        saved = {Path(t.path).name.split(".", 1)[1]: t for t in app.query_one("#traces").saved}
        await pilot.press("q")
    assert set(saved) >= {"pt.trace.json.gz", "ops.txt", "timeline.trace"}
    trace = saved["pt.trace.json.gz"]
    assert Path(trace.path).parent == tmp_path and Path(trace.path).name.startswith("keys-all-bs1")
    events = trace_events(trace.path)
    engine_ops = [e for e in events if e.get("name") in ("aten::mm", "aten::linear", "aten::addmm")]
    assert engine_ops, "no matmul of the engine in the trace"
    assert {e["tid"] for e in engine_ops} == {session.thread_id}
    assert trace.top_ops and any(op in ("aten::mm", "aten::addmm") for op, _, _ in trace.top_ops)


@pytest.mark.parametrize("stage", ["prefill", "decode"])
def test_stage_capture_holds_only_that_stage(tiny, tmp_path: Path, stage: str) -> None:
    events = run_capture(tiny, tmp_path, CaptureRequest(name="st", stage=stage, steps=50))
    (torch_trace,) = [e for e in events if isinstance(e, TraceSaved) and e.kind == "torch"]
    names = annotations(trace_events(torch_trace.path))
    assert names and all(n.startswith(f"infertop.{stage}#") for n in names)
    stopped = [e for e in events if isinstance(e, ProfileStopped)]
    # prefill: the next decode step ends it; decode: the run (and this one-run sweep) ends
    assert stopped[0].reason in (f"{stage} stage ended", "engine stopped")
    expected = 1 if stage == "prefill" else 7  # one prefill; output 8 = 7 decode steps
    assert torch_trace.steps == expected and len(names) == expected


def test_window_starts_after_k_and_stops_after_n_steps(tiny, tmp_path: Path) -> None:
    req = CaptureRequest(name="win", stage="decode", start_step=2, steps=3)
    events = run_capture(tiny, tmp_path, req, output_len=16)
    (started,) = [e for e in events if isinstance(e, ProfileStarted)]
    (stopped,) = [e for e in events if isinstance(e, ProfileStopped)]
    assert stopped.steps == 3 and stopped.reason == "3 steps captured"
    (trace,) = [e for e in events if isinstance(e, TraceSaved) and e.kind == "torch"]
    names = annotations(trace_events(trace.path))
    assert names == ["infertop.decode#0", "infertop.decode#1", "infertop.decode#2"]
    assert started.stage == "decode"


def test_timeline_has_a_slice_per_step_and_counter_tracks(tiny, tmp_path: Path) -> None:
    req = CaptureRequest(name="tl", stage="all", steps=6, activities=("timeline",))
    events = run_capture(tiny, tmp_path, req)
    (tl,) = [e for e in events if isinstance(e, TraceSaved)]
    assert tl.kind == "timeline" and tl.path.endswith(".timeline.trace")
    data = json.loads(Path(tl.path).read_text())
    slices = [e for e in data["traceEvents"] if e["ph"] == "X"]
    assert [s["name"] for s in slices] == ["prefill"] + ["decode"] * 5
    assert all(s["dur"] > 0 and s["args"]["batch_size"] == 2 for s in slices)
    counters = {e["name"] for e in data["traceEvents"] if e["ph"] == "C"}
    assert {"process CPU %", "process RSS MiB", "device memory MiB"} <= counters


def test_start_while_running_and_stop_when_idle_are_messages(tmp_path: Path) -> None:
    events = []
    ctl = ProfileController(events.append, tmp_path, "cpu")
    ctl.stop()
    ctl.arm(CaptureRequest(activities=("timeline",)))
    ctl.arm(CaptureRequest(activities=("timeline",)))
    notices = [e.message for e in events if isinstance(e, Notice)]
    assert notices == ["no capture is running", "a capture is already running; stop it first (p)"]


def test_unwritable_trace_dir_fails_the_capture_with_the_reason(tmp_path: Path) -> None:
    events = []
    blocker = tmp_path / "file"
    blocker.write_text("")
    ctl = ProfileController(events.append, blocker / "traces", "cpu")
    ctl.arm(CaptureRequest())
    assert not ctl.busy
    (failed,) = events
    assert isinstance(failed, ProfileFailed) and "pass a writable directory" in failed.message
    blocker.unlink()  # fixed: the next request is armed
    ctl.trace_dir = tmp_path / "traces"
    ctl.arm(CaptureRequest())
    assert ctl.busy and isinstance(events[-1], ProfileArmed)


def test_a_capture_never_spans_shapes_its_name_does_not_list(tiny, tmp_path: Path) -> None:
    """An open-ended `all` capture used to run on into the next batch size's steps while its
    name said bs1. It now ends with its shape; the steps it recorded are marked, their run is
    captured, and that run stays out of the result file."""
    results = tmp_path / "runs.jsonl"
    events: list = []
    cfg = RunConfig(
        model="tiny",
        batch_sizes=(1, 2, 1),
        input_lens=(8,),
        output_lens=(6,),
        trace_dir=str(tmp_path),
        warmup=False,
        result_filename=str(results),
    )
    runner = Runner(tiny, cfg, events.append)
    runner.send(StartProfile(CaptureRequest(name="span", activities=("cpu", "timeline"))))
    runner.run()
    (stopped,) = [e for e in events if isinstance(e, ProfileStopped)]
    assert stopped.reason == "its run shape ended" and stopped.steps == 6
    saved = {e.kind: e for e in events if isinstance(e, TraceSaved)}
    assert Path(saved["torch"].path).name.startswith("span-all-bs1-in8-out6-")
    timeline = json.loads(Path(saved["timeline"].path).read_text())
    slices = [e for e in timeline["traceEvents"] if e["ph"] == "X"]
    assert len(slices) == 6 and {s["args"]["batch_size"] for s in slices} == {1}
    assert len(annotations(trace_events(saved["torch"].path))) == 6
    steps = [e for e in events if isinstance(e, PrefillDone | DecodeStep)]
    assert [e.profiled for e in steps] == [True] * 6 + [False] * 12
    runs = [e.result for e in events if isinstance(e, RunDone)]
    assert [r.captured for r in runs] == [True, False, False]
    kept = [json.loads(line) for line in results.read_text().splitlines()]
    assert [r["batch_size"] for r in kept] == [2, 1]


@pytest.mark.parametrize(
    "hostile", ["../x", "a/b", "nul\x00byte", "x" * 300, "模型-é", "..", "/etc/passwd", ""]
)
def test_hostile_names_stay_inside_the_trace_dir(tmp_path: Path, hostile: str) -> None:
    name = safe_name(hostile)
    assert name and "/" not in name and "\x00" not in name and ".." not in name
    assert len(name) <= 64 and name.isascii()
    path = unique_path(tmp_path, trace_stem(hostile, "all", 1, 2, 3), "pt.trace.json.gz")
    assert path.parent == tmp_path
    path.write_text("ok")  # a real file can be made under that name


def test_two_processes_saving_the_same_name_at_once_get_two_files(tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "infertop",
        "bench",
        "--model",
        "tiny",
        "--input-len",
        "4",
        "--output-len",
        "4",
        "--no-warmup",
        "--profile",
        "--profile-stage",
        "decode",
        "--profile-prefix",
        "same",
        "--profile-activities",
        "cpu",
        "--trace-dir",
        str(tmp_path),
    ]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in "ab"]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read()
    traces = sorted(tmp_path.glob("same-decode-bs1-in4-out4-*.pt.trace.json.gz"))
    assert len(traces) == 2
    for t in traces:
        trace_events(t)


KILL_DURING_SAVE = """
import sys, time
from pathlib import Path
import torch
from infertop.engine.profiling.torch_profiler import TorchCapture
from infertop.engine.profiling.request import CaptureRequest
cap = TorchCapture(CaptureRequest(), "cpu")
cap.start(Path(sys.argv[1]), "victim-all-bs1-in1-out1-20260101-000000-abcdef")
torch.randn(8, 8) @ torch.randn(8, 8)
def slow_export(path):
    with open(path, "wb") as f:
        f.write(b"half a trace")
        f.flush()
        print("SAVING", flush=True)
        time.sleep(60)
cap.prof.export_chrome_trace = slow_export
cap.stop_and_save(lambda m: None, 1, [])
"""


def test_kill_9_during_a_save_leaves_no_file_under_a_final_name(tmp_path: Path) -> None:
    p = subprocess.Popen(
        [sys.executable, "-c", KILL_DURING_SAVE, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert p.stdout.readline().strip() == "SAVING"
    p.kill()
    p.wait(timeout=10)
    leftovers = [f.name for f in tmp_path.iterdir()]
    assert leftovers and all(name.startswith(f".tmp-{p.pid}-") for name in leftovers), leftovers
    # the next start (bench or the live screen) removes a dead writer's temporaries, and
    # leaves a live one's alone
    live = tmp_path / f".tmp-{os.getpid()}-abcdef-x.pt.trace.json.gz"
    live.write_bytes(b"being written")
    assert sorted(p.name for p in sweep_stale_temps(tmp_path)) == sorted(leftovers)
    assert list(tmp_path.iterdir()) == [live]


# -- NPU through a double of torch_npu (tests/doubles, mirrors the 2.14.0 wheel) ------------


@pytest.fixture
def torch_npu_double(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(DOUBLES))
    for name in [m for m in sys.modules if m.startswith("torch_npu")]:
        monkeypatch.delitem(sys.modules, name)
    import torch_npu

    torch_npu.profiler._reset_double()
    yield torch_npu
    # the double must not outlive the test: device auto-detection would find it
    for name in [m for m in sys.modules if m.startswith("torch_npu")]:
        del sys.modules[name]


def test_npu_capture_passes_the_exact_arguments(torch_npu_double, tmp_path: Path) -> None:
    from infertop.engine.profiling.npu_profiler import NpuCapture

    cap = NpuCapture(CaptureRequest(name="npu", record_shapes=True))
    cap.start(tmp_path, "npu-all-bs1-in1-out1-20260101-000000-abcdef")
    saved = cap.stop_and_save(lambda m: None, 1, [])
    calls = dict((name, args) for name, args in torch_npu_double.profiler.CALLS)
    p = torch_npu_double.profiler
    cfg_args = calls["_ExperimentalConfig"]
    assert cfg_args == {
        "export_type": p.ExportType.Text,
        "profiler_level": p.ProfilerLevel.Level1,
        "aic_metrics": p.AiCMetrics.AiCoreNone,
        "l2_cache": False,
        "op_attr": False,
        "data_simplification": False,
        "record_op_args": False,
        "gc_detect_threshold": None,
    }
    prof_args = calls["profile"]
    assert prof_args["activities"] == [p.ProfilerActivity.CPU, p.ProfilerActivity.NPU]
    assert prof_args["record_shapes"] is True
    assert isinstance(prof_args["experimental_config"], p._ExperimentalConfig)
    (trace,) = saved
    assert trace.kind == "npu" and trace.path.is_dir() and trace.path.parent == tmp_path
    assert trace.path.name.endswith(".ascend_pt")
    assert trace.top_ops and trace.top_ops[0][1] >= trace.top_ops[-1][1]
    assert not [f for f in tmp_path.iterdir() if f.name.startswith(".tmp-")]


def test_torch_profiler_never_receives_experimental_config(
    tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = []
    real = torch.profiler.profile

    def spy(*args, **kwargs):
        seen.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.profiler, "profile", spy)
    run_capture(tiny, tmp_path, CaptureRequest(name="spy", steps=2))
    assert seen and all("experimental_config" not in kw for kw in seen)


# -- Metal ------------------------------------------------------------------------------


def test_metal_capture_on_linux_is_a_clear_message_and_no_file(tmp_path: Path) -> None:
    pytest.importorskip("mlx.core")
    import mlx.core as mx

    if mx.metal.is_available():
        pytest.skip("this test is for machines without Metal")
    events = []
    ctl = ProfileController(events.append, tmp_path, "metal")
    ctl.arm(CaptureRequest(activities=("device",)))
    assert not ctl.busy
    assert "Metal capture needs Apple silicon" in events[0].message
    assert list(tmp_path.iterdir()) == []


class MetalDouble:
    """Mirrors mlx.core.metal's capture API (mlx 0.32: is_available(), start_capture(path: str),
    stop_capture()); start_capture writes the bundle like Metal does when capture is enabled."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []
        self.metal = self

    def is_available(self) -> bool:
        return True

    def start_capture(self, path: str) -> None:
        assert not Path(path).exists(), "Metal refuses an existing .gputrace path"
        assert path.endswith(".gputrace")
        self.calls.append(("start_capture", path))
        self.path = Path(path)

    def stop_capture(self) -> None:
        self.calls.append(("stop_capture", None))
        self.path.mkdir()
        (self.path / "metadata").write_text("capture")


def test_metal_capture_gets_a_fresh_gputrace_and_is_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from infertop.engine.profiling.metal_capture import MetalCapture

    monkeypatch.setenv("MTL_CAPTURE_ENABLED", "1")
    mx = MetalDouble()
    cap = MetalCapture(mx)
    cap.start(tmp_path, "mac-decode-bs1-in1-out1-20260101-000000-abcdef")
    (saved,) = cap.stop_and_save(lambda m: None, 1, [])
    assert [c[0] for c in mx.calls] == ["start_capture", "stop_capture"]
    assert saved.path.name == "mac-decode-bs1-in1-out1-20260101-000000-abcdef.gputrace"
    assert saved.path.is_dir() and saved.kind == "metal"


def test_metal_capture_refuses_without_the_capture_env(monkeypatch: pytest.MonkeyPatch) -> None:
    from infertop.engine.errors import UserError
    from infertop.engine.profiling.metal_capture import MetalCapture

    monkeypatch.delenv("MTL_CAPTURE_ENABLED", raising=False)
    with pytest.raises(UserError, match="MTL_CAPTURE_ENABLED=1"):
        MetalCapture(MetalDouble())


def test_no_capture_means_no_profiler_object(tiny, tmp_path: Path) -> None:
    cfg = RunConfig(
        model="tiny",
        batch_sizes=(1,),
        input_lens=(4,),
        output_lens=(4,),
        trace_dir=str(tmp_path),
        warmup=False,
    )
    runner = Runner(tiny, cfg, lambda e: None)
    runner.run()
    assert not runner.profiler.busy and runner.profiler.capture is None
    assert list(tmp_path.iterdir()) == []


def test_npu_save_counts_only_when_the_parser_finished(torch_npu_double, tmp_path: Path) -> None:
    """The real stop() and parser swallow their errors (@no_exception_func): the double's
    parser failing leaves no analyse.done, and nothing is published."""
    from infertop.engine.errors import UserError
    from infertop.engine.profiling.npu_profiler import NpuCapture

    analysis = sys.modules["torch_npu.profiler._fake_analysis"]

    def parser_fails(*args: object, **kwargs: object) -> str:
        raise RuntimeError("CANN data incomplete")

    cap = NpuCapture(CaptureRequest(name="npu"))
    cap.start(tmp_path, "npu-all-bs1-in1-out1-20260101-000000-abcdef")
    real = analysis.write_tensorboard_output
    analysis.write_tensorboard_output = parser_fails
    try:
        with pytest.raises(UserError, match="torch_npu's parser did not finish"):
            cap.stop_and_save(lambda m: None, 1, [])
    finally:
        analysis.write_tensorboard_output = real
    cap.abandon()
    assert not [p for p in tmp_path.iterdir() if not p.name.startswith(".tmp-")]
    assert list(tmp_path.iterdir()) == []
