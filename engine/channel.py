"""The bounded, thread-safe hand-off between the engine thread and its consumer.

The engine never waits: when the queue is full the oldest *sample* is dropped and counted.
Control events (run results, traces saved, errors) are never dropped.
"""

from __future__ import annotations

import threading
from collections import deque

from infertop.engine.events import Event, Sample


class EventQueue:
    def __init__(self, max_samples: int = 4096) -> None:
        self._lock = threading.Lock()
        self._items: deque[Event] = deque()
        self._samples = 0
        self.max_samples = max_samples
        self.dropped = 0  # samples lost because the consumer fell behind
        self.total = 0  # events ever put

    def put(self, ev: Event) -> None:
        with self._lock:
            self._add(ev)

    def extend(self, events: list[Event]) -> None:
        """put() each of them, under one hold of the lock."""
        with self._lock:
            for ev in events:
                self._add(ev)

    def _add(self, ev: Event) -> None:  # with the lock held
        self.total += 1
        if isinstance(ev, Sample):
            if self._samples >= self.max_samples:
                self._drop_oldest_sample()
            self._samples += 1
        self._items.append(ev)

    def __call__(self, ev: Event) -> None:
        """An EventQueue is itself a sink (subclasses overriding put are honoured)."""
        self.put(ev)

    def _drop_oldest_sample(self) -> None:
        kept: list[Event] = []
        while self._items:
            old = self._items.popleft()
            if isinstance(old, Sample):
                self._samples -= 1
                self.dropped += 1
                break
            kept.append(old)
        self._items.extendleft(reversed(kept))

    def drain(self, limit: int | None = None) -> list[Event]:
        """Take up to `limit` events (all by default), oldest first."""
        with self._lock:
            n = len(self._items) if limit is None else min(limit, len(self._items))
            out = [self._items.popleft() for _ in range(n)]
            self._samples -= sum(1 for e in out if isinstance(e, Sample))
            return out

    def __len__(self) -> int:
        return len(self._items)
