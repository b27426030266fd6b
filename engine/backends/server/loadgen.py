"""One static batch as concurrent streaming requests, timed on this side as SGLang's
bench_serving times them: the first token's arrival, and for a chunk carrying k tokens k
inter-token gaps of 1/k of its wait each (tokens counted from the server's usage or meta,
not from chunks). Extra tokens in a first chunk add no gap."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import httpx
from httpx_sse import SSEError, aconnect_sse

from infertop.engine.backends.server.dialects import Dialect, StreamError
from infertop.engine.backends.server.errors import status_error, transport_error
from infertop.engine.backends.server.target import ServerTarget
from infertop.engine.errors import UserError

Clock = Callable[[], float]


@dataclass
class Stream:
    """One request's timings (clock seconds)."""

    sent: float
    first: float | None = None
    last: float = 0.0
    tokens: int = 0  # completion tokens the server has counted so far
    prompt_tokens: int | None = None  # what the server says the prompt was
    gaps: list[float] = field(default_factory=list)


class Listener(Protocol):
    """Told of arrivals as they happen (in the event loop's thread)."""

    def first_token(self, index: int, at: float) -> None: ...

    def gaps(self, index: int, gaps: list[float], tokens: int) -> None: ...


class Cancelled(Exception):
    """The batch was cancelled from outside (pause, stop, quit)."""


def async_client(target: ServerTarget) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    # no read timeout here: stream_batch times the silence itself, so that a server which
    # stops serving while it exports a trace (vLLM does) is waited for, not an error
    return httpx.AsyncClient(
        base_url=target.url,
        headers=target.headers(),
        timeout=httpx.Timeout(target.timeout, read=None, pool=None),
        limits=limits,
        trust_env=False,
    )


def silence_error(target: ServerTarget) -> UserError:
    return UserError(
        f"{target.url} sent no token for {target.timeout:g} s; it is overloaded or stuck: "
        "raise --server-timeout or lower the batch size"
    )


async def stream_one(
    http: httpx.AsyncClient,
    target: ServerTarget,
    dialect: Dialect,
    model: str,
    prompt: list[int] | str,
    output_len: int,
    index: int,
    listener: Listener,
    heard: list[float],
    clock: Clock = time.perf_counter,
) -> Stream:
    """One streaming request; `heard[0]` is set to the clock at every event of any stream."""
    req = dialect.request(model, prompt, output_len)
    what = f"POST {req.path}"
    s = Stream(sent=clock())
    try:
        async with aconnect_sse(http, "POST", req.path, json=req.body) as source:
            response = source.response
            if response.status_code != 200:
                await response.aread()
                raise status_error(response, target, what)
            async for event in source.aiter_sse():
                now = heard[0] = clock()
                if event.data == "[DONE]":
                    break
                if not event.data:
                    continue
                count = dialect.count(json.loads(event.data), s.tokens)
                if count.prompt_tokens is not None:
                    s.prompt_tokens = int(count.prompt_tokens)
                new = count.completion_tokens - s.tokens
                if new <= 0:
                    continue
                if s.first is None:
                    s.first = now
                    listener.first_token(index, now)
                else:
                    gaps = [(now - s.last) / new] * new
                    s.gaps.extend(gaps)
                    listener.gaps(index, gaps, count.completion_tokens)
                s.tokens, s.last = count.completion_tokens, now
    except httpx.HTTPError as e:
        raise transport_error(e, target, what) from None
    except StreamError as e:
        raise UserError(f"{target.url} failed mid-stream: {e}") from None
    except (SSEError, ValueError) as e:  # not an event stream, or a chunk that is not JSON
        raise UserError(
            f"{target.url} sent a stream infertop cannot read ({e}); check --server-kind"
        ) from None
    return s


async def stream_batch(
    http: httpx.AsyncClient,
    target: ServerTarget,
    dialect: Dialect,
    model: str,
    prompts: Sequence[list[int] | str],
    output_len: int,
    listener: Listener,
    cancelled: Callable[[], bool] = lambda: False,
    excused: Callable[[], bool] = lambda: False,
    clock: Clock = time.perf_counter,
) -> list[Stream]:
    """All prompts at once; the first failure cancels the rest and is raised. `cancelled` is
    polled every 20 ms: when it says so, every request is cancelled (its connection closed,
    which aborts it on the server) and Cancelled is raised. No event from any stream for
    target.timeout seconds is an error, unless `excused()` (the server is exporting a trace)."""
    heard = [clock()]
    tasks = [
        asyncio.ensure_future(
            stream_one(http, target, dialect, model, p, output_len, n, listener, heard, clock)
        )
        for n, p in enumerate(prompts)
    ]
    pending: set[asyncio.Future[Stream]] = set(tasks)
    try:
        while pending:
            done, pending = await asyncio.wait(
                pending, timeout=0.02, return_when=asyncio.FIRST_EXCEPTION
            )
            for task in done:
                if task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            if pending and cancelled():
                raise Cancelled
            if excused():
                heard[0] = clock()
            elif pending and clock() - heard[0] > target.timeout:
                raise silence_error(target)
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
    return [t.result() for t in tasks]
