"""Where infertop keeps what it builds for this machine (compiled decode steps, the fused C
ops): $INFERTOP_CACHE_DIR, else $XDG_CACHE_HOME/infertop, else ~/.cache/infertop."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "infertop"
    return Path(os.environ.get("INFERTOP_CACHE_DIR") or default)
