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
from tests.helpers import fail_decode_on


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


def a_running_runner(tiny) -> tuple[Runner, EventQueue, threading.Thread]:
    """Batch 1, input 8, output 64 on repeat, in a thread, 50 steps in."""
    q = EventQueue()
    cfg = RunConfig(model="tiny", batch_sizes=(1,), input_lens=(8,), output_lens=(64,))
    runner = Runner(tiny, cfg, q, repeat=True)
    thread = run_in_thread(runner)
    wait_for(lambda: runner.steps_done > 50)
    return runner, q, thread


def test_pause_resume_stop_and_sweep_change(tiny) -> None:
    runner, q, thread = a_running_runner(tiny)
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


def test_a_pause_taken_back_before_the_step_boundary_leaves_the_engine_running(tiny) -> None:
    """The live screen's space while still "pausing" sends Resume after Pause: both reach
    the runner at one step boundary, it says paused then running, and never stops."""
    runner, q, thread = a_running_runner(tiny)
    runner.send(Pause())
    runner.send(Resume())
    before = runner.steps_done
    wait_for(lambda: runner.steps_done > before + 200)  # a paused runner would stop here
    runner.send(Stop())
    thread.join(2.0)
    states = [e.state for e in q.drain() if isinstance(e, StateChanged)]
    assert states[-3:] == ["paused", "running", "stopped"]


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


def test_after_an_engine_error_the_session_holds_with_the_runner_s_one_handler(tmp_path) -> None:
    """Session holds the runner after an error: a new sweep is checked and taken, a capture
    is refused with its reason, resume runs the new sweep, and Stop ends the session."""
    from infertop.engine.commands import StartProfile
    from infertop.engine.events import EngineError, ProfileFailed, SweepChanged
    from infertop.engine.profiling.request import CaptureRequest
    from infertop.engine.session import Session

    engine = TorchEngine.load("tiny", device="cpu")
    fail = fail_decode_on(engine)
    fail.set()  # the first run fails; resume runs on the real decode
    cfg = RunConfig(model="tiny", batch_sizes=(1,), input_lens=(8,), output_lens=(16,),
                    warmup=False, trace_dir=str(tmp_path))  # fmt: skip
    q = EventQueue()
    session = Session(cfg, q, engine=engine)
    thread = threading.Thread(target=session.run, daemon=True)
    thread.start()
    seen: list[object] = []

    def until_seen(pred) -> None:  # type: ignore[no-untyped-def]
        end = time.monotonic() + 20
        while not any(pred(e) for e in seen):
            assert time.monotonic() < end, seen[-10:]
            seen.extend(q.drain())
            time.sleep(0.01)

    until_seen(lambda e: e == StateChanged("error"))
    fail.clear()
    assert any(isinstance(e, EngineError) and "boom in decode" in e.message for e in seen)
    session.send(StartProfile(CaptureRequest(activities=("timeline",))))
    session.send(SetSweep(batch_sizes=(2,)))
    session.send(SetSweep(batch_sizes=(0,)))  # refused: the sweep stays at 2
    until_seen(lambda e: isinstance(e, ProfileFailed) and "stopped by an error" in e.message)
    until_seen(lambda e: isinstance(e, SweepChanged) and e.batch_sizes == (2,))
    until_seen(lambda e: isinstance(e, Notice) and "sweep is unchanged" in e.message)
    mark = len(seen)
    session.send(Resume())
    until_seen(lambda e: isinstance(e, RunStarted) and e.batch_size == 2)
    assert seen[mark:].count(StateChanged("running")) == 1  # said once on resume
    assert not any(type(e).__name__ == "ProfileStarted" for e in seen)  # nothing was armed
    session.send(Stop())
    thread.join(5)
    assert not thread.is_alive()
