"""SGLang's own bench_one_batch command lines, with `infertop bench` in place of
`python -m sglang.bench_one_batch` and the model path pointing at a local directory (no model
hub here): they run, and write the files SGLang's would.

The lines are copied from sgl-project/sglang at 0094415: the usage in
python/sglang/bench_one_batch.py's docstring, docs/developer_guide/benchmark_and_profiling.md,
and test_utils.run_bench_one_batch (which adds `--cuda-graph-max-bs 2`)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from infertop.engine.cli import main as cli_main

M = "meta-llama/Meta-Llama-3-8B-Instruct"  # replaced by the local directory
RUNS = {  # the line, then what it writes: result rows (b, i, o) and traces per stage
    "dummy weights": (
        f"--model-path {M} --load-format dummy",
        [(1, 1024, 16)],
        0,
    ),
    "sweep with a run name": (
        f"--model-path {M} --batch-size 1 12 14 --input-len 256 512 --output-len 32 256 "
        "--run-name test_run",
        [(b, i, o) for b in (1, 12, 14) for i in (256, 512) for o in (32, 256)],
        0,
    ),
    "profile a sweep": (
        f"--model-path {M} --batch-size 1 12 14 --input-len 256 512 --profile",
        [(b, i, 16) for b in (1, 12, 14) for i in (256, 512)],
        6,
    ),
    "benchmark_and_profiling.md": (
        f"--model-path {M} --batch 32 --input-len 1024 --output-len 10 --profile",
        [(32, 1024, 10)],
        1,
    ),
    "batch 32": (
        f"--model-path {M} --batch-size 32 --input-len 256 --output-len 32",
        [(32, 256, 32)],
        0,
    ),
}


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Llama with real (random) safetensors weights, small enough for a CPU, with the
    positions the lines ask for (1024 + 16)."""
    import torch
    import transformers

    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=512,
        max_position_embeddings=2048,
    )
    d = tmp_path_factory.mktemp("models") / "Meta-Llama-3-8B-Instruct"
    transformers.AutoModelForCausalLM.from_config(config).save_pretrained(d)
    return d


def bench_line(line: str, model: Path, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    argv = [str(model) if a == M else a for a in line.split()]
    return subprocess.run(
        [sys.executable, "-m", "infertop", "bench", *argv],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={**os.environ, **env},
    )


def trace_stems(directory: Path) -> list[str]:
    """`{prefix}-{stage}-bs{B}-in{I}-out{O}` of each torch trace, sorted."""
    stamp = re.compile(r"-\d{8}-\d{6}-[0-9a-f]+\.pt\.trace\.json\.gz$")
    return sorted(stamp.sub("", f.name) for f in directory.glob("*.pt.trace.json.gz"))


@pytest.mark.parametrize("case", list(RUNS))
def test_bench_one_batch_lines_run_and_write_what_sglang_writes(
    case: str, llama_dir: Path, tmp_path: Path
) -> None:
    line, shapes, profiled = RUNS[case]
    p = bench_line(line, llama_dir, tmp_path)
    assert p.returncode == 0, p.stderr
    rows = [json.loads(x) for x in (tmp_path / "result.jsonl").read_text().splitlines()]
    assert [(r["batch_size"], r["input_len"], r["output_len"]) for r in rows] == shapes
    name = "test_run" if "--run-name test_run" in line else "default"
    assert {r["run_name"] for r in rows} == {name}
    stems = trace_stems(tmp_path / "traces")
    if not profiled:
        assert stems == []
        return
    # every sweep point: a prefill file and a decode file (SGLang's --profile-stage all)
    assert stems == sorted(
        f"{name}-{stage}-bs{b}-in{i}-out{o}"
        for b, i, o in shapes
        for stage in ("prefill", "decode")
    )
    assert p.stdout.count("Trace saved (torch, 1 prefill step") == profiled
    assert p.stdout.count("Trace saved (torch, 1 decode step") == profiled


def test_profiler_dir_from_sglangs_variable(llama_dir: Path, tmp_path: Path) -> None:
    """export SGLANG_TORCH_PROFILER_DIR=/root/sglang/profile_log
    python -m sglang.bench_one_batch --model-path M --batch-size 1 --input-len 256 --profile"""
    line = f"--model-path {M} --batch-size 1 --input-len 256 --profile"
    p = bench_line(line, llama_dir, tmp_path, SGLANG_TORCH_PROFILER_DIR=str(tmp_path / "log"))
    assert p.returncode == 0, p.stderr
    assert trace_stems(tmp_path / "log") == [
        "default-decode-bs1-in256-out16",
        "default-prefill-bs1-in256-out16",
    ]
    assert not (tmp_path / "traces").exists()


def test_cuda_profiler_line_without_cuda_says_what_was_not_captured(
    llama_dir: Path, tmp_path: Path
) -> None:
    """nsys profile ... python -m sglang.bench_one_batch --model-path M --batch-size 1
    --input-len 256 --profile --profile-activities CUDA_PROFILER, on a machine with no CUDA:
    the runs are measured and kept, and the exit status says nothing was captured."""
    line = f"--model-path {M} --batch-size 1 --input-len 256 --profile"
    line += " --profile-activities CUDA_PROFILER"
    p = bench_line(line, llama_dir, tmp_path)
    assert p.returncode == 2
    assert "Not captured: " in p.stderr and "CUDA" in p.stderr
    assert len((tmp_path / "result.jsonl").read_text().splitlines()) == 1


@pytest.mark.parametrize(
    ("line", "flag"),
    [
        (f"--model-path {M} --correct", "--correctness-test"),
        (
            f"--batch-size 1 --input 128 --output 8 --cuda-graph-max-bs 2 --model-path {M}",
            "--cuda-graph-max-bs",
        ),
        (
            f"--model-path {M} --batch 32 --input-len 256 --output-len 32 --load-format dummy "
            '--json-model-override-args {"num_hidden_layers":1}',
            "--json-model-override-args",
        ),
    ],
)
def test_lines_with_flags_infertop_cannot_honour_are_one_line(
    line: str, flag: str, llama_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [str(llama_dir) if a == M else a for a in line.split()]
    assert cli_main(["bench", *argv]) == 2  # before anything loads
    (said,) = capsys.readouterr().err.strip().splitlines()
    assert said.startswith(f"infertop bench: error: {flag} is bench_one_batch's")
