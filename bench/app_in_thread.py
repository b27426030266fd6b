"""The live screen with the server's load generator in its worker thread, as before
engine/backends/server/process.py: bench/key_to_screen.py's baseline. Not for users.

    python bench/app_in_thread.py --server URL ...   (infertop's own flags)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import infertop.tui.launch as launch  # noqa: E402
from infertop.tui.cli import main  # noqa: E402

if __name__ == "__main__":
    real = launch.Session
    launch.Session = lambda *a, **kw: real(*a, **{**kw, "own_process": False})  # type: ignore[misc,assignment]
    sys.exit(main())
