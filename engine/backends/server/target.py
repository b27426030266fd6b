"""Where the server is and how to reach it: the --server* flags, and the URL's checks."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from typing import Literal, get_args
from urllib.parse import urlsplit

from infertop.engine.errors import UserError
from infertop.engine.flags import flag, from_cli_args

ServerKind = Literal["auto", "vllm", "sglang", "openai"]
SERVER_KINDS: tuple[ServerKind, ...] = get_args(ServerKind)


def seconds_arg(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds; use e.g. 60"
        ) from None
    if not 0.1 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{value:g} is out of range; use 0.1 to 3600 seconds")
    return value


@dataclass(frozen=True)
class ServerTarget:
    """A running server to drive instead of a model loaded in this process."""

    url: str = field(
        default="",
        metadata=flag(
            "--server",
            "drive the vLLM, SGLang or OpenAI-compatible server at this root URL instead of "
            "loading a model (e.g. http://127.0.0.1:8000)",
            metavar="URL",
            default=None,
        ),
    )
    kind: ServerKind = field(
        default="auto",
        metadata=flag(
            "--server-kind",
            "auto: SGLang if it answers /get_server_info, vLLM if /version and vllm: metrics, "
            "else plain OpenAI-compatible",
            choices=SERVER_KINDS,
        ),
    )
    api_key: str | None = field(
        default=None,
        metadata=flag(
            "--api-key",
            "sent as a Bearer token (default: $OPENAI_API_KEY when set)",
            metavar="KEY",
        ),
    )
    server_trace_dir: str | None = field(
        default=None,
        metadata=flag(
            "--server-trace-dir",
            "where the server writes its traces (same host or a shared filesystem): new "
            "files there appear in the Traces view (default: none, the server's own setting)",
            metavar="DIR",
        ),
    )
    timeout: float = field(
        default=60.0,
        metadata=flag(
            "--server-timeout",
            "seconds to wait to connect, for a first token and between tokens",
            metavar="S",
            type=seconds_arg,
        ),
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", root_url(self.url))

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}


def root_url(url: str) -> str:
    """The server's root URL, or a UserError naming the fix (a trailing /v1 is dropped)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UserError(
            f"--server {url!r} is not an http:// or https:// URL; use e.g. http://127.0.0.1:8000"
        )
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[: -len("/v1")]
    if path:
        raise UserError(
            f"--server {url}: pass the server's root URL without the path {parts.path!r}, "
            f"e.g. {parts.scheme}://{parts.netloc}"
        )
    return f"{parts.scheme}://{parts.netloc}"


def server_target(args: argparse.Namespace) -> ServerTarget | None:
    """The --server* flags as a target; None without --server."""
    if args.url is None:
        return None
    if not args.api_key:
        args.api_key = os.environ.get("OPENAI_API_KEY") or None
    return from_cli_args(ServerTarget, args)
