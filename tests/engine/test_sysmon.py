"""The CPU figure counts infertop's child processes (the server mode's load generator)."""

from __future__ import annotations

import subprocess
import sys
import time

from infertop.engine.sysmon import SystemMonitor

BUSY = "import time\nend = time.monotonic() + 30\nwhile time.monotonic() < end: pass"


def test_a_busy_child_shows_in_the_process_cpu() -> None:
    monitor = SystemMonitor()
    child = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        time.sleep(0.5)
        monitor.sample()  # sees the child for the first time: primes it
        time.sleep(1.5)  # this process sleeps; only the child works
        cpu = monitor.sample().process_cpu
    finally:
        child.kill()
        child.wait()
    assert cpu > 30, cpu  # a busy loop is ~100% of a core; this process alone is ~0%
    time.sleep(0.2)
    monitor.sample()
    assert child.pid not in monitor.children  # gone ones are forgotten
