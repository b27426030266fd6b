"""Headless `infertop bench`: bench_one_batch.py's measurements, printed and saved as JSONL."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from infertop.engine.backend import ready_event
from infertop.engine.backends.server.probe import server_ready
from infertop.engine.backends.server.runner import ServerRunner
from infertop.engine.config import RunConfig, human_count
from infertop.engine.errors import UserError
from infertop.engine.events import (
    EngineReady,
    Event,
    LoadProgress,
    Notice,
    PrefillDone,
    ProfileArmed,
    ProfileFailed,
    ProfileStarted,
    ProfileStopped,
    RunDone,
    RunResult,
    RunSkipped,
    TraceSaved,
    tokens_per_second,
)
from infertop.engine.loader import load_engine
from infertop.engine.preflight import preflight, preflight_server
from infertop.engine.profiling.naming import sweep_stale_temps
from infertop.engine.runner import Runner, SweepRunner
from infertop.engine.text import plural


def _print_event(ev: Event) -> None:
    match ev:
        case PrefillDone():
            tput = tokens_per_second(ev.input_len * ev.batch_size, ev.latency)
            print(f"Prefill. latency: {ev.latency:6.5f} s, throughput: {tput:9.2f} token/s")
        case RunDone(result=r):
            if r.median_decode_latency is not None:
                print(
                    f"Decode.  median latency: {r.median_decode_latency:6.5f} s, "
                    f"median throughput: {r.median_decode_throughput:9.2f} token/s"
                )
            print(
                f"Total. latency: {r.total_latency:6.3f} s, "
                f"throughput: {r.overall_throughput:9.2f} token/s"
            )
        case TraceSaved():
            steps = plural(ev.steps, f"{ev.stage} step")
            print(f"Trace saved ({ev.kind}, {steps}, {ev.size / 1e6:.2f} MB): {ev.path}")
        case ProfileStarted():
            print(f"Profiling {ev.stage} with {ev.kind} at batch {ev.batch_size} ...")
        case ProfileFailed():
            print(f"Capture not started: {ev.message}", file=sys.stderr)
        case Notice():
            print(f"{ev.level}: {ev.message}", file=sys.stderr)
        case RunSkipped():
            print(f"Skipped: {ev.reason}", file=sys.stderr)
        case EngineReady(device_kind="server"):
            print(f"{ev.model_name} on {ev.backend} at {ev.device_name}")
        case EngineReady():
            print(
                f"{ev.model_name} ({human_count(ev.param_count)} params, {ev.dtype}) "
                f"on {ev.device_name} [{ev.backend}]"
            )
            if ev.kernel_choices:
                print(f"Kernels, timed on the weights at load: {ev.kernel}")
                for line in ev.kernel_choices:
                    print(f"  {line}")
            if ev.thread_choice:
                print(f"Threads: {ev.thread_choice}")
            if ev.decode_ops:
                print(f"Decode ops between the matmuls: {ev.decode_ops}")


def results_table(results: list[RunResult]) -> str:
    """One row per run; a run recorded by a capture is marked and explained below the table."""
    head = (
        "batch",
        "input",
        "output",
        "prefill ms",
        "prefill tok/s",
        "decode ms (p50)",
        "decode tok/s",
        "total s",
        "overall tok/s",
        "",
    )
    rows = [head]
    for r in results:
        med = r.median_decode_latency
        rows.append(
            (
                str(r.batch_size),
                str(r.input_len),
                str(r.output_len),
                f"{r.prefill_latency * 1e3:.2f}",
                f"{r.prefill_throughput:.1f}",
                "-" if med is None else f"{med * 1e3:.3f}",
                "-" if med is None else f"{r.median_decode_throughput:.1f}",
                f"{r.total_latency:.3f}",
                f"{r.overall_throughput:.1f}",
                "captured" if r.captured else "",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    table = "\n".join(
        "  ".join(c.rjust(w) for c, w in zip(row, widths, strict=False)).rstrip() for row in rows
    )
    captured = sum(r.captured for r in results)
    if captured:
        table += (
            f"\n\ncaptured: {plural(captured, 'run')} ran (in part) under the profiler; "
            "their figures carry its overhead and are left out of the result file"
        )
    return table


def run_bench(cfg: RunConfig) -> int:
    """Load (or reach the server), check the sweep, run it; exit 2 on bad input."""

    saved: list[TraceSaved] = []
    failed: list[str] = []
    left_out: list[str] = []
    stopped: list[ProfileStopped] = []
    ranges: list[ProfileStarted] = []  # CUDA_PROFILER alone: Nsight Systems keeps the file

    def sink(ev: Event) -> None:
        if isinstance(ev, ProfileStarted) and ev.kind == "cuda_profiler":
            ranges.append(ev)
        if isinstance(ev, ProfileArmed):
            left_out.extend(ev.left_out)  # CPU GPU on a CPU: the CPU trace, a line for GPU
        if isinstance(ev, TraceSaved):
            saved.append(ev)
        elif isinstance(ev, ProfileFailed):
            failed.append(ev.message)
        elif isinstance(ev, ProfileStopped):
            stopped.append(ev)
        if not isinstance(ev, LoadProgress):
            _print_event(ev)

    runner: SweepRunner
    try:
        if cfg.server is not None:
            print(f"Connecting to {cfg.server.url} ...", file=sys.stderr)
            info = preflight_server(cfg)
            sweep_stale_temps(Path(cfg.trace_dir))
            _print_event(server_ready(info))
            runner = ServerRunner(info, cfg, sink)
        else:
            preflight(cfg, traces=cfg.profile is not None)
            sweep_stale_temps(Path(cfg.trace_dir))  # what writers killed mid-save left behind
            print(f"Loading {cfg.model} ...", file=sys.stderr)
            engine = load_engine(cfg, stage=lambda name: print(f"{name} ...", file=sys.stderr))
            _print_event(ready_event(engine))
            for line in engine.warnings:
                _print_event(Notice(line, "warning"))
            runner = Runner(engine, cfg, sink)
    except UserError as e:
        print(f"infertop bench: error: {e}", file=sys.stderr)
        return 2
    code = 0
    with terminate_as_interrupt():
        try:
            runner.run()
        except UserError as e:  # the result file could not be written (a full disk)
            print(f"infertop bench: error: {e}", file=sys.stderr)
            code = 1
        except Interrupted as e:
            # the runner has saved any active capture; results were appended run by run
            print(
                f"\nInterrupted by {e.signal_name}: keeping {len(runner.results)} completed runs",
                file=sys.stderr,
            )
            code = 130 if e.signal_name == "SIGINT" else 0
    print()
    print(results_table(runner.results))
    kept = sum(not r.captured for r in runner.results)
    if cfg.result_filename and kept:
        print(f"\n{plural(kept, 'result')} appended to {cfg.result_filename}")
    if cfg.profile is not None and cfg.server is None and code == 0:  # a server keeps its own
        return capture_summary(saved, failed, bool(stopped), len(ranges), left_out)
    return code


def capture_summary(
    saved: list[TraceSaved],
    failed: list[str],
    ran: bool,
    ranges: int = 0,
    left_out: list[str] | None = None,
) -> int:
    """What --profile captured and what it could not (`left_out`: activities asked for that
    this device does not record, beside those it did). A CI job must not take an empty trace
    dir for a profile: 2 when nothing could be captured here, 1 when a capture ran and its
    save failed (that error is already said)."""
    if saved:
        kinds = sorted({t.kind for t in saved})
        print(f"Captured: {', '.join(kinds)} ({plural(len(saved), 'file')})")
    if ranges:
        print(f"Captured: {plural(ranges, 'cudaProfilerStart/Stop range')} for Nsight Systems")
    for why in dict.fromkeys([*(left_out or []), *failed]):  # each reason once, in order
        print(f"Not captured: {why}", file=sys.stderr)
    if saved or ranges:
        return 0
    if ran and not failed:
        return 1
    why = "" if failed else ": no run reached the profiled steps (lower --profile-start-step)"
    print(f"infertop bench: error: --profile captured nothing{why}", file=sys.stderr)
    return 2


class Interrupted(BaseException):  # like KeyboardInterrupt: no `except Exception` eats it
    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP stop the sweep at once and keep what was measured."""

    def handler(signum: int, frame: object) -> None:
        raise Interrupted(signal.Signals(signum).name)

    sigs = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    old = {s: signal.signal(s, handler) for s in sigs}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
