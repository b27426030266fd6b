"""The load-time timing rule (engine/backends/torch/timing.py): every contestant timed in
turns, the fastest call kept, and how many rounds slow contestants get."""

from __future__ import annotations

import time

from infertop.engine.backends.torch.timing import SLOW_CALL_S, fastest_in_turns


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
