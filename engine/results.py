"""JSONL results with bench_one_batch.py's keys, appended and flushed one run at a time."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from infertop.engine.events import RunResult
from infertop.engine.profiling.naming import results_stem, unique_path


def append_result(path: Path, result: RunResult) -> None:
    append_results(path, [result])


def append_results(path: Path, results: Iterable[RunResult]) -> None:
    """Append one JSON line per result and fsync, so a crash loses at most the run in flight.
    A write that fails (a full disk) is undone: the file keeps only whole lines."""
    lines = "".join(json.dumps(r.to_json_dict()) + "\n" for r in results).encode()
    if not lines:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        before = os.fstat(fd).st_size
        try:
            view = memoryview(lines)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except OSError:
            try:
                os.ftruncate(fd, before)
            except OSError:
                pass  # nothing more can be done; the caller reports the first error
            raise
    finally:
        os.close(fd)


def export_results(results: list[RunResult], trace_dir: Path, run_name: str) -> Path:
    """Every result in a new `{run_name}-results-{stamp}-{salt}.jsonl` in the trace dir (the
    live screen's export); an OSError when it cannot be written."""
    trace_dir.mkdir(parents=True, exist_ok=True)
    path = unique_path(trace_dir, results_stem(run_name), "jsonl")
    append_results(path, results)
    return path
