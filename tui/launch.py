"""`infertop [flags]`: parse the run flags, build the session and open the live screen."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from engine.cli import OneLineParser, add_run_args, run_config
from engine.session import Session


def build_parser() -> OneLineParser:
    p = OneLineParser(
        prog="infertop",
        description="Live terminal profiler for LLM inference. "
        "Subcommands: `infertop bench ...` (headless), `infertop presets`.",
    )
    add_run_args(p, batch_default=[1, 8])
    p.add_argument(
        "--refresh", type=float, default=3.0, help="screen refreshes per second (default 3)"
    )
    p.add_argument("--no-warmup", action="store_true", help="skip the warmup run")
    return p


def launch(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if not 0.5 <= args.refresh <= 30:
        build_parser().error(f"--refresh {args.refresh} is out of range; use 0.5 to 30")
    from tui.app import InfertopApp

    cfg = run_config(args, warmup=not args.no_warmup)
    session = Session(cfg)
    app = InfertopApp(session, refresh_hz=args.refresh, handle_signals=True)
    with native_stderr_to(Path(cfg.trace_dir) / "infertop.log"):
        code = app.run()
        session.stop(timeout=2.0)
    return code or 0


@contextmanager
def native_stderr_to(path: Path) -> Iterator[None]:
    """Send file descriptor 2 to a log file while the screen is live: C++ libraries (Kineto
    prints a line at every profiler start/stop) would otherwise write over the UI."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        log = path.open("a")
    except OSError:
        yield  # an unwritable trace dir is reported in the app; keep stderr as it is
        return
    saved = os.dup(2)
    # Textual draws on sys.__stderr__: point it at a copy of the terminal's descriptor
    terminal = os.fdopen(os.dup(2), "w", encoding=sys.__stderr__.encoding, errors="replace")
    old_dunder, old_stderr = sys.__stderr__, sys.stderr
    sys.__stderr__ = sys.stderr = terminal
    os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        sys.__stderr__, sys.stderr = old_dunder, old_stderr
        terminal.close()
        log.close()
