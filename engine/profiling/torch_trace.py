"""What infertop adds to the torch profiler's exported trace before it is saved: each step's
index and stage in its args, the engine thread's name, where this capture ran (rank, world
size: HTA's `distributedInfo`), and the step timeline's counters on the trace's own clock
(Kineto's `ts` is microseconds since `baseTimeNanoseconds` on the wall clock)."""

from __future__ import annotations

from typing import Any

from infertop.engine.profiling.steps import STEP, step_index

Trace = dict[str, Any]


def distributed_info(rank: int = 0, world_size: int = 1) -> dict[str, Any]:
    """HTA maps a trace dir's files to ranks by this; one in-process engine is rank 0 of 1."""
    return {"backend": "none", "rank": rank, "world_size": world_size}


def add_step_args(trace: Trace, stages: dict[int, str]) -> int:
    """Put {"step": N, "stage": ...} in the args of each ProfilerStep#N and its stage range;
    returns how many steps the trace holds."""
    found = set()
    for ev in trace.get("traceEvents", []):
        name = str(ev.get("name", ""))
        index = step_index(name) if ev.get("ph") == "X" else None
        if index is None:
            continue
        ev.setdefault("args", {}).update({"step": index, "stage": stages.get(index, "")})
        if STEP.match(name):
            found.add(index)
    return len(found)


def name_thread(trace: Trace, tid: int, name: str) -> None:
    """Rename the thread_name metadata of `tid` (Kineto calls it `thread N (python)`)."""
    for ev in trace.get("traceEvents", []):
        if ev.get("ph") == "M" and ev.get("name") == "thread_name" and ev.get("tid") == tid:
            ev["args"] = {"name": name}


def add_counters(trace: Trace, counters: list[dict[str, Any]], pid: int) -> None:
    """Append counter events whose `ts` is wall-clock nanoseconds (the timeline's stamps),
    moved onto the trace's clock and into process `pid`'s tracks."""
    base = int(trace.get("baseTimeNanoseconds", 0))
    events = trace.setdefault("traceEvents", [])
    for c in counters:
        events.append({**c, "pid": pid, "ts": (c["ts"] - base) / 1e3})
