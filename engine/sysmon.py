"""Process and system figures from psutil, sampled on demand."""

from __future__ import annotations

import os
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class SystemSample:
    process_cpu: float  # percent of one core, since the previous sample
    process_rss: int  # bytes
    system_cpu: float  # percent of all cores
    system_mem_used: int
    system_mem_total: int
    threads: int


class SystemMonitor:
    def __init__(self, pid: int | None = None) -> None:
        self.proc = psutil.Process(pid or os.getpid())
        self.proc.cpu_percent(None)  # first call primes the counters
        psutil.cpu_percent(None)

    def sample(self) -> SystemSample:
        with self.proc.oneshot():
            cpu = self.proc.cpu_percent(None)
            rss = self.proc.memory_info().rss
            threads = self.proc.num_threads()
        vm = psutil.virtual_memory()
        return SystemSample(
            cpu, rss, psutil.cpu_percent(None), vm.total - vm.available, vm.total, threads
        )
