"""The load-time timing rule (engine/backends/torch/timing.py): every contestant timed in
turns, the fastest call kept, and how many rounds slow contestants get."""

from __future__ import annotations

import time

from infertop.engine.backends.torch.timing import (
    SLOW_CALL_S,
    fastest_in_turns,
    least_summed_slowdown,
)


def sleeper(seconds: float, calls: list[str], name: str):
    def call() -> None:
        calls.append(name)
        time.sleep(seconds)

    return call


def test_slow_contestants_stop_after_slow_rounds_unless_told_to_go_on() -> None:
    slow = 2 * SLOW_CALL_S
    for slow_rounds, rounds in ((3, 3), (6, 6)):
        calls: list[str] = []
        contestants = [(n, sleeper(slow, calls, n)) for n in ("a", "b")]
        fastest_in_turns(contestants, reps=6, slow_rounds=slow_rounds)
        assert calls.count("a") == calls.count("b") == rounds


def test_fast_contestants_run_every_round_and_the_faster_has_the_lesser_time() -> None:
    calls: list[str] = []
    seconds = fastest_in_turns(
        [("quick", sleeper(0.0002, calls, "quick")), ("slower", sleeper(0.0012, calls, "slower"))],
        reps=5,
    )
    assert calls.count("quick") == calls.count("slower") == 5
    assert calls[:2] == ["quick", "slower"] and calls[2:4] == ["slower", "quick"]  # in turns
    assert seconds["quick"] < seconds["slower"]


def test_a_near_tie_over_the_batches_goes_to_the_fastest_at_batch_1() -> None:
    """Summed slowdowns 2.19 against 2.18: noise decides them, so batch 1 does; a clear
    difference still goes to the least sum."""
    near = {1: {"pair": 2.6, "packed": 3.12}, 8: {"pair": 4.6, "packed": 3.8}}
    assert least_summed_slowdown(near, ["packed", "pair"]) == "pair"  # 1.00+1.21 vs 1.20+1.00
    near = {1: {"pair": 2.6, "packed": 3.12}, 8: {"pair": 4.5, "packed": 3.8}}
    assert least_summed_slowdown(near, ["pair", "packed"]) == "pair"  # 2.18 vs 2.20
    clear = {1: {"pair": 2.6, "packed": 3.12}, 8: {"pair": 5.0, "packed": 3.8}}
    assert least_summed_slowdown(clear, ["pair", "packed"]) == "packed"  # 2.32 vs 2.20
