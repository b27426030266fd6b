"""Which server this is: its kind, version, served model and context, and whether it has
Prometheus metrics. Probed once, before the screen opens (bad input is one line, status 2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from infertop.engine.backends.server.errors import status_error, transport_error
from infertop.engine.backends.server.target import ServerKind, ServerTarget
from infertop.engine.errors import UserError
from infertop.engine.events import EngineReady


@dataclass(frozen=True)
class ServerInfo:
    target: ServerTarget
    kind: ServerKind  # never "auto"
    version: str  # "" when the server does not say
    model: str  # the served model's name (/v1/models)
    max_model_len: int | None  # prompt + output tokens it accepts (None: not said)
    has_metrics: bool  # Prometheus /metrics with the kind's series

    @property
    def label(self) -> str:
        """ "vLLM 0.32.0", "SGLang 0.5.23", "OpenAI-compatible"."""
        name = {"vllm": "vLLM", "sglang": "SGLang"}.get(self.kind, "OpenAI-compatible")
        return f"{name} {self.version}".strip()


def server_ready(info: ServerInfo) -> EngineReady:
    """What the header shows: the served model, the server's kind and version, its URL."""
    return EngineReady(
        model_name=info.model,
        param_count=0,
        dtype="",
        device_name=info.target.url,
        backend=info.label,
        max_positions=info.max_model_len or 0,
        device_kind="server",
        server_kind=info.kind,
    )


def client(target: ServerTarget) -> httpx.Client:
    return httpx.Client(
        base_url=target.url, headers=target.headers(), timeout=target.timeout, trust_env=False
    )


def _get(http: httpx.Client, target: ServerTarget, path: str) -> httpx.Response:
    try:
        response = http.get(path)
    except httpx.HTTPError as e:
        raise transport_error(e, target, f"GET {path}") from None
    if response.status_code in (401, 403):
        raise status_error(response, target, f"GET {path}")
    return response


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def probe(target: ServerTarget) -> ServerInfo:
    """Ask the server what it is; a UserError naming the fix when it cannot be driven."""
    with client(target) as http:
        kind, version = _kind(http, target)
        models = _get(http, target, "/v1/models")
        if models.status_code != 200:
            raise UserError(
                f"{target.url} does not serve /v1/models ({models.status_code}); pass the root "
                "URL of a vLLM, SGLang or OpenAI-compatible server"
            )
        data = (_json(models) or {}).get("data") or []
        if not data:
            raise UserError(f"{target.url} serves no model (/v1/models is empty); load one")
        model = data[0]
        max_len = model.get("max_model_len") or model.get("context_length")
        has_metrics = kind != "openai" and _metrics_text(http, target, kind) is not None
        return ServerInfo(
            target, kind, version, str(model["id"]), int(max_len) if max_len else None, has_metrics
        )


def _kind(http: httpx.Client, target: ServerTarget) -> tuple[ServerKind, str]:
    wanted = target.kind
    if wanted in ("auto", "sglang"):
        info = _get(http, target, "/get_server_info")
        if info.status_code == 200 and isinstance(body := _json(info), dict):
            return "sglang", str(body.get("version", ""))
        if wanted == "sglang":
            raise UserError(
                f"{target.url} does not answer /get_server_info, so it is not SGLang; "
                "use --server-kind auto"
            )
    if wanted in ("auto", "vllm"):
        version = _get(http, target, "/version")
        body = _json(version) if version.status_code == 200 else None
        if isinstance(body, dict) and _metrics_text(http, target, "vllm") is not None:
            return "vllm", str(body.get("version", ""))
        if wanted == "vllm":
            raise UserError(
                f"{target.url} does not answer /version with vllm: metrics, so it is not vLLM; "
                "use --server-kind auto"
            )
    return "openai", ""


def _metrics_text(http: httpx.Client, target: ServerTarget, kind: str) -> str | None:
    response = _get(http, target, "/metrics")
    if response.status_code != 200 or f"{kind}:" not in response.text:
        return None
    return response.text
