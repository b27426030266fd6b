"""Trace and export file names: `{name}-{stage}-bs{B}-in{I}-out{O}-{YYYYmmdd-HHMMSS}-{salt}.{ext}`.

Names are made safe (no separators, no `..`, no control characters, bounded length), salted
so two processes never collide, and files are written under a temporary name in the same
directory and renamed when complete, so a crash never leaves a half file under a final name.
"""

from __future__ import annotations

import os
import re
import secrets
import time
import unicodedata
from pathlib import Path

MAX_NAME = 64
TMP_PREFIX = ".tmp-"
_UNSAFE = re.compile(r"[^A-Za-z0-9._+=-]+")


def safe_name(name: str, fallback: str = "infertop") -> str:
    """A file-name-safe version of what the user typed."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    text = _UNSAFE.sub("_", text)
    text = re.sub(r"\.{2,}", ".", text).strip("._-")
    return text[:MAX_NAME].rstrip("._-") or fallback


def trace_stem(
    name: str,
    stage: str,
    batch_size: int,
    input_len: int,
    output_len: int,
    now: float | None = None,
) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    salt = secrets.token_hex(3)
    return (
        f"{safe_name(name)}-{safe_name(stage, 'all')}-bs{batch_size}-in{input_len}"
        f"-out{output_len}-{stamp}-{salt}"
    )


def results_stem(name: str, now: float | None = None) -> str:
    """`{name}-results-{YYYYmmdd-HHMMSS}-{salt}`: an export holds every shape that ran."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return f"{safe_name(name)}-results-{stamp}-{secrets.token_hex(3)}"


def unique_path(directory: Path, stem: str, ext: str) -> Path:
    """A final path inside `directory` that does not exist yet (re-salted on the rare clash)."""
    path = directory / f"{stem}.{ext}"
    while path.exists():
        path = directory / f"{stem}-{secrets.token_hex(2)}.{ext}"
    assert path.resolve().parent == directory.resolve(), path
    return path


def temp_path_for(final: Path) -> Path:
    """A hidden sibling in the same directory (so the rename is atomic)."""
    return final.with_name(f"{TMP_PREFIX}{final.name}.{os.getpid()}.{secrets.token_hex(2)}")


def publish(tmp: Path, final: Path) -> Path:
    """Move a completed temporary file or directory to its final name, never overwriting."""
    if tmp.is_dir():
        if final.exists():
            raise FileExistsError(f"{final} exists; refusing to overwrite a trace")
        os.rename(tmp, final)
    else:
        os.link(tmp, final)  # fails if final exists: no overwrite, even in a race
        tmp.unlink()
    return final


def write_bytes_atomically(final: Path, data: bytes) -> Path:
    tmp = temp_path_for(final)
    try:
        with tmp.open("xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return publish(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
