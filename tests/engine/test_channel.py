"""The event queue between the engine thread and the screen: when the consumer falls behind,
the oldest per-step sample is dropped and counted; control events are never dropped."""

from __future__ import annotations

import threading

from infertop.engine.channel import EventQueue
from infertop.engine.events import DecodeStep, Notice, Sample


def step(n: int) -> DecodeStep:
    return DecodeStep(0, 1, n, n, 0.001)


def test_a_full_queue_drops_the_oldest_sample_and_counts_it() -> None:
    q = EventQueue(max_samples=3)
    for n in range(5):
        q.put(step(n))
    assert q.dropped == 2 and q.total == 5
    assert [e.step for e in q.drain() if isinstance(e, DecodeStep)] == [2, 3, 4]


def test_control_events_are_never_dropped_and_keep_their_order() -> None:
    q = EventQueue(max_samples=2)
    q.put(Notice("first"))
    for n in range(4):
        q.put(step(n))
        q.put(Notice(f"after {n}"))
    got = q.drain()
    notices = [e.message for e in got if isinstance(e, Notice)]
    assert notices == ["first", "after 0", "after 1", "after 2", "after 3"]
    assert [e.step for e in got if isinstance(e, DecodeStep)] == [2, 3]
    assert q.dropped == 2
    # the samples kept are the newest, each still after the notice that preceded it
    assert got.index(next(e for e in got if isinstance(e, DecodeStep))) > notices.index("after 1")


def test_drain_takes_a_limit_and_the_sample_count_follows() -> None:
    q = EventQueue(max_samples=4)
    for n in range(4):
        q.put(step(n))
    assert [e.step for e in q.drain(limit=3) if isinstance(e, DecodeStep)] == [0, 1, 2]
    for n in range(4, 7):  # room for 3 more without a drop (one is still queued)
        q.put(step(n))
    assert q.dropped == 0 and len(q) == 4


def test_every_event_put_from_a_thread_is_drained_or_counted() -> None:
    q = EventQueue(max_samples=64)
    seen: list[Sample] = []
    done = threading.Event()

    def produce() -> None:
        for n in range(20_000):
            q.put(step(n))
        done.set()

    t = threading.Thread(target=produce)
    t.start()
    while not done.is_set() or len(q):
        seen.extend(e for e in q.drain(limit=50) if isinstance(e, Sample))
    t.join()
    assert len(seen) + q.dropped == 20_000
    steps = [e.step for e in seen if isinstance(e, DecodeStep)]
    assert steps == sorted(steps)  # dropping never reorders


def test_extend_is_put_for_each_in_order() -> None:
    """The server mode relays the child's batches with extend()."""
    by_put, by_extend = EventQueue(max_samples=2), EventQueue(max_samples=2)
    events = [Notice("a"), step(0), step(1), Notice("b"), step(2), step(3)]
    for ev in events:
        by_put.put(ev)
    by_extend.extend(events)
    assert by_extend.drain() == by_put.drain()
    assert (by_extend.dropped, by_extend.total) == (by_put.dropped, by_put.total) == (2, 6)
