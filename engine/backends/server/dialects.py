"""What each server kind wants in a streaming request, and how its chunks count tokens.

vLLM: `/v1/completions` with a token-id prompt, `min_tokens` and `ignore_eos`, and usage in
every chunk (`continuous_usage_stats`). SGLang: `/generate` with `input_ids`; every chunk's
`meta_info.completion_tokens` is cumulative. Plain OpenAI-compatible servers (mlx_lm.server,
llama.cpp, TGI): a text prompt, one token per content chunk, usage at the end."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infertop.engine.backends.server.target import ServerKind


class StreamError(Exception):
    """The server sent an error inside the stream (the message is its own)."""


@dataclass(frozen=True)
class StreamRequest:
    path: str
    body: dict[str, Any]


@dataclass(frozen=True)
class ChunkCount:
    """What one chunk says: completion tokens so far (cumulative), and the prompt's length
    when the chunk carries usage."""

    completion_tokens: int
    prompt_tokens: int | None = None


def _error_in(chunk: dict[str, Any]) -> None:
    err = chunk.get("error")
    if err is None and chunk.get("object") == "error":
        err = chunk
    if err is not None:
        message = err.get("message", err) if isinstance(err, dict) else err
        raise StreamError(" ".join(str(message).split()))


class Dialect:
    kind: ServerKind = "openai"
    token_ids = False  # prompts go as token ids (else text)

    def request(self, model: str, prompt: list[int] | str, output_len: int) -> StreamRequest:
        return StreamRequest(
            "/v1/completions",
            {
                "model": model,
                "prompt": prompt,
                "max_tokens": output_len,
                "temperature": 0.0,
                "ignore_eos": True,  # vLLM, SGLang, llama.cpp; others ignore it
                "stream": True,
                "stream_options": {"include_usage": True},
            },
        )

    def count(self, chunk: dict[str, Any], seen: int) -> ChunkCount:
        """Tokens after this chunk, given `seen` before it: a chunk with text is one token;
        the final usage chunk (no choices) says the prompt's length."""
        _error_in(chunk)
        usage = chunk.get("usage") or {}
        prompt = usage.get("prompt_tokens")
        if chunk.get("choices"):
            return ChunkCount(seen + 1, prompt)
        return ChunkCount(seen, prompt)


class VllmDialect(Dialect):
    kind: ServerKind = "vllm"
    token_ids = True

    def request(self, model: str, prompt: list[int] | str, output_len: int) -> StreamRequest:
        req = super().request(model, prompt, output_len)
        req.body["min_tokens"] = output_len
        req.body["stream_options"] = {"include_usage": True, "continuous_usage_stats": True}
        return req

    def count(self, chunk: dict[str, Any], seen: int) -> ChunkCount:
        _error_in(chunk)
        usage = chunk.get("usage")
        if usage is None:  # an older vLLM without continuous usage: one token per chunk
            return super().count(chunk, seen)
        return ChunkCount(int(usage["completion_tokens"]), usage.get("prompt_tokens"))


class SglangDialect(Dialect):
    kind: ServerKind = "sglang"
    token_ids = True

    def request(self, model: str, prompt: list[int] | str, output_len: int) -> StreamRequest:
        return StreamRequest(
            "/generate",
            {
                "input_ids": prompt,
                "sampling_params": {
                    "max_new_tokens": output_len,
                    "min_new_tokens": output_len,
                    "ignore_eos": True,
                    "temperature": 0.0,
                },
                "stream": True,
            },
        )

    def count(self, chunk: dict[str, Any], seen: int) -> ChunkCount:
        _error_in(chunk)
        meta = chunk.get("meta_info") or {}
        return ChunkCount(int(meta.get("completion_tokens", seen)), meta.get("prompt_tokens"))


DIALECTS: dict[str, Dialect] = {
    "vllm": VllmDialect(),
    "sglang": SglangDialect(),
    "openai": Dialect(),
}
