"""Trace and export file names: `{name}-{stage}-bs{B}-in{I}-out{O}-{YYYYmmdd-HHMMSS}-{salt}.{ext}`.

Names are made safe (no separators, no `..`, no control characters, bounded length), salted
so two processes never collide, and files are written under a temporary name in the same
directory and renamed when complete, so a crash never leaves a half file under a final name;
the temporary names carry the writer's pid, so the next start removes a dead writer's.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
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


def temp_path_for(final: Path, suffix: str = "") -> Path:
    """A hidden sibling in the same directory (so the rename is atomic), named for the
    writer's pid (so a later start can tell a dead writer's leftovers): `.tmp-PID-SALT-NAME`.
    `suffix` is appended (a tool that writes by suffix, such as gzip, sees the final one)."""
    return final.with_name(f"{TMP_PREFIX}{os.getpid()}-{secrets.token_hex(3)}-{final.name}{suffix}")


def sweep_stale_temps(directory: Path) -> list[Path]:
    """Remove the temporary files and folders of writers that are gone (killed mid-save);
    return what was removed. Those of live processes are left alone."""
    import psutil

    removed = []
    for path in directory.glob(f"{TMP_PREFIX}*"):
        pid = path.name[len(TMP_PREFIX) :].split("-", 1)[0]
        if not pid.isdigit() or psutil.pid_exists(int(pid)):
            continue
        try:
            remove_path(path)
        except OSError:
            continue
        removed.append(path)
    return removed


def remove_path(path: Path) -> None:
    """Remove a file, or a directory with its contents (a symlink itself, not its target)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


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


def write_new(path: Path, data: bytes) -> None:
    """Write a new file and fsync it (a full disk raises here, not later)."""
    with path.open("xb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_bytes_atomically(final: Path, data: bytes) -> Path:
    tmp = temp_path_for(final)
    try:
        write_new(tmp, data)
        return publish(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def publish_all(pairs: list[tuple[Path, Path]]) -> list[Path]:
    """Publish each (temporary, final) pair; if one fails, unpublish those before it: the
    files of one save appear together or not at all."""
    done: list[Path] = []
    try:
        for tmp, final in pairs:
            done.append(publish(tmp, final))
    except BaseException:
        for path in done:
            path.unlink(missing_ok=True)
        raise
    return done
