"""Helpers shared by the tests: waiting on a condition, the app on the recorded event stream,
`infertop bench` in a fresh process, one capture on the tiny preset."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from infertop.engine.channel import EventQueue
from infertop.engine.commands import StartProfile
from infertop.engine.config import RunConfig
from infertop.engine.events import DecodeStep, Event, ProfileStarted
from infertop.engine.profiling.request import CaptureRequest
from infertop.engine.runner import Runner
from infertop.tui.app import InfertopApp
from tests.replay import DATA, FixedSampler, ReplaySession, from_json


class HeldInCapture(EventQueue):
    """A real EventQueue that holds the engine thread inside a capture, after `steps` of its
    decode steps (0: as soon as it starts), until `release` is set. `tiny`'s fused decode
    step takes ~0.1 ms: a capture can start, reach its cap and stop between two of the
    app's 10 Hz drains, and a test would never see it record."""

    def __init__(self, steps: int = 0) -> None:
        super().__init__()
        self.release = threading.Event()
        self.steps = steps
        self.captured: int | None = None  # decode steps since the capture started

    def put(self, ev: Event) -> None:
        super().put(ev)
        if isinstance(ev, ProfileStarted):
            self.captured = 0
        elif isinstance(ev, DecodeStep) and ev.profiled and self.captured is not None:
            self.captured += 1
        else:
            return
        if self.captured == self.steps:
            self.release.wait(60)


async def until(pilot: Pilot[int], pred: Callable[[], object], timeout: float = 60.0) -> None:
    """Wait (letting the app run) until `pred()` holds; fail after `timeout` seconds."""
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, "condition not met in time"
        await pilot.pause(0.05)


def infertop_bench(
    *args: str,
    env: Mapping[str, str] | None = None,
    prefix: Sequence[str] = (),
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """`infertop bench ARGS` in a fresh process (after `prefix`, e.g. prlimit), its output
    captured; `env` replaces the environment (default: this one)."""
    return subprocess.run(
        [*prefix, sys.executable, "-m", "infertop", "bench", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ if env is None else env,
    )


def replay_app() -> InfertopApp:
    """The app on tests/data/tiny_events.json: no engine, a deterministic picture."""
    session = ReplaySession(from_json(DATA.read_text()))
    return InfertopApp(session, refresh_hz=4, sampler=FixedSampler(), start_worker=False)


def fail_decode_on(engine: Any) -> threading.Event:
    """Make `engine.decode` raise RuntimeError("boom in decode") while the returned event is
    set (an engine error on demand, with the real engine otherwise)."""
    fail = threading.Event()
    real_decode = engine.decode

    def decode(tokens: Any, pos: int) -> Any:
        if fail.is_set():
            raise RuntimeError("boom in decode")
        return real_decode(tokens, pos)

    engine.decode = decode
    return fail


def run_capture(
    engine: Any, trace_dir: Path, request: CaptureRequest, output_len: int = 8
) -> list[Event]:
    """One run of batch 2, input 8 on `engine`, with `request` armed as the live screen's
    `p` arms it (before the first step); its events."""
    events: list[Event] = []
    cfg = RunConfig(
        model="tiny",
        batch_sizes=(2,),
        input_lens=(8,),
        output_lens=(output_len,),
        trace_dir=str(trace_dir),
        warmup=False,
    )
    runner = Runner(engine, cfg, events.append)
    runner.send(StartProfile(request))
    runner.run()
    return events
