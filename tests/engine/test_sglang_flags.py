"""bench_one_batch's flag names in `infertop bench`: the ones infertop honours mean what they
mean in SGLang (--model-path, --load-format dummy, --dtype auto, --profile-activities CPU GPU,
--profile-filename-prefix, --profile-record-shapes off by default, no decode keys at output
length 1); the ones it cannot honour get one line saying so and what to use instead."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from infertop.engine.cli import main as cli_main
from infertop.engine.events import RESULT_KEYS
from tests.engine.test_bench_cli import infertop

# a Llama's config.json alone: --load-format dummy needs nothing else (as in SGLang)
CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 512,
    "max_position_embeddings": 2048,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "tie_word_embeddings": False,
}


@pytest.fixture
def config_only(tmp_path: Path) -> Path:
    d = tmp_path / "Llama-tiny"
    d.mkdir()
    (d / "config.json").write_text(json.dumps(CONFIG))
    return d


def test_model_path_dummy_weights_dtype_auto_and_no_decode_keys_at_output_1(
    config_only: Path, tmp_path: Path
) -> None:
    out = tmp_path / "r.jsonl"
    shape = ("--batch-size", "2", "--input-len", "16", "--output-len", "1", "4")
    p = infertop(
        "bench", "--model-path", str(config_only), "--load-format", "dummy", "--dtype", "auto",
        *shape, "--result-filename", str(out), "--trace-dir", str(tmp_path / "t"),
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "float32" in p.stdout  # auto
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["output_len"] for r in rows] == [1, 4]
    # SGLang leaves the decode keys out when there is no decode step, not null
    assert tuple(rows[0]) == tuple(
        k for k in RESULT_KEYS if k not in ("median_decode_latency", "median_decode_throughput")
    )
    assert tuple(rows[1]) == RESULT_KEYS
    # without dummy, the same directory needs its weights: one line
    p = infertop("bench", "--model-path", str(config_only), "--trace-dir", str(tmp_path / "t"))
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_sglang_profile_flags(tmp_path: Path) -> None:
    traces = tmp_path / "t"
    common = ("bench", "--model", "tiny", "--input-len", "8", "--output-len", "4")
    profile = ("--profile", "--profile-activities", "CPU", "--profile-stage", "prefill")
    p = infertop(*common, *profile, "--profile-filename-prefix", "sgl", "--trace-dir", str(traces))
    assert p.returncode == 0, p.stderr
    (trace,) = traces.glob("sgl-prefill-*.pt.trace.json.gz")  # the prefix, SGLang's name
    assert not has_shapes(trace)  # --profile-record-shapes is off unless given, as in SGLang
    p = infertop(
        *common, *profile, "--profile-prefix", "shp", "--profile-record-shapes",
        "--trace-dir", str(traces),
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    (trace,) = traces.glob("shp-prefill-*.pt.trace.json.gz")
    assert has_shapes(trace)


def has_shapes(trace: Path) -> bool:
    with gzip.open(trace, "rt") as f:
        events = json.load(f)["traceEvents"]
    return any("Input Dims" in e.get("args", {}) for e in events)


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--tp", "2"], "--tp"),
        (["--tp-size", "2"], "--tp-size"),
        (["--correct"], "--correctness-test"),
        (["--cut-len", "4"], "--cut-len"),
        (["--mem-frac", "0.1"], "--mem-fraction-static"),
        (["--cuda-graph-max-bs", "2"], "--cuda-graph-max-bs"),
        (["--disable-cuda-graph"], "--disable-cuda-graph"),
        (["--attention-backend", "intel_amx"], "--attention-backend"),
        (["--json-model-override-args", '{"num_hidden_layers": 1}'], "--json-model-override-args"),
    ],
)
def test_flags_infertop_cannot_honour_get_one_line(
    args: list[str], flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["bench", "--model", "tiny", *args]) == 2  # before anything loads
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"infertop bench: error: {flag} is bench_one_batch's")
    assert len(line.split("cannot honour it: ", 1)[1]) > 20  # and what to do instead


def test_xpu_activity_is_one_line() -> None:
    p = infertop("bench", "--model", "tiny", "--profile", "--profile-activities", "XPU")
    assert p.returncode == 2
    (line,) = p.stderr.strip().splitlines()
    assert "XPU" in line and "use CPU, GPU" in line
