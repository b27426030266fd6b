"""`infertop bench --server` against the SGLang double: the rows, the counts the server
saw, and every fault of the issue as one line naming the fix, completed runs kept."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

from infertop.engine.backends.server.metrics import parse_metrics
from infertop.engine.events import RESULT_KEYS
from tests.helpers import infertop_bench
from tests.server.conftest import SglangFactory, free_port

bench = infertop_bench


def ttft_count(url: str) -> float:
    text = urllib.request.urlopen(url + "/metrics").read().decode()
    ttft = parse_metrics(text, "sglang")[0].get("ttft")
    return ttft.count if ttft else 0.0


def test_sweep_writes_rows_and_the_server_saw_each_request(
    sglang: SglangFactory, tmp_path: Path
) -> None:
    # a token every 20 ms: at the double's default 2 ms, a client starved for longer (CI's
    # busy guest, beside the other test worker) read the tokens bunched, its gaps near 0
    server = sglang("--enable-metrics", "--token-interval", "0.02")
    before = ttft_count(server.url)
    out = tmp_path / "r.jsonl"
    r = bench(
        "--server",
        server.url,
        "--batch-size",
        "1",
        "4",
        "--input-len",
        "32",
        "--output-len",
        "8",
        "--result-filename",
        str(out),
        "--trace-dir",
        str(tmp_path / "t"),
    )
    assert r.returncode == 0, r.stderr
    assert "on SGLang 0.5.23 at " + server.url in r.stdout
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(row["batch_size"], row["input_len"], row["output_len"]) for row in rows] == [
        (1, 32, 8),
        (4, 32, 8),
    ]
    assert all(list(row) == list(RESULT_KEYS) for row in rows)
    for row in rows:
        assert 0.01 < row["median_decode_latency"] < 0.2
        assert row["total_latency"] >= row["prefill_latency"]
    # warmup (batch 1) + the two runs: each request reached the server once
    assert ttft_count(server.url) - before == 1 + 1 + 4


def test_bad_urls_and_keys_are_one_line(sglang: SglangFactory, tmp_path: Path) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    cases = {
        nobody: "start the server or fix --server",
        "ftp://127.0.0.1:1": "http:// or https://",
        "localhost:8000": "http:// or https://",
    }
    server = sglang("--api-key", "s3cret")
    cases[server.url + "/generate"] = "root URL"
    for url, fix in cases.items():
        r = bench("--server", url, "--trace-dir", str(tmp_path / "t"))
        assert r.returncode == 2, (url, r.stderr)
        assert fix in r.stderr and len(r.stderr.strip().splitlines()) <= 2, r.stderr
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    r = bench("--server", server.url, env=env)
    assert r.returncode == 2 and "pass --api-key KEY or set $OPENAI_API_KEY" in r.stderr
    r = bench("--server", server.url, "--api-key", "wrong", env=env)
    assert r.returncode == 2 and "the key was refused" in r.stderr
    r = bench(
        "--server",
        server.url,
        "--input-len",
        "8",
        "--output-len",
        "4",
        "--trace-dir",
        str(tmp_path / "t"),
        env={**env, "OPENAI_API_KEY": "s3cret"},
    )
    assert r.returncode == 0, r.stderr


def test_flags_that_do_not_apply_and_too_long_prompts(sglang: SglangFactory) -> None:
    server = sglang("--context", "64")
    r = bench("--server", server.url, "--model", "tiny")
    assert r.returncode == 2 and "--model does not apply with --server" in r.stderr
    r = bench("--server", server.url, "--input-len", "60", "--output-len", "8")
    assert r.returncode == 2
    assert "exceeds the server's context of 64 tokens" in r.stderr
    assert "use shorter lengths" in r.stderr


def test_faults_mid_run_keep_the_completed_runs(sglang: SglangFactory, tmp_path: Path) -> None:
    # warmup 8 tokens, then 8 per run: the third run meets the fault at token 30
    for fault, line in (
        ("--fail-after", "failed mid-stream: CUDA error: an illegal memory access"),
        ("--exit-after", "closed the connection"),
    ):
        server = sglang(fault, "30")
        out = tmp_path / f"{fault}.jsonl"
        r = bench(
            "--server",
            server.url,
            "--batch-size",
            "1",
            "1",
            "1",
            "--input-len",
            "8",
            "--output-len",
            "8",
            "--result-filename",
            str(out),
            "--trace-dir",
            str(tmp_path / "t"),
        )
        assert r.returncode == 1, r.stderr
        assert line in r.stderr
        assert len(out.read_text().splitlines()) == 2  # the two completed runs


def test_a_first_token_slower_than_the_timeout(sglang: SglangFactory, tmp_path: Path) -> None:
    server = sglang("--first-token-delay", "3")
    r = bench(
        "--server",
        server.url,
        "--server-timeout",
        "0.5",
        "--input-len",
        "8",
        "--output-len",
        "4",
        "--trace-dir",
        str(tmp_path / "t"),
    )
    assert r.returncode == 1
    assert "sent no token for 0.5 s" in r.stderr and "raise --server-timeout" in r.stderr
