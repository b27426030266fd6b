"""StepGate: the UI's brief hold on the engine between steps."""

from __future__ import annotations

import threading

from engine.gate import StepGate


def waiter(gate: StepGate) -> tuple[threading.Thread, threading.Event]:
    passed = threading.Event()

    def body() -> None:
        gate.wait()
        passed.set()

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread, passed


def test_open_gate_does_not_wait() -> None:
    gate = StepGate(max_hold_s=60)
    thread, passed = waiter(gate)
    assert passed.wait(10)


def test_held_gate_waits_until_released() -> None:
    gate = StepGate(max_hold_s=60)
    gate.hold()
    thread, passed = waiter(gate)
    assert not passed.wait(0.3)  # still held: the runner has not gone on
    gate.release()
    assert passed.wait(10)


def test_a_holder_that_never_releases_costs_one_hold_only() -> None:
    gate = StepGate(max_hold_s=0.05)
    gate.hold()
    thread, passed = waiter(gate)
    assert passed.wait(10)  # the deadline let it through without a release
    gate.max_hold_s = 60.0  # a fresh hold would now block for a minute...
    gate.hold()  # ...but a hold while still held keeps the old, passed deadline
    for _ in range(20):  # so every later step goes straight on
        thread, passed = waiter(gate)
        assert passed.wait(10)
    gate.release()
    gate.hold()  # released, then held afresh: this one holds again
    thread, passed = waiter(gate)
    assert not passed.wait(0.3)
    gate.release()
    assert passed.wait(10)
