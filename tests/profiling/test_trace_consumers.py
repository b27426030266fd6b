"""The real consumers of a CPU capture's trace dir: TensorBoard's profiler plugin (its
RunLoader, no browser) and HolisticTraceAnalysis see every captured step and the ops; the
step timeline's counters sit in the torch trace on its clock; HTA does not take the
timeline file for a rank's trace."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from infertop.engine.backends.torch.engine import TorchEngine
from infertop.engine.events import TraceSaved
from infertop.engine.profiling.request import CaptureRequest
from tests.helpers import run_capture

STEPS = 6  # 1 prefill + 5 decode


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TraceSaved]:
    """One capture of 6 steps (cpu + timeline) alone in its trace dir."""
    trace_dir = tmp_path_factory.mktemp("capture")
    engine = TorchEngine.load("tiny", device="cpu")
    request = CaptureRequest(name="tb", steps=STEPS, activities=("cpu", "timeline"))
    events = run_capture(engine, trace_dir, request)
    return {e.kind: e for e in events if isinstance(e, TraceSaved)}


def torch_trace(capture: dict[str, TraceSaved]) -> dict:
    with gzip.open(capture["torch"].path, "rt") as f:
        return json.load(f)


def test_names_are_the_ones_the_tools_look_for(capture: dict[str, TraceSaved]) -> None:
    assert capture["torch"].path.endswith(".pt.trace.json.gz")
    assert capture["timeline"].path.endswith(".timeline.trace")
    assert {p.name for p in Path(capture["torch"].path).parent.iterdir()} == {
        Path(capture[k].path).name for k in ("torch", "ops", "timeline")
    }


def test_tensorboard_plugin_sees_every_step_and_the_operator_view(
    capture: dict[str, TraceSaved], tmp_path: Path
) -> None:
    pytest.importorskip("torch_tb_profiler")
    from torch_tb_profiler import io
    from torch_tb_profiler.profiler.loader import RunLoader

    trace_dir = Path(capture["torch"].path).parent
    run = RunLoader("infertop", str(trace_dir), io.Cache(str(tmp_path))).load()
    (worker,) = run.workers
    assert capture["torch"].path.endswith(f"{worker}.pt.trace.json.gz")
    (span,) = run.get_spans(worker) or [None]  # one capture: one span
    profile = run.get_profile(worker, span)
    steps = [row[0] for row in profile.overview["steps"]["rows"]]
    assert steps == [str(i) for i in range(STEPS)]
    assert {"Overview", "Operator", "Trace"} <= {v.display_name for v in profile.views}
    ops = {row["name"] for row in profile.operation_table_by_name["data"]}
    assert ops & {"aten::mm", "aten::addmm", "aten::linear"}, ops
    assert not any(op.startswith(("ProfilerStep#", "infertop.")) for op in ops)


def test_hta_loads_the_trace_dir_and_lists_the_steps(capture: dict[str, TraceSaved]) -> None:
    pytest.importorskip("hta")
    from hta.common.trace_file import get_trace_files
    from hta.trace_analysis import TraceAnalysis

    trace_dir = str(Path(capture["torch"].path).parent)
    assert get_trace_files(trace_dir) == {0: capture["torch"].path}  # not the timeline
    # HTA leaves out the last step by default: it expects prof.step()'s trailing partial one
    analysis = TraceAnalysis(trace_dir=trace_dir, include_last_profiler_step=True)
    assert [int(s) for s in analysis.get_profiler_steps()] == list(range(STEPS))


def test_steps_carry_index_and_stage_and_the_engine_thread_is_named(
    capture: dict[str, TraceSaved],
) -> None:
    trace = torch_trace(capture)
    assert trace["distributedInfo"] == {"backend": "none", "rank": 0, "world_size": 1}
    events = trace["traceEvents"]
    steps = [e for e in events if e.get("name", "").startswith("ProfilerStep#")]
    assert [e["args"]["step"] for e in steps] == list(range(STEPS))
    assert [e["args"]["stage"] for e in steps] == ["prefill"] + ["decode"] * (STEPS - 1)
    names = {
        e["tid"]: e["args"]["name"]
        for e in events
        if e.get("ph") == "M" and e.get("name") == "thread_name"
    }
    assert names[steps[0]["tid"]].startswith("infertop engine (thread ")


def test_counters_are_in_the_torch_trace_on_its_clock(capture: dict[str, TraceSaved]) -> None:
    trace = torch_trace(capture)
    events = trace["traceEvents"]
    steps = [e for e in events if e.get("name", "").startswith("ProfilerStep#")]
    start, end = steps[0]["ts"], steps[-1]["ts"] + steps[-1]["dur"]
    counters = [e for e in events if e.get("ph") == "C"]
    assert {"process CPU %", "process RSS MiB"} <= {c["name"] for c in counters}
    # sampled during the steps: on another clock they would be hours or days away
    assert all(start - 1e6 <= c["ts"] <= end + 1e6 for c in counters)
    # the timeline file is on the same clock: its step slices start where the trace's do
    timeline = json.loads(Path(capture["timeline"].path).read_text())
    assert timeline["baseTimeNanoseconds"] == trace["baseTimeNanoseconds"]
    slices = [e for e in timeline["traceEvents"] if e["ph"] == "X"]
    assert [s["args"]["step"] for s in slices] == list(range(STEPS))
    for ours, theirs in zip(slices, steps, strict=True):
        assert abs(ours["ts"] - theirs["ts"]) < 50_000  # microseconds; same step
