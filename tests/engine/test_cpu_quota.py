"""The CPU quota of this process's cgroup caps torch's thread count (engine/cpu_quota.py):
read from cgroup trees laid out as the kernel lays them out, and in a real cgroup where
this machine lets the test make one."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from infertop.engine.cpu_quota import (
    CpuQuota,
    command_in_cgroup,
    cpu_quota,
    new_cgroup_with_quota,
)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_v2_the_tightest_limit_over_the_cgroup_and_its_ancestors(tmp_path: Path) -> None:
    write(tmp_path / "cgroup.controllers", "cpu memory\n")
    write(tmp_path / "cpu.max", "max 100000\n")  # the root: no limit
    write(tmp_path / "pod" / "cpu.max", "150000 100000\n")
    write(tmp_path / "pod" / "app" / "cpu.max", "max 100000\n")
    write(tmp_path / "self", "0::/pod/app\n")
    quota = cpu_quota(tmp_path, tmp_path / "self")
    assert quota is not None and quota.cpus == 1.5 and quota.threads == 1
    assert "pod/cpu.max: 150000 100000" in quota.source
    write(tmp_path / "pod" / "app" / "cpu.max", "50000 100000\n")  # tighter, below
    assert cpu_quota(tmp_path, tmp_path / "self") == CpuQuota(
        0.5, f"{tmp_path}/pod/app/cpu.max: 50000 100000"
    )


def test_v1_reads_the_cpu_controller_of_a_hybrid_host(tmp_path: Path) -> None:
    cpu = tmp_path / "cpu,cpuacct"
    write(cpu / "cpu.cfs_quota_us", "-1\n")
    write(cpu / "cpu.cfs_period_us", "100000\n")
    write(cpu / "job" / "cpu.cfs_quota_us", "400000\n")
    write(cpu / "job" / "cpu.cfs_period_us", "100000\n")
    write(tmp_path / "unified" / "cpu.max", "max 100000\n")  # v2 beside it, no limit
    write(tmp_path / "self", "4:memory:/job\n3:cpu,cpuacct:/job\n0::/\n")
    quota = cpu_quota(tmp_path, tmp_path / "self")
    assert quota is not None and quota.threads == 4


def test_no_limit_no_cgroup_and_a_path_from_the_host(tmp_path: Path) -> None:
    write(tmp_path / "cgroup.controllers", "cpu\n")
    write(tmp_path / "cpu.max", "max 100000\n")
    write(tmp_path / "self", "0::/\n")
    assert cpu_quota(tmp_path, tmp_path / "self") is None
    assert cpu_quota(tmp_path, tmp_path / "missing") is None  # no /proc/self/cgroup
    # a container's /proc names the host's path; its own cgroup is the mount's root
    write(tmp_path / "cpu.max", "200000 100000\n")
    write(tmp_path / "self", "0::/kubepods/burstable/pod1/abc\n")
    quota = cpu_quota(tmp_path, tmp_path / "self")
    assert quota is not None and quota.threads == 2


def test_a_quota_under_one_cpu_still_runs_one_thread() -> None:
    assert CpuQuota(0.25, "").threads == 1
    assert CpuQuota(2.0, "").threads == 2
    assert CpuQuota(2.9, "").threads == 2


@pytest.fixture
def one_cpu_cgroup() -> Iterator[Path]:
    """A real cgroup allowed 1 CPU (v1 or v2); skipped where this machine does not let the
    test make one (not root, a read-only /sys, no cpu controller)."""
    outside = cpu_quota()
    if len(os.sched_getaffinity(0)) < 2 or (outside is not None and outside.threads < 2):
        pytest.skip("one CPU here already: a 1-CPU quota caps nothing")
    try:
        group = new_cgroup_with_quota(f"infertop-test-{uuid.uuid4().hex[:8]}", 1.0)
    except OSError as e:
        pytest.skip(f"cannot make a cgroup with a CPU quota here ({e.strerror})")
    yield group
    group.rmdir()  # its processes have exited


def test_bench_in_a_one_cpu_cgroup_runs_one_thread_and_says_why(one_cpu_cgroup: Path) -> None:
    bench = [sys.executable, "-m", "infertop", "bench", "--model", "tiny", "--input-len", "8",
             "--output-len", "2"]  # fmt: skip
    p = subprocess.run(
        command_in_cgroup(one_cpu_cgroup, bench), capture_output=True, text=True, timeout=180
    )
    assert p.returncode == 0, p.stderr
    assert "on CPU (1 thread)" in p.stdout, p.stdout
    assert "Threads: at most 1 thread, this process's CPU quota (1 CPU: " in p.stdout, p.stdout
    # outside it, the same command runs a thread per CPU
    p = subprocess.run(bench, capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stderr
    assert "on CPU (1 thread)" not in p.stdout and "CPU quota" not in p.stdout, p.stdout
