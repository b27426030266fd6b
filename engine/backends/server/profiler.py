"""The server's own profiler on `p`: SGLang's and vLLM's /start_profile and /stop_profile.

The calls run in their own thread, so neither the UI nor the load generator waits for them:
vLLM's stop blocks until the trace is written, minutes on a big one, and says
`server exporting… N s` meanwhile. With --server-trace-dir, the files the server wrote there
during the capture are reported as saved traces with their top ops."""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from infertop.engine.backends.server.errors import server_message, status_error, transport_error
from infertop.engine.backends.server.probe import ServerInfo, client
from infertop.engine.errors import UserError
from infertop.engine.events import (
    Event,
    Notice,
    ProfileArmed,
    ProfileFailed,
    ProfileSaving,
    ProfileStarted,
    ProfileStopped,
    TraceSaved,
)
from infertop.engine.profiling.base import TopOps
from infertop.engine.profiling.request import CaptureRequest

Shape = tuple[int, int, int]
SGLANG_ACTIVITIES = {"cpu": "CPU", "device": "GPU", "cuda_profiler": "CUDA_PROFILER"}
# bigger traces are listed without top ops: parsing one holds the GIL for seconds
TOP_OPS_MAX_BYTES = 16 << 20
VLLM_FIX = (
    "start vLLM with --profiler-config "
    '\'{"profiler":"torch","torch_profiler_dir":"/path/to/traces"}\''
)


def no_profiler_routes(url: str) -> str:
    return (
        f"{url} is a plain OpenAI-compatible server: it has no profiler routes "
        "(/start_profile); profile a vLLM or SGLang server"
    )


def sglang_body(request: CaptureRequest, output_dir: str | None) -> dict[str, Any]:
    """SGLang's ProfileReq (srt/managers/io_struct.py) for a capture request."""
    body: dict[str, Any] = {
        "activities": [SGLANG_ACTIVITIES[a] for a in request.activities if a in SGLANG_ACTIVITIES]
        or ["CPU"],
        "record_shapes": request.record_shapes,
        "with_stack": request.with_stack,
        "profile_prefix": request.name,
        "merge_profiles": True,
        "profile_by_stage": request.stage != "all",
    }
    if request.steps is not None:
        body["num_steps"] = request.steps
    if request.stage != "all":
        body["profile_stages"] = [request.stage]
    if output_dir:
        body["output_dir"] = output_dir
    return body


def trace_top_ops(path: Path, n: int = 15) -> TopOps:
    """(name, self time µs, calls) of the ops that took longest in a Chrome trace (torch's
    `.pt.trace.json[.gz]`); () when the file is something else."""
    if not path.name.endswith((".json", ".json.gz")) or path.stat().st_size > TOP_OPS_MAX_BYTES:
        return ()
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as f:
            events = json.load(f).get("traceEvents", [])
    except (OSError, ValueError, EOFError):
        return ()
    total: dict[str, float] = {}
    calls: Counter[str] = Counter()
    for ev in events:
        if ev.get("ph") == "X" and ev.get("cat") in ("cpu_op", "kernel", "gpu_op"):
            total[ev["name"]] = total.get(ev["name"], 0.0) + float(ev.get("dur", 0.0))
            calls[ev["name"]] += 1
    top = sorted(total.items(), key=lambda kv: -kv[1])[:n]
    return tuple((name, us, calls[name]) for name, us in top)


