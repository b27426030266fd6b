"""The sweep against a server: each run a static batch of B concurrent streaming requests
(engine/backends/server/loadgen.py), reported with the in-process runner's events and keys.

prefill_latency: from sending the batch until every request has its first token. Decode
steps: the inter-token gaps of all requests. total_latency: until the batch's last token."""

from __future__ import annotations

import asyncio
import queue
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from infertop.engine.backends.server.dialects import DIALECTS
from infertop.engine.backends.server.loadgen import Cancelled, Stream, async_client, stream_batch
from infertop.engine.backends.server.probe import ServerInfo, client
from infertop.engine.backends.server.profiler import ServerProfiler
from infertop.engine.backends.server.prompts import PromptMaker
from infertop.engine.commands import Command, SetSweep
from infertop.engine.config import RunConfig
from infertop.engine.errors import UserError
from infertop.engine.events import (
    DecodeStep,
    LoadProgress,
    Notice,
    PrefillDone,
    RunDone,
    RunResult,
    RunStarted,
    StateChanged,
)
from infertop.engine.runner import Sink, StopRequested, SweepRunner


def check_server_shape(b: int, i: int, o: int, info: ServerInfo) -> None:
    """A UserError naming the fix when the server's context cannot hold a shape."""
    limit = info.max_model_len
    if limit is not None and i + o > limit:
        raise UserError(
            f"input {i} + output {o} exceeds the server's context of {limit} tokens "
            f"({info.model}); use shorter lengths"
        )


class LiveRun:
    """Turns a batch's arrivals into the runner's events as they happen: the decode steps
    that arrive before the last first token wait for the PrefillDone."""

    def __init__(self, runner: ServerRunner, run: int, b: int, i: int, t0: float) -> None:
        self.runner, self.run, self.b, self.i, self.t0 = runner, run, b, i, t0
        self.firsts = 0
        self.prefill: float | None = None
        self.waiting: list[DecodeStep] = []
        self.batch_steps = 0  # the furthest step any request has reached
        self.captured = False

    def recording(self) -> bool:
        rec = self.runner.profiler.recording
        self.captured |= rec
        return rec

    def first_token(self, index: int, at: float) -> None:
        self.firsts += 1
        if self.firsts < self.b:
            return
        self.prefill = at - self.t0
        self.runner.prefills_done += 1
        sink = self.runner.sink
        sink(PrefillDone(self.run, self.b, self.i, self.prefill, self.recording()))
        for ev in self.waiting:
            sink(ev)
        self.waiting = []

    def gaps(self, index: int, gaps: list[float], tokens: int) -> None:
        rec = self.recording()
        first_step = tokens - len(gaps)  # token n (from 2) ends decode step n - 1
        for k, gap in enumerate(gaps):
            step = first_step + k
            ev = DecodeStep(self.run, self.b, step, self.i + step - 1, gap, rec)
            if self.prefill is None:
                self.waiting.append(ev)
            else:
                self.runner.sink(ev)
            self.runner.steps_done += 1
        while self.batch_steps < tokens - 1:
            self.batch_steps += 1
            if rec:
                self.runner.profiler.count_step()


class Quiet:
    """A listener for untimed batches (warmup, prompt calibration)."""

    def first_token(self, index: int, at: float) -> None:
        pass

    def gaps(self, index: int, gaps: list[float], tokens: int) -> None:
        pass


