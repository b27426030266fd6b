"""The live screen's load generator runs in a child process (engine/backends/server/process.py):
its death is one line on a screen that keeps its numbers, and it never outlives its parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from infertop.engine.backends.server.process import LOAD_NICENESS
from infertop.tui.panels import StatusLine
from tests.helpers import until
from tests.server.conftest import SglangFactory, sglang_running
from tests.server.test_server_tui import server_app


async def test_a_dead_load_generator_is_one_line_and_the_numbers_stay(
    sglang: SglangFactory, tmp_path: Path
) -> None:
    server = sglang("--enable-metrics")
    app = server_app(server.url, tmp_path, 8)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.stats.batch(4).runs >= 1)
        child = app.session.child  # type: ignore[attr-defined]
        assert child is not None and child.process.pid != os.getpid()
        # the keys come first where the CPUs are short
        assert os.getpriority(os.PRIO_PROCESS, child.process.pid) == min(
            19, os.getpriority(os.PRIO_PROCESS, 0) + LOAD_NICENESS
        )
        child.process.kill()  # what the OOM killer would do
        await until(pilot, lambda: app.state == "failed")
        assert app.error is not None
        line = app.error.message
        assert "load generator's process ended (exit code -9)" in line
        assert "infertop.log" in line and "\n" not in line
        assert app.stats.batch(4).runs >= 1 and app.stats.results  # still on the screen
        assert "load generator" in app.query_one(StatusLine).text
        await pilot.press("e")  # what was measured can still be exported
        await until(pilot, lambda: app.last_export is not None)
        await pilot.press("q")


PARENT = """
import sys, threading, time
from infertop.engine.backends.server.probe import probe
from infertop.engine.backends.server.target import ServerTarget
from infertop.engine.config import RunConfig
from infertop.engine.session import Session

t = ServerTarget(url=sys.argv[1])
cfg = RunConfig(batch_sizes=(4,), input_lens=(16,), output_lens=(200,), server=t,
                trace_dir=sys.argv[2])
session = Session(cfg, server=probe(t), own_process=True)
threading.Thread(target=session.run, daemon=True).start()
while session.child is None:
    time.sleep(0.05)
print(session.child.process.pid, flush=True)
time.sleep(600)
"""


def test_the_load_generator_stops_when_its_parent_is_killed(
    sglang: SglangFactory, tmp_path: Path
) -> None:
    server = sglang("--enable-metrics", "--token-interval", "0.05")
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, server.url, str(tmp_path / "t")],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    deadline = time.monotonic() + 30
    while sglang_running(server.url) < 4:
        assert time.monotonic() < deadline and parent.poll() is None
        time.sleep(0.1)
    parent.send_signal(signal.SIGKILL)  # no cleanup at all: only the closed pipe tells
    parent.wait()
    deadline = time.monotonic() + 15
    while alive(child_pid) or sglang_running(server.url):
        assert time.monotonic() < deadline, "the child outlived its parent"
        time.sleep(0.1)


def alive(pid: int) -> bool:
    """True while pid runs (a zombie, reaped by nobody here, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
