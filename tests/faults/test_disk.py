"""Full disks and bad places to write: one line each, every completed result line kept, and
never a trace published that was not written whole. A full disk is a file-size limit
(`prlimit --fsize`: a write past it fails as on a full disk), which needs no privileges."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest

from infertop.engine.events import Notice, ProfileStopped, TraceSaved
from infertop.engine.profiling.controller import ProfileController
from infertop.engine.profiling.request import CaptureRequest
from tests.helpers import infertop_bench

needs_prlimit = pytest.mark.skipif(not shutil.which("prlimit"), reason="needs util-linux prlimit")


def bench(*args: str, fsize: int | None = None, env: dict[str, str] | None = None):  # noqa: ANN201
    limit = ["prlimit", f"--fsize={fsize}"] if fsize else []
    return infertop_bench(
        "--model", "tiny", "--no-warmup", "--input-len", "8", *args,
        env={**os.environ, **(env or {})}, prefix=limit,
    )  # fmt: skip


def errors(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if "error" in line]


@needs_prlimit
def test_a_full_disk_mid_run_keeps_every_completed_line(tmp_path: Path) -> None:
    results = tmp_path / "runs.jsonl"
    one_line = 330  # bytes a result line takes, about: two fit under the limit, three do not
    done = bench(
        "--batch-size", "1", "2", "3", "4", "--output-len", "4",
        "--result-filename", str(results), fsize=2 * one_line + 100,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    (line,) = errors(done.stderr)
    assert "--result-filename" in line and "free space" in line and "2 earlier runs kept" in line
    kept = [json.loads(x) for x in results.read_text().splitlines()]  # whole lines only
    assert [r["batch_size"] for r in kept] == [1, 2]
    assert results.read_text().endswith("\n")


@needs_prlimit
def test_a_full_disk_never_publishes_a_trace_and_leaves_no_temporaries(tmp_path: Path) -> None:
    """Torch's own .gz export wrote the JSON to $TMPDIR first and ignored a failed write: a
    93-byte gzip of an empty trace was published and reported saved. Now the trace is
    written in the trace dir, checked, and published whole or not at all."""
    traces, tmpdir = tmp_path / "traces", tmp_path / "tmpdir"
    tmpdir.mkdir()
    done = bench(
        "--batch-size", "1", "--output-len", "32", "--trace-dir", str(traces), "--profile",
        "--profile-stage", "decode", "--profile-start-step", "0", "--profile-steps", "31",
        "--profile-activities", "cpu", "timeline",
        fsize=1 << 18, env={"TMPDIR": str(tmpdir)},
    )  # fmt: skip
    # 256 KB: the trace of 31 fused decode steps is ~0.6 MB of JSON (61 KB gzipped), the other
    # files under 10 KB (at 1 MB, the fused step's trace, a third of the ATen step's, fit)
    assert done.returncode == 1, done.stderr  # measured, but the profile asked for is missing
    (line,) = errors(done.stderr)
    assert "trace not saved" in line and "free space" in line, line
    assert "Trace saved" not in done.stdout
    assert sorted(p.name for p in traces.iterdir()) == []  # no final name, no temporary
    assert not list(tmpdir.rglob("*.json*"))  # and no trace JSON left in $TMPDIR


def test_a_save_that_fails_half_way_publishes_none_of_it(tmp_path: Path) -> None:
    """The torch trace was written, then the timeline beside it hit a full disk: both go,
    and the capture says one thing (it said "not saved" while the trace stayed)."""
    from infertop.engine.profiling import timeline

    events: list[object] = []
    ctl = ProfileController(events.append, tmp_path, "cpu")
    ctl.arm(CaptureRequest(name="half", activities=("cpu", "timeline")))
    ctl.begin_step("decode", (1, 2, 3))
    with ctl.capture.annotate("decode", 0):  # type: ignore[union-attr]
        pass

    def full(self: object, directory: Path, stem: str, base_ns: int | None) -> object:
        raise OSError(errno.ENOSPC, "No space left on device")

    real = timeline.Timeline.save
    timeline.Timeline.save = full  # type: ignore[method-assign]
    try:
        ctl.end_step("decode", 0.0, 0.001, {})
        ctl.stop()
    finally:
        timeline.Timeline.save = real  # type: ignore[method-assign]
    notices = [e.message for e in events if isinstance(e, Notice)]
    assert notices == [
        "trace not saved: No space left on device; free space or pass another --trace-dir"
    ]
    assert not [e for e in events if isinstance(e, TraceSaved)]
    assert isinstance(events[-1], ProfileStopped)
    assert list(tmp_path.iterdir()) == []


def test_places_that_cannot_be_written_are_refused_before_anything_runs(tmp_path: Path) -> None:
    dangling = tmp_path / "gone"
    dangling.symlink_to(tmp_path / "nowhere")
    done = bench("--profile", "--trace-dir", str(dangling))
    assert done.returncode == 2 and "Loading" not in done.stderr
    assert "dangling symlink" in errors(done.stderr)[0]
    done = bench("--profile", "--trace-dir", "/proc/self")
    assert done.returncode == 2 and "is not writable" in errors(done.stderr)[0]
    # without --profile bench writes no trace: the directory is neither made nor needed
    assert bench("--trace-dir", str(tmp_path / "unused")).returncode == 0
    assert not (tmp_path / "unused").exists()
    done = bench("--result-filename", "/proc/results.jsonl", "--trace-dir", str(tmp_path))
    assert done.returncode == 2 and "--result-filename /proc/results.jsonl" in done.stderr
