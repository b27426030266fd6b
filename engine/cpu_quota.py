"""The CPU time this process may use, read from its cgroup (v2 `cpu.max`, v1
`cpu.cfs_quota_us` / `cpu.cfs_period_us`), and the thread count that fits in it.

Why: a container allowed 1 CPU of a bigger host (`docker --cpus`, a Kubernetes CPU limit)
still sees every core, and torch starts a thread per core. Its threads then use up the
period's quota early and wait for the next: under a 1-CPU quota on a 2-CPU AMD EPYC,
smollm2-135m's decode step took 1.8x as long on 2 threads as on 1 (bench/RESULTS.md). The
decode step's timing at load cannot see it: a step of 40 ms fits in the 100 ms period
before the throttling starts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from infertop.engine.text import plural

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")
PERIOD_US = 100_000  # the kernel's default period; a new cgroup's quota is set against it


@dataclass(frozen=True)
class CpuQuota:
    cpus: float  # quota / period: how many CPUs' worth of time each period
    source: str  # the files read, for the line that explains the cap

    @property
    def threads(self) -> int:
        """The most threads that never run past the quota (at least 1)."""
        return max(1, math.floor(self.cpus + 1e-9))

    def describe(self) -> str:
        """`at most 1 thread, this process's CPU quota (1 CPU: <the files read>)`."""
        cpus = f"{self.cpus:g} CPU{'' if self.cpus == 1 else 's'}"  # plural() takes counts
        threads = plural(self.threads, "thread")
        return f"at most {threads}, this process's CPU quota ({cpus}: {self.source})"


def cpu_quota(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_SELF_CGROUP) -> CpuQuota | None:
    """The tightest CPU quota over this process's cgroup and its ancestors, v1 or v2; None
    where there is none (or no cgroup to read: macOS, a locked-down /sys)."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    found: list[CpuQuota] = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":  # v2: the unified hierarchy, beside v1's on a hybrid host
            unified = root if (root / "cgroup.controllers").exists() else root / "unified"
            found += _limits_up_from(unified, path, _v2_limit)
        elif "cpu" in controllers.split(","):
            found += _limits_up_from(root / controllers, path, _v1_limit)
    return min(found, key=lambda q: q.cpus, default=None)


def _limits_up_from(
    mount: Path, path: str, read: Callable[[Path], CpuQuota | None]
) -> list[CpuQuota]:
    """The limit of the cgroup at `path` under `mount` and of each of its ancestors. In a
    container the path may name the host's hierarchy, which is not mounted there: then the
    mount's root is the container's own cgroup."""
    here = mount / path.lstrip("/")
    if not here.is_dir():
        here = mount
    limits = []
    for d in [here, *here.parents]:
        if not d.is_relative_to(mount):
            break
        try:
            limit = read(d)
        except (OSError, ValueError):
            continue
        if limit is not None:
            limits.append(limit)
    return limits


def _v2_limit(d: Path) -> CpuQuota | None:
    f = d / "cpu.max"
    text = f.read_text().strip()
    quota, period = text.split()
    if quota == "max":
        return None
    return CpuQuota(int(quota) / int(period), f"{f}: {text}")


def _v1_limit(d: Path) -> CpuQuota | None:
    quota = int((d / "cpu.cfs_quota_us").read_text())
    if quota <= 0:  # -1: no limit
        return None
    period = int((d / "cpu.cfs_period_us").read_text())
    return CpuQuota(quota / period, f"{d}/cpu.cfs_quota_us {quota} / cpu.cfs_period_us {period}")


def new_cgroup_with_quota(name: str, cpus: float, root: Path = CGROUP_ROOT) -> Path:
    """A new cgroup (v2, or v1's cpu controller) allowed `cpus` CPUs: how the benches and
    tests emulate a container's limit. OSError where this process may not make one (not
    root, a read-only tree); then nothing is left behind."""
    v2 = (root / "cgroup.controllers").exists()
    group = (root if v2 else root / "cpu") / name
    group.mkdir()
    quota = round(cpus * PERIOD_US)
    try:
        if v2:
            (group / "cpu.max").write_text(f"{quota} {PERIOD_US}")
        else:
            (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (group / "cpu.cfs_quota_us").write_text(str(quota))
    except OSError:
        group.rmdir()
        raise
    return group


def command_in_cgroup(group: Path, argv: Sequence[str]) -> list[str]:
    """`argv` run as a member of `group`: a shell joins it, then execs the command."""
    return ["bash", "-c", f'echo $$ > {group / "cgroup.procs"} && exec "$@"', "-", *argv]