class ServerProfiler:
    """The runner's capture control (engine/runner.py CaptureControl) for a server."""

    def __init__(
        self,
        sink: Callable[[Event], None],
        info: ServerInfo,
        shape: Callable[[], Shape],
    ) -> None:
        self.sink = sink
        self.info = info
        self.shape = shape  # the run in flight, for the start event
        self.busy = False
        self.recording = False
        self.steps = 0  # decode steps of the batch seen while recording
        self.exporting = False  # a stop is in flight (vLLM stops serving meanwhile)
        self.starting = False  # a start is in flight
        self._stop_when_started: str | None = None
        self.request: CaptureRequest | None = None
        self.trace_dir = (
            Path(info.target.server_trace_dir) if info.target.server_trace_dir else None
        )
        self._before: set[Path] = set()
        self._thread: threading.Thread | None = None

    # -- the runner's interface ---------------------------------------------------------------
    def arm(self, request: CaptureRequest) -> None:
        if self.busy:
            self.sink(Notice("a capture is already running; stop it first (p)", "warning"))
            return
        if self.info.kind == "openai":
            self.sink(ProfileFailed(no_profiler_routes(self.info.target.url)))
            return
        self.busy, self.request, self.steps = True, request, 0
        self.starting, self._stop_when_started = True, None
        self._run(self._start, request)

    def stop(self, reason: str = "stopped") -> None:
        if not self.busy:
            self.sink(Notice("no capture is running", "warning"))
            return
        if not self.recording:  # the start is in flight: stop once it has started
            self._stop_when_started = reason
            return
        self.recording = False
        self._run(self._stop, reason)

    def count_step(self) -> None:
        """One decode step of the batch went by while recording; a capture of N steps is
        stopped after N."""
        self.steps += 1
        req = self.request
        if self.recording and req is not None and req.steps and self.steps >= req.steps:
            self.stop(f"{req.steps} steps captured")

    def wait_started(self) -> None:
        """Before a batch: a start in flight is waited for, so the capture holds the batch."""
        if self.starting:
            self.join()

    def join(self, timeout: float | None = None) -> None:
        """Wait for a call in flight (bench waits for the server's export before exiting)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    # -- the calls, in their own thread --------------------------------------------------------
    def _run(self, fn: Callable[[Any], None], arg: Any) -> None:
        self.join()  # one call at a time, in order
        self._thread = threading.Thread(target=fn, args=(arg,), name="server-profiler", daemon=True)
        self._thread.start()

    def _post(
        self, path: str, body: dict[str, Any] | None, timeout: float | None
    ) -> httpx.Response:
        target = self.info.target
        with client(target) as http:
            try:
                return http.post(path, json=body, timeout=timeout)
            except httpx.HTTPError as e:
                raise transport_error(e, target, f"POST {path}") from None

    def _start(self, request: CaptureRequest) -> None:
        self._before = self._files()
        body = None
        if self.info.kind == "sglang":
            body = sglang_body(request, str(self.trace_dir) if self.trace_dir else None)
        try:
            response = self._post("/start_profile", body, self.info.target.timeout)
            if response.status_code == 404 and self.info.kind == "vllm":
                raise UserError(f"vLLM at {self.info.target.url} has no profiler; {VLLM_FIX}")
            if response.status_code != 200:
                raise status_error(response, self.info.target, "POST /start_profile")
        except UserError as e:
            self.busy, self.request, self.starting = False, None, False
            self.sink(ProfileFailed(str(e)))
            return
        self.sink(ProfileArmed(request.name, request.stage, request.steps))
        if self.info.kind == "vllm" and request.stage != "all":
            self.sink(Notice("vLLM's profiler records every stage; --profile-stage is ignored"))
        self.recording = True
        kind = f"{self.info.kind} server"
        self.sink(ProfileStarted(request.name, request.stage, kind, *self.shape()))
        self.starting = False
        if self._stop_when_started is not None:
            self.recording = False
            self._stop(self._stop_when_started)

    def _stop(self, reason: str) -> None:
        req = self.request
        done = threading.Event()
        t0 = time.monotonic()

        def tick() -> None:  # vLLM's stop returns once the trace is written
            while not done.wait(1.0):
                self.sink(ProfileSaving(f"server exporting… {time.monotonic() - t0:.0f} s"))

        self.exporting = True
        threading.Thread(target=tick, daemon=True).start()
        self.sink(ProfileSaving("server exporting… 0 s"))
        try:
            response = self._post("/stop_profile", None, None)  # as long as the export takes
            # with num_steps SGLang may have stopped by itself, and says so with an error
            if response.status_code != 200 and not (req is not None and req.steps):
                self.sink(Notice(f"the server's stop failed: {server_message(response)}", "error"))
        except UserError as e:
            self.sink(Notice(str(e), "error"))
        finally:
            done.set()
            self.exporting = False
        steps = self.steps
        for path in self._new_files():
            size = path.stat().st_size if path.is_file() else 0
            stage = req.stage if req else "all"
            self.sink(TraceSaved(str(path), "server", stage, size, steps, trace_top_ops(path)))
        if self.trace_dir is None:
            self.sink(
                Notice(
                    "the server wrote its trace into its own trace directory (vLLM: "
                    "torch_profiler_dir of --profiler-config; SGLang: SGLANG_TORCH_PROFILER_DIR, "
                    "default /tmp); pass --server-trace-dir DIR to list them here"
                )
            )
        self.busy, self.request = False, None
        self.sink(ProfileStopped(reason, steps))

    # -- the server's trace directory ---------------------------------------------------------
    def _files(self) -> set[Path]:
        if self.trace_dir is None or not self.trace_dir.is_dir():
            return set()
        return {p for p in self.trace_dir.rglob("*") if p.is_file()}

    def _new_files(self, settle: float = 0.5, limit: float = 30.0) -> list[Path]:
        """Files that appeared since the start, once their sizes stop changing."""
        if self.trace_dir is None:
            return []
        deadline = time.monotonic() + limit
        sizes: dict[Path, int] = {}
        while True:
            now = {p: p.stat().st_size for p in self._files() - self._before if p.exists()}
            if now and now == sizes or time.monotonic() > deadline:
                return sorted(now)
            sizes = now
            time.sleep(settle)
