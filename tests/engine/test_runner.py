"""The runner on the real tiny engine: events, commands between steps, a never-blocking sink."""

from __future__ import annotations

import threading
import time

import pytest

from infertop.engine.backends.torch.engine import TorchEngine
from infertop.engine.channel import EventQueue
from infertop.engine.commands import Pause, Resume, SetSweep, Stop
from infertop.engine.config import RunConfig
from infertop.engine.events import (
    DecodeStep,
    Notice,
    PrefillDone,
    RunDone,
    RunStarted,
    StateChanged,
)
from infertop.engine.runner import Runner


@pytest.fixture(scope="module")
def tiny() -> TorchEngine:
    return TorchEngine.load("tiny", device="cpu")


def test_one_run_emits_prefill_and_o_minus_1_decode_steps(tiny) -> None:
    events = []
    cfg = RunConfig(model="tiny", batch_sizes=(2,), input_lens=(10,), output_lens=(6,))
    results = Runner(tiny, cfg, events.append).run()
    kinds = [type(e) for e in events]
    assert kinds.count(RunStarted) == 1 and kinds.count(PrefillDone) == 1
    steps = [e for e in events if isinstance(e, DecodeStep)]
    assert [s.step for s in steps] == [1, 2, 3, 4, 5]
    assert [s.position for s in steps] == [10, 11, 12, 13, 14]
    (result,) = results
    assert result.decode_latencies == tuple(s.latency for s in steps)
    assert isinstance(events[-2], RunDone) and events[-1] == StateChanged("stopped")


def run_in_thread(runner: Runner) -> threading.Thread:
    t = threading.Thread(target=runner.run, daemon=True)
    t.start()
    return t


def wait_for(pred, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.01)


def test_pause_resume_stop_and_sweep_change(tiny) -> None:
    q = EventQueue()
    cfg = RunConfig(model="tiny", batch_sizes=(1,), input_lens=(8,), output_lens=(64,))
    runner = Runner(tiny, cfg, q, repeat=True)
    thread = run_in_thread(runner)
    wait_for(lambda: runner.steps_done > 50)
    runner.send(Pause())
    wait_for(lambda: runner.paused)
    frozen = runner.steps_done
    time.sleep(0.3)
    assert runner.steps_done == frozen  # no step while paused
    runner.send(SetSweep(batch_sizes=(3,)))
    runner.send(Resume())
    wait_for(lambda: any(isinstance(e, RunStarted) and e.batch_size == 3 for e in q.drain()))
    assert runner.steps_done > frozen
    runner.send(SetSweep(batch_sizes=(0,)))  # rejected with a message, the loop goes on
    runner.send(Stop())
    thread.join(2.0)
    assert not thread.is_alive()
    rest = q.drain()
    assert any(isinstance(e, Notice) and e.level == "error" for e in rest)
    assert rest[-1] == StateChanged("stopped")


def test_a_stalled_consumer_never_blocks_the_engine(tiny) -> None:
    q = EventQueue(max_samples=100)
    cfg = RunConfig(model="tiny", batch_sizes=(1,), input_lens=(4,), output_lens=(200,))
    runner = Runner(tiny, cfg, q, repeat=True)
    thread = run_in_thread(runner)
    wait_for(lambda: runner.steps_done > 2000)  # nobody drains the queue meanwhile
    runner.send(Stop())
    thread.join(2.0)
    events = q.drain()
    samples = [e for e in events if isinstance(e, (DecodeStep, PrefillDone))]
    assert len(samples) <= 100
    assert q.dropped >= runner.steps_done - 100
    # control events survive the overflow
    assert sum(isinstance(e, RunDone) for e in events) == runner.run_index