class ServerRunner(SweepRunner):
    profiles_each_point = False  # the server's profiler picks its own steps

    def __init__(
        self,
        info: ServerInfo,
        cfg: RunConfig,
        sink: Sink,
        commands: queue.SimpleQueue[Command] | None = None,
        repeat: bool = False,  # no out-of-memory pause: the server has its own memory
    ) -> None:
        self.info = info
        self.dialect = DIALECTS[info.kind]
        self.prompts = PromptMaker(cfg.seed)
        self.shape = (cfg.batch_sizes[0], cfg.input_lens[0], cfg.output_lens[0])
        self._words: dict[int, int] = {}  # input_len -> words of text that make it (openai)
        self._said: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._http: httpx.AsyncClient | None = None
        profiler = ServerProfiler(sink, info, lambda: self.shape)
        super().__init__(cfg, sink, profiler, commands, repeat)
        self.profiler: ServerProfiler

    def checked_sweep(self, cmd: SetSweep) -> RunConfig:
        new = cmd.applied_to(self.cfg)
        for b, i, o in new.sweep():
            check_server_shape(b, i, o, self.info)
        return new

    def run(self) -> list[RunResult]:
        self._flush_cache()
        try:
            return super().run()
        finally:
            self._close()
            if not self.repeat:  # bench: the server's export is part of the command
                self.profiler.join()

    # -- untimed batches ---------------------------------------------------------------------
    def warmup(self) -> None:
        self.sink(StateChanged("warming up"))
        b, i, o = self.cfg.sweep()[0]
        o = min(o, 16)
        self.sink(LoadProgress("warming up", 0, o))
        try:
            self._stream(self._prompts(b, i), o, Quiet())
        except Cancelled:  # paused during the warmup: the runs start on resume
            return
        self.sink(LoadProgress("warming up", o, o))

    def _flush_cache(self) -> None:
        """SGLang: empty the radix cache before a sweep (refused while requests run: fine)."""
        if self.info.kind != "sglang":
            return
        try:
            with client(self.info.target) as http:
                http.post("/flush_cache")
        except httpx.HTTPError:
            pass  # the first run says what is wrong with the server

    def _prompts(self, b: int, i: int) -> Sequence[list[int] | str]:
        if self.dialect.token_ids:
            return self.prompts.token_ids(b, i)
        if i not in self._words:
            self._words[i] = self._calibrate(i)
        return self.prompts.texts(b, self._words[i])

    def _calibrate(self, input_len: int) -> int:
        """Words of text the server counts as `input_len` prompt tokens (its usage block)."""
        words = input_len
        for _ in range(4):
            (s,) = self._stream(self.prompts.texts(1, words), 1, Quiet())
            if s.prompt_tokens is None or s.prompt_tokens == input_len:
                break
            words = max(1, words + input_len - s.prompt_tokens)
        return words

    # -- the timed run ----------------------------------------------------------------------
    def run_shape(self, b: int, i: int, o: int) -> RunResult | None:
        try:
            check_server_shape(b, i, o, self.info)
        except UserError as e:
            self.skip_once(b, i, o, str(e))
            return None
        self.shape = (b, i, o)
        self.profiler.wait_started()
        prompts = self._prompts(b, i)
        run = self.run_index
        self.sink(RunStarted(run, b, i, o))
        t0 = time.perf_counter()
        live = LiveRun(self, run, b, i, t0)
        try:
            streams = self._stream(prompts, o, live)
        except Cancelled:  # paused (a stop raised StopRequested)
            self.sink(Notice("paused: the batch in flight was cancelled", "warning"))
            return None
        self._check_counts(streams, b, i, o)
        result = RunResult(
            self.cfg.run_name,
            b,
            i,
            o,
            max(s.first or t0 for s in streams) - t0,
            tuple(g for s in streams for g in s.gaps),
            live.captured,
            wall_latency=max(s.last for s in streams) - t0,
        )
        self.results.append(result)
        if self.cfg.result_filename and not result.captured:
            self._write_result(Path(self.cfg.result_filename), result)
        self.run_index += 1
        self.sink(RunDone(run, result))
        return result

    def _check_counts(self, streams: list[Stream], b: int, i: int, o: int) -> None:
        short = min(s.tokens for s in streams)
        if short != o:
            self._say_once(
                f"the server stopped a request at {short} of {o} tokens: it does not honour "
                "ignore_eos/min_tokens, so decode figures cover fewer steps"
            )
        counted = {s.prompt_tokens for s in streams if s.prompt_tokens is not None}
        if counted and counted != {i}:
            self._say_once(
                f"the server counted {'/'.join(map(str, sorted(counted)))} prompt tokens, "
                f"not {i} (its tokenizer); the prefill figures are for those"
            )

    def _say_once(self, line: str) -> None:
        if line not in self._said:
            self._said.add(line)
            self.sink(Notice(line, "warning"))

    def _interrupted(self) -> bool:
        """Polled while a batch streams: apply commands; True cancels the batch."""
        while not self.commands.empty():
            self._apply(self.commands.get_nowait())
        return self.stopping or self.paused

    def _stream(
        self,
        prompts: Sequence[list[int] | str],
        output_len: int,
        listener: LiveRun | Quiet,
    ) -> list[Stream]:
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.new_event_loop()
            self._http = async_client(self.info.target)
        assert self._http is not None
        coro = stream_batch(
            self._http,
            self.info.target,
            self.dialect,
            self.info.model,
            prompts,
            output_len,
            listener,
            self._interrupted,
            lambda: self.profiler.exporting,
        )
        try:
            return self._loop.run_until_complete(coro)
        except Cancelled:
            if self.stopping:
                raise StopRequested from None
            raise

    def _close(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            if self._http is not None:
                self._loop.run_until_complete(self._http.aclose())
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()
        self._http = None
