"""JSONL results with bench_one_batch.py's keys, appended and flushed one run at a time."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from engine.events import RunResult


def append_result(path: Path, result: RunResult) -> None:
    append_results(path, [result])


def append_results(path: Path, results: Iterable[RunResult]) -> None:
    """Append one JSON line per result and fsync, so a crash loses at most the run in flight."""
    lines = "".join(json.dumps(r.to_json_dict()) + "\n" for r in results)
    if not lines:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(lines)
        f.flush()
        os.fsync(f.fileno())
