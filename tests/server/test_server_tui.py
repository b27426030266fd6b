"""The live screen driving a server (the SGLang double): header, Server panel, `p` twice
for the server's profiler with its trace in the Traces view, and `q` cancelling the
requests in flight."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

from infertop.engine.backends.server.probe import probe
from infertop.engine.backends.server.target import ServerTarget
from infertop.engine.config import RunConfig
from infertop.engine.session import Session
from infertop.tui.app import InfertopApp
from infertop.tui.panels import HeaderBar, ServerPanel
from tests.helpers import until
from tests.server.conftest import SglangFactory, capture_on_the_server, sglang_running


def server_app(url: str, tmp_path: Path, output_len: int, **target: str) -> InfertopApp:
    t = ServerTarget(url=url, **target)  # type: ignore[arg-type]
    cfg = RunConfig(
        batch_sizes=(1, 4),
        input_lens=(16,),
        output_lens=(output_len,),
        server=t,
        trace_dir=str(tmp_path / "traces"),
    )
    return InfertopApp(Session(cfg, server=probe(t), own_process=True), refresh_hz=10)


async def test_live_screen_profiles_the_server(sglang: SglangFactory, tmp_path: Path) -> None:
    server_traces = tmp_path / "server-traces"
    server_traces.mkdir()
    server = sglang("--enable-metrics")
    app = server_app(server.url, tmp_path, 8, server_trace_dir=str(server_traces))
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: app.stats.batch(4).runs >= 2)
        header = app.query_one(HeaderBar).text
        assert "double-llama" in header and "SGLang 0.5.23" in header and server.url in header
        # quantiles, not blanks: they count the requests since the first scrape, and runs
        # that ended before it are not among them (a later scrape has newer ones)
        await until(pilot, lambda: "TTFT p50/p99" in app.query_one(ServerPanel).text)
        await until(pilot, lambda: "—/—" not in app.query_one(ServerPanel).text.splitlines()[0])
        offered, saved = await capture_on_the_server(pilot, app)
        # what SGLang's ProfileReq records; infertop's own timeline is not offered here
        assert offered == ["server CPU ops (SGLang's torch profiler)", "server GPU kernels"]
        assert Path(saved[0].path).parent == server_traces
        assert saved[0].top_ops[0][0] == "aten::softmax"  # parsed from the server's trace
        await pilot.press("q")


async def test_quit_cancels_the_requests_in_flight(sglang: SglangFactory, tmp_path: Path) -> None:
    server = sglang("--enable-metrics", "--token-interval", "0.2")
    app = server_app(server.url, tmp_path, 200)

    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: sglang_running(server.url) >= 1)
        child = app.session.child  # type: ignore[attr-defined]
        await pilot.press("q")
    assert child is not None and child.process.wait(10) == 0  # the load generator's process
    deadline = time.monotonic() + 10
    while sglang_running(server.url) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sglang_running(server.url) == 0  # the double saw every stream closed
    assert json.loads(urllib.request.urlopen(server.url + "/get_server_info").read())["version"]


async def test_space_retries_after_a_fault_the_server_survives(
    sglang: SglangFactory, tmp_path: Path
) -> None:
    # 8 tokens per request: the warmup and the first run (bs 1) finish before token 20
    server = sglang("--fail-after", "20", "--fail-once")
    app = server_app(server.url, tmp_path, 8)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.state == "error")
        assert app.error is not None and "CUDA error: an illegal memory access" in app.error.message
        before = list(app.stats.results)
        assert before  # measured before the fault, and still on the screen
        await pilot.press("space")
        await until(pilot, lambda: len(app.stats.results) > len(before))  # it ran again
        assert list(app.stats.results)[: len(before)] == before and app.state == "running"
        await pilot.press("q")
