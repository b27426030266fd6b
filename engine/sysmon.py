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
    """This process and its children (the server mode's load generator, compile workers):
    their CPU is infertop's too."""

    def __init__(self, pid: int | None = None) -> None:
        self.proc = psutil.Process(pid or os.getpid())
        self.proc.cpu_percent(None)  # first call primes the counters
        self.children: dict[int, psutil.Process] = {}
        psutil.cpu_percent(None)

    def sample(self) -> SystemSample:
        with self.proc.oneshot():
            cpu = self.proc.cpu_percent(None)
            rss = self.proc.memory_info().rss
            threads = self.proc.num_threads()
        cpu += self._children_cpu()
        vm = psutil.virtual_memory()
        return SystemSample(
            cpu, rss, psutil.cpu_percent(None), vm.total - vm.available, vm.total, threads
        )

    def _children_cpu(self) -> float:
        """Their CPU since the previous sample; a child seen for the first time is primed."""
        total = 0.0
        alive: dict[int, psutil.Process] = {}
        try:
            children = self.proc.children(recursive=True)
        except psutil.Error:
            return 0.0
        for child in children:
            known = self.children.get(child.pid)
            try:
                if known is None:
                    child.cpu_percent(None)
                    known = child
                else:
                    total += known.cpu_percent(None)
            except psutil.Error:  # it ended meanwhile
                continue
            alive[child.pid] = known
        self.children = alive
        return total
