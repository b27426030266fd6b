"""A stand-in for an SGLang 0.5.23 server, for the protocol infertop speaks to it (SGLang
needs a GPU; this machine has none).

Routes and request classes read from the sglang 0.5.23 wheel's source:
`srt/entrypoints/http_server.py` (/get_server_info and /server_info, /get_model_info and
/model_info, /generate, /flush_cache, /start_profile, /stop_profile; streaming chunks are
`data: <json>\\n\\n` ending with `data: [DONE]`, an error inside the stream is a
`{"error": {"message", "type", "code"}}` chunk), `srt/managers/io_struct.py` (ProfileReq:
the profile fields and their types; ProfileReqInput was renamed ProfileReq in 0.5.15),
`srt/sampling/sampling_params.py` (SamplingParams: unknown keys are refused since 0.5.22)
and `srt/observability/metrics_collector.py` (the `sglang:` series, exported here with
prometheus_client as SGLang does, only with --enable-metrics). It rejects every field and
type SGLang would reject, and a few more (unknown top-level /generate keys).

Tokens are produced without a model: `--token-interval` seconds apart (0: as fast as it
can), `--tokens-per-chunk` at a time (as SGLang's --stream-interval does). Faults for the
tests: `--fail-after N` (an error chunk after N tokens; with `--fail-once` in one stream
only, a fault the server survives), `--exit-after N` (the process dies after N tokens),
`--api-key KEY` (401 without it), `--first-token-delay S`.

    python -m tests.doubles.sglang_server --port 30000 [--enable-metrics] ...
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest

VERSION = "0.5.23"
SAMPLING_PARAMS = {  # SamplingParams' fields (srt/sampling/sampling_params.py)
    "max_new_tokens", "stop", "stop_token_ids", "stop_regex", "temperature", "top_p", "top_k",
    "min_p", "frequency_penalty", "presence_penalty", "repetition_penalty", "min_new_tokens",
    "n", "beam_width", "json_schema", "regex", "ebnf", "structural_tag", "ignore_eos",
    "skip_special_tokens", "spaces_between_special_tokens", "no_stop_trim", "stream_interval",
    "logit_bias", "sampling_seed", "custom_params", "watermark",
}  # fmt: skip
GENERATE_KEYS = {"text", "input_ids", "sampling_params", "stream", "rid", "return_logprob"}
# ProfileReq (srt/managers/io_struct.py): field -> accepted JSON types (None allowed where
# the field is Optional)
PROFILE_REQ: dict[str, tuple[type, ...]] = {
    "output_dir": (str, type(None)),
    "start_step": (int, type(None)),
    "num_steps": (int, type(None)),
    "activities": (list, type(None)),
    "profile_by_stage": (bool,),
    "with_stack": (bool, type(None)),
    "record_shapes": (bool, type(None)),
    "profile_id": (str, type(None)),
    "merge_profiles": (bool,),
    "profile_prefix": (str, type(None)),
    "profile_stages": (list, type(None)),
    "detailed_annotations": (bool,),
}
ACTIVITIES = {"CPU", "GPU", "MEM", "RPD", "CUDA_PROFILER", "XPU"}
BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)


def error_json(message: str, status: int) -> web.Response:
    return web.json_response({"error": {"message": message, "code": status}}, status=status)


class Double:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tokens_sent = 0
        self.requests = 0
        self.failures = 0  # streams that met --fail-after
        self.in_flight = 0
        self.profile: dict[str, Any] | None = None
        self.profile_steps = 0
        self.profiles_written: list[str] = []
        self.registry = CollectorRegistry()
        labels = ["model_name"]
        self.ttft = Histogram(
            "sglang:time_to_first_token_seconds",
            "TTFT",
            labels,
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.itl = Histogram(
            "sglang:inter_token_latency_seconds",
            "ITL",
            labels,
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.e2e = Histogram(
            "sglang:e2e_request_latency_seconds",
            "e2e",
            labels,
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.queue = Histogram(
            "sglang:queue_time_seconds", "queue", labels, buckets=BUCKETS, registry=self.registry
        )
        self.running = Gauge("sglang:num_running_reqs", "running", labels, registry=self.registry)
        self.waiting = Gauge("sglang:num_queue_reqs", "waiting", labels, registry=self.registry)
        self.usage = Gauge("sglang:token_usage", "usage", labels, registry=self.registry)

    # -- auth ---------------------------------------------------------------------------------
    @web.middleware
    async def auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        key = self.args.api_key
        if (
            key
            and request.path != "/health"
            and request.headers.get("Authorization") != f"Bearer {key}"
        ):
            return error_json("Unauthorized", 401)
        return await handler(request)

    # -- info ---------------------------------------------------------------------------------
    async def server_info(self, request: web.Request) -> web.Response:
        return web.json_response({"version": VERSION, "context_length": self.args.context})

    async def model_info(self, request: web.Request) -> web.Response:
        return web.json_response({"model_path": self.args.model, "is_generation": True})

    async def models(self, request: web.Request) -> web.Response:
        card = {"id": self.args.model, "object": "model", "owned_by": "sglang",
                "max_model_len": self.args.context}  # fmt: skip
        return web.json_response({"object": "list", "data": [card]})

    async def health(self, request: web.Request) -> web.Response:
        return web.Response(text="")

    async def metrics(self, request: web.Request) -> web.Response:
        if not self.args.enable_metrics:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=generate_latest(self.registry), content_type="text/plain")

    # -- generate -----------------------------------------------------------------------------
    async def generate(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        unknown = set(body) - GENERATE_KEYS
        if unknown:
            return error_json(f"unknown field(s) {sorted(unknown)}", 400)
        params = body.get("sampling_params") or {}
        bad = set(params) - SAMPLING_PARAMS
        if bad:
            return error_json(f"sampling_params: unknown field(s) {sorted(bad)}", 400)
        ids = body.get("input_ids")
        if not isinstance(ids, list) or not all(isinstance(t, int) for t in ids):
            return error_json("input_ids must be a list of token ids", 400)
        n_out = int(params.get("max_new_tokens", 128))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        if len(ids) + n_out > self.args.context:  # tokenizer_manager's ValueError, in-stream
            msg = (f"Requested token count exceeds the model's maximum context length of "
                   f"{self.args.context} tokens. You requested a total of {len(ids) + n_out} "
                   f"tokens: {len(ids)} tokens from the input messages and {n_out} tokens for "
                   "the completion. Please reduce the number of tokens in the input messages "
                   "or the completion to fit within the limit.")  # fmt: skip
            err = {"error": {"message": msg, "type": "invalid_request_error", "code": 400}}
            await response.write(b"data: " + json.dumps(err).encode() + b"\n\n")
            await response.write(b"data: [DONE]\n\n")
            return response
        await self._stream(response, len(ids), n_out)
        return response

    async def _stream(self, response: web.StreamResponse, n_in: int, n_out: int) -> None:
        a, model = self.args, self.args.model
        t0 = time.monotonic()
        self.requests += 1
        rid = f"req-{self.requests}"
        self.in_flight += 1
        self.running.labels(model).set(self.in_flight)
        self.queue.labels(model).observe(0.0)
        try:
            if a.first_token_delay:
                await asyncio.sleep(a.first_token_delay)
            k, last = 0, t0
            while k < n_out:
                step = min(a.tokens_per_chunk if k else 1, n_out - k)
                if a.token_interval and k:
                    await asyncio.sleep(a.token_interval * step)
                k += step
                now = time.monotonic()
                (self.ttft if k == step else self.itl).labels(model).observe(now - last)
                last = now
                self.tokens_sent += step
                if self.profile is not None:
                    self.profile_steps += step
                if a.exit_after and self.tokens_sent >= a.exit_after:
                    os._exit(3)  # the server dies mid-stream
                if (
                    a.fail_after
                    and self.tokens_sent >= a.fail_after
                    and not (a.fail_once and self.failures)
                ):
                    self.failures += 1
                    err = {
                        "error": {
                            "message": "CUDA error: an illegal memory access was encountered",
                            "type": "internal_error",
                            "code": 500,
                        }
                    }
                    await response.write(b"data: " + json.dumps(err).encode() + b"\n\n")
                    break
                chunk = {"text": " w" * k, "output_ids": [7] * k,
                         "meta_info": {"id": rid, "prompt_tokens": n_in, "completion_tokens": k,
                                       "finish_reason": None if k < n_out else {"type": "length"},
                                       "e2e_latency": now - t0}}  # fmt: skip
                await response.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            await response.write(b"data: [DONE]\n\n")
            self.e2e.labels(model).observe(time.monotonic() - t0)
        finally:
            self.in_flight -= 1
            self.running.labels(model).set(self.in_flight)

    async def flush_cache(self, request: web.Request) -> web.Response:
        if self.in_flight:
            return web.Response(status=400, text="Flush cache failed.\n")
        return web.Response(text="Cache flushed.\n")

    # -- profiler -----------------------------------------------------------------------------
    async def start_profile(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        for key, value in (body or {}).items():
            if key not in PROFILE_REQ:
                return error_json(f"ProfileReq: unknown field {key!r}", 400)
            if not isinstance(value, PROFILE_REQ[key]) or (
                isinstance(value, bool) and bool not in PROFILE_REQ[key]
            ):
                return error_json(f"ProfileReq.{key}: wrong type {type(value).__name__}", 400)
        bad = set(body.get("activities") or []) - ACTIVITIES
        if bad:
            return error_json(f"unknown activities {sorted(bad)}", 400)
        if self.profile is not None:
            return web.Response(status=500, text="Profiling is already in progress.\n")
        self.profile, self.profile_steps = dict(body or {}), 0
        return web.Response(text="Start profiling.\n")

    async def stop_profile(self, request: web.Request) -> web.Response:
        if self.profile is None:
            return web.Response(status=500, text="Profiling is not in progress.\n")
        req, self.profile = self.profile, None
        out = Path(req.get("output_dir") or os.environ.get("SGLANG_TORCH_PROFILER_DIR", "/tmp"))
        out.mkdir(parents=True, exist_ok=True)
        name = f"{req.get('profile_prefix') or ''}{time.time():.0f}-TP-0.trace.json.gz"
        events = [{"ph": "X", "cat": "cpu_op", "name": op, "ts": n, "dur": 10 * (n + 1)}
                  for n, op in enumerate(["aten::mm", "aten::addmm", "aten::softmax"])]  # fmt: skip
        with gzip.open(out / name, "wt") as f:
            json.dump({"traceEvents": events, "steps": self.profile_steps}, f)
        self.profiles_written.append(str(out / name))
        return web.Response(text="Stop profiling. This will take some time.\n")

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.auth])
        r = app.router
        for path in ("/get_server_info", "/server_info"):
            r.add_get(path, self.server_info)
        for path in ("/get_model_info", "/model_info"):
            r.add_get(path, self.model_info)
        r.add_get("/v1/models", self.models)
        r.add_get("/health", self.health)
        r.add_get("/metrics", self.metrics)
        r.add_post("/generate", self.generate)
        r.add_route("*", "/flush_cache", self.flush_cache)
        r.add_route("*", "/start_profile", self.start_profile)
        r.add_route("*", "/stop_profile", self.stop_profile)
        return app


def main() -> None:
    p = argparse.ArgumentParser(prog="sglang double")
    p.add_argument("--port", type=int, default=30000)
    p.add_argument("--model", default="double-llama")
    p.add_argument("--context", type=int, default=4096)
    p.add_argument("--enable-metrics", action="store_true")
    p.add_argument("--token-interval", type=float, default=0.002)
    p.add_argument("--tokens-per-chunk", type=int, default=1)
    p.add_argument("--first-token-delay", type=float, default=0.0)
    p.add_argument("--fail-after", type=int, default=0)
    p.add_argument("--fail-once", action="store_true", help="only one stream meets the fault")
    p.add_argument("--exit-after", type=int, default=0)
    p.add_argument("--api-key", default=None)
    args = p.parse_args()
    web.run_app(Double(args).app(), host="127.0.0.1", port=args.port, print=None,
                access_log=None)  # fmt: skip


if __name__ == "__main__":
    main()
