"""Giving memory back to the operating system after a burst of allocations (a profiler save).

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
        return libc.malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None


def release_freed_memory() -> None:
    """Collect garbage, then hand free heap pages back to the kernel where libc can."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
