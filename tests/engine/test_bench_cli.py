"""`infertop bench` and `infertop presets` as a user runs them (real subprocesses, tiny preset)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from infertop.engine.events import RESULT_KEYS


def infertop(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infertop", *args],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=cwd,
    )


def test_bench_writes_jsonl_with_bench_one_batch_keys_and_formulas(tmp_path: Path) -> None:
    out = tmp_path / "runs.jsonl"
    out.write_text(json.dumps({"earlier": "line"}) + "\n")  # appended to, never truncated
    p = infertop(
        "bench",
        "--model",
        "tiny",
        "--batch-size",
        "1",
        "3",
        "--input-len",
        "16",
        "--output-len",
        "5",
        "--run-name",
        "ci",
        "--result-filename",
        str(out),
    )
    assert p.returncode == 0, p.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[0] == {"earlier": "line"}
    runs = lines[1:]
    assert [r["batch_size"] for r in runs] == [1, 3]
    for r in runs:
        assert tuple(r) == RESULT_KEYS
        b, i, o = r["batch_size"], r["input_len"], r["output_len"]
        assert (r["run_name"], i, o) == ("ci", 16, 5)
        assert r["prefill_latency"] > 0 and r["median_decode_latency"] > 0
        assert r["prefill_throughput"] == pytest.approx(i * b / r["prefill_latency"])
        assert r["median_decode_throughput"] == pytest.approx(b / r["median_decode_latency"])
        assert r["overall_throughput"] == pytest.approx((i + o) * b / r["total_latency"])
        # total = prefill + 4 decode steps, each at least as long as the fastest one
        assert r["total_latency"] > r["prefill_latency"] + 2 * r["median_decode_latency"]
    assert "decode tok/s" in p.stdout  # the closing table
    assert not (Path.cwd() / "traces").exists()  # no --profile: no empty trace dir left


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--batch-size", "0"], "use 1 or more"),
        (["--input-len", "-4"], "use 1 or more"),
        (["--output-len", "x"], "not a whole number"),
        (["--input-len", "2000", "--output-len", "100"], "exceeds tiny's 2048 positions"),
        (["--model", "nope"], "infertop presets"),
        (["--dtype", "float8"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args: list[str], needle: str) -> None:
    p = infertop("bench", "--model", "tiny", *args)
    assert p.returncode == 2, (p.stdout, p.stderr)
    errors = [line for line in p.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and needle in errors[0], p.stderr
    assert "Traceback" not in p.stderr


def test_presets_lists_shapes_and_counts() -> None:
    p = infertop("presets")
    assert p.returncode == 0
    for name in (
        "tiny",
        "qwen2.5-0.5b",
        "qwen3-0.6b",
        "llama-3.2-1b",
        "llama-3.1-8b",
        "mistral-7b",
    ):
        assert name in p.stdout
    assert "8.03B" in p.stdout and "(default)" in p.stdout


def test_bench_loads_a_local_directory(hf_models, tmp_path: Path) -> None:
    _, directory = hf_models["qwen2"]
    out = tmp_path / "r.jsonl"
    p = infertop(
        "bench",
        "--model",
        str(directory),
        "--dtype",
        "bfloat16",
        "--input-len",
        "8",
        "--output-len",
        "4",
        "--result-filename",
        str(out),
    )
    assert p.returncode == 0, p.stderr
    assert json.loads(out.read_text())["batch_size"] == 1
    assert "bfloat16" in p.stdout


def test_profile_captures_every_sweep_point_in_an_extra_run_kept_out_of_the_result_file(
    tmp_path: Path,
) -> None:
    """bench_one_batch captures every sweep point; infertop does it in a run after the timed
    one, so the result file holds the timed runs only, free of profiler overhead."""
    out = tmp_path / "runs.jsonl"
    p = infertop(
        "bench", "--model", "tiny", "--batch-size", "1", "2", "--input-len", "8",
        "--output-len", "4", "--no-warmup", "--result-filename", str(out),
        "--trace-dir", str(tmp_path / "traces"), "--profile", "--profile-activities", "cpu",
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    head = next(k for k, line in enumerate(lines) if line.split()[:2] == ["batch", "input"])
    rows = [line.split() for line in lines[head + 1 : head + 5]]
    assert [(r[0], r[-1] == "captured") for r in rows] == [
        ("1", False), ("1", True), ("2", False), ("2", True)
    ]  # fmt: skip
    assert "captured: 2 runs ran (in part) under the profiler" in p.stdout
    assert "2 results appended to" in p.stdout
    kept = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["batch_size"] for r in kept] == [1, 2]
    # the file holds the timed runs' figures, not the captured runs'
    assert [f"{r['prefill_latency'] * 1e3:.2f}" for r in kept] == [rows[0][3], rows[2][3]]
    # --profile-stage all: a prefill file and a decode file per point (SGLang's default:
    # one decode step, at output_len // 2)
    assert p.stdout.count("Trace saved (torch, 1 prefill step") == 2
    assert p.stdout.count("Trace saved (torch, 1 decode step") == 2
    assert trace_shapes(tmp_path / "traces") == [
        "default-decode-bs1-in8-out4", "default-decode-bs2-in8-out4",
        "default-prefill-bs1-in8-out4", "default-prefill-bs2-in8-out4",
    ]  # fmt: skip
    assert "Captured: ops, torch (8 files)" in p.stdout  # each trace and its op table


def trace_shapes(directory: Path) -> list[str]:
    """The torch traces' names without their time stamp and salt, sorted."""
    stamp = re.compile(r"-\d{8}-\d{6}-[0-9a-f]+\.pt\.trace\.json\.gz$")
    return sorted(stamp.sub("", f.name) for f in directory.glob("*.pt.trace.json.gz"))


def test_a_profile_that_captures_nothing_exits_2_and_says_why(tmp_path: Path) -> None:
    """MLX on Linux: Metal capture does nothing here (real MLX on the CPU)."""
    pytest.importorskip("mlx.core")
    import mlx.core as mx

    if mx.metal.is_available():
        pytest.skip("this test is for machines without Metal")
    common = ("bench", "--backend", "mlx", "--model", "tiny", "--batch-size", "1")
    shape = ("--input-len", "8", "--output-len", "4", "--trace-dir", str(tmp_path / "t"))
    out = ("--result-filename", str(tmp_path / "r.jsonl"), "--profile")
    p = infertop(*common, *shape, *out)
    assert p.returncode == 2, p.stderr
    assert "Not captured: Metal capture needs Apple silicon" in p.stderr
    assert "infertop bench: error: --profile captured nothing" in p.stderr
    assert "1 result appended to" in p.stdout  # the measured run is kept all the same
    assert not (tmp_path / "t").exists() or not any((tmp_path / "t").rglob("*.gputrace"))
    p = infertop(*common, *shape, *out, "--profile-activities", "timeline")
    assert p.returncode == 0, p.stderr
    assert "Captured: timeline (2 files)" in p.stdout  # prefill and decode
