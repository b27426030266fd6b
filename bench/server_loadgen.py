"""Is the load generator what is measured? 256 concurrent streams of 128 tokens against the
SGLang double (tests/doubles/sglang_server.py, in its own process), which stamps each chunk
with its own clock (`meta_info.e2e_latency`). Per token, the client's gap minus the server's
gap between the same two chunks is what the client side added.

    python bench/server_loadgen.py [--streams 256] [--tokens 128] [--interval 0.05]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import cpu_model  # noqa: E402
from infertop.engine.backends.server.dialects import ChunkCount, SglangDialect  # noqa: E402
from infertop.engine.backends.server.loadgen import async_client, stream_batch  # noqa: E402
from infertop.engine.backends.server.runner import Quiet  # noqa: E402
from infertop.engine.backends.server.target import ServerTarget  # noqa: E402


class StampingDialect(SglangDialect):
    """SGLang's dialect, also keeping (client time, server time) of every chunk."""

    def __init__(self) -> None:
        self.stamps: dict[str, list[tuple[float, float]]] = {}

    def count(self, chunk: dict[str, Any], seen: int) -> ChunkCount:
        meta = chunk.get("meta_info") or {}
        if "id" in meta:
            self.stamps.setdefault(meta["id"], []).append(
                (time.perf_counter(), float(meta["e2e_latency"]))
            )
        return super().count(chunk, seen)


def median(xs: list[float]) -> float:
    s = sorted(xs)
    return s[len(s) // 2]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--streams", type=int, default=256)
    p.add_argument("--tokens", type=int, default=128)
    p.add_argument("--interval", type=float, default=0.05, help="the double's token cadence")
    p.add_argument("--port", type=int, default=30419)
    a = p.parse_args()
    root = Path(__file__).resolve().parents[1]
    cmd = [
        sys.executable,
        "-m",
        "tests.doubles.sglang_server",
        "--port",
        str(a.port),
        "--token-interval",
        str(a.interval),
    ]
    server = subprocess.Popen(cmd, cwd=root, env=os.environ)
    try:
        url = f"http://127.0.0.1:{a.port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(url + "/health")
                break
            except OSError:
                time.sleep(0.1)
        dialect = StampingDialect()
        target = ServerTarget(url=url, timeout=60)

        async def run() -> float:
            async with async_client(target) as http:
                t0 = time.perf_counter()
                prompts: list[list[int] | str] = [[5] * 16 for _ in range(a.streams)]
                await stream_batch(http, target, dialect, "m", prompts, a.tokens, Quiet())
                return time.perf_counter() - t0

        wall = asyncio.run(run())
    finally:
        server.terminate()
    added = [
        (c1 - c0) - (s1 - s0)
        for stamps in dialect.stamps.values()
        for (c0, s0), (c1, s1) in zip(stamps, stamps[1:], strict=False)
    ]
    print(f"machine: {cpu_model()}, {os.cpu_count()} CPUs (client and double share them)")
    print(
        f"{a.streams} streams x {a.tokens} tokens, a token every {a.interval * 1e3:.0f} ms "
        f"per stream: {len(added)} gaps in {wall:.1f} s"
    )
    added.sort()
    print(
        f"client-side added per token: median {median(added) * 1e3:.3f} ms, "
        f"p99 {added[int(len(added) * 0.99)] * 1e3:.3f} ms"
    )


if __name__ == "__main__":
    main()
