"""The process's own memory: its peak RSS, and giving memory back to the operating system
after a burst of allocations (a profiler save).

CPython and glibc keep freed memory in their arenas: after a capture the process RSS stayed
~130 MiB above its level after the first capture, capture after capture (measured in
bench/capture_memory.py). A full collection frees the profiler's cycles; `malloc_trim(0)`
returns the free heap pages to the kernel.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys
from collections.abc import Callable
from functools import cache


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None  # macOS's allocator returns pages by itself; no trim call exists
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
        return trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None


def release_freed_memory() -> None:
    """Collect garbage, then hand free heap pages back to the kernel where libc can."""
    gc.collect()
    trim_heap()


def trim_heap() -> None:
    """Hand free heap pages back to the kernel where libc can (no collection: for freed
    tensors, which go when their last reference does)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def peak_rss() -> int:
    """This process's peak RSS in bytes. On Linux, VmHWM: ru_maxrss survives execve and
    starts at the RSS of whatever ran before it in the process (with vfork, a big parent's),
    so a child of a 1 GB pytest reported 1 GB before it allocated anything."""
    import resource
    import sys

    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak if sys.platform == "darwin" else peak * 1024
