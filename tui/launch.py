"""`infertop [flags]`: parse the run flags, check them, build the session and open the live
screen; once the terminal is restored, say where the results went (or why the app crashed)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from infertop.engine.backends.server.probe import ServerInfo
from infertop.engine.cli import OneLineParser, add_run_args, run_config
from infertop.engine.errors import UserError
from infertop.engine.preflight import preflight, preflight_server
from infertop.engine.profiling.naming import sweep_stale_temps
from infertop.engine.session import Session, log_path

if TYPE_CHECKING:
    from infertop.tui.app import InfertopApp

REFRESH_HZ = 3.0
LOW_BANDWIDTH_REFRESH_HZ = 1.0

SUBCOMMANDS = """\
subcommands:
  infertop bench ...   headless benchmark, bench_one_batch.py compatible (infertop bench --help)
  infertop presets     list the built-in model shapes

keys on the live screen: press ? once it is open."""


class _Given(argparse.Action):
    """Stores the value and notes that it was given (--low-bandwidth keeps a given
    --refresh, and lowers the default)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, values)
        namespace.refresh_given = True


def build_parser() -> OneLineParser:
    p = OneLineParser(
        prog="infertop",
        description="Live terminal profiler for LLM inference: runs the model in a worker\n"
        "thread, shows prefill and decode latencies live, captures profiler traces on a key.",
        epilog=SUBCOMMANDS,
    )
    add_run_args(p, {"batch_sizes": [1, 8]})
    p.add_argument(
        "--refresh",
        type=float,
        default=REFRESH_HZ,
        action=_Given,
        metavar="HZ",
        help=f"screen refreshes per second, 0.5-30 (default {REFRESH_HZ:g}; "
        f"{LOW_BANDWIDTH_REFRESH_HZ:g} with --low-bandwidth)",
    )
    p.add_argument(
        "--low-bandwidth",
        action="store_true",
        help="for a slow SSH link: the numbers once a second, the charts every 5 s",
    )
    return p


def refresh_hz(args: argparse.Namespace) -> float:
    """--refresh as given; else 1 Hz with --low-bandwidth, 3 Hz without."""
    if args.low_bandwidth and not getattr(args, "refresh_given", False):
        return LOW_BANDWIDTH_REFRESH_HZ
    return float(args.refresh)


def launch(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.refresh = refresh_hz(args)
    if not 0.5 <= args.refresh <= 30:
        parser.error(f"--refresh {args.refresh} is out of range; use 0.5 to 30")
    server: ServerInfo | None = None
    try:
        cfg = run_config(args)
        if cfg.server is not None:
            server = preflight_server(cfg)  # reached and probed before a screen opens
        else:
            preflight(cfg, every_shape=False)  # bad input: one line, status 2, before a screen
        sweep_stale_temps(Path(cfg.trace_dir))  # what writers killed mid-save left behind
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            which = "stdin" if not sys.stdin.isatty() else "stdout"
            raise UserError(
                f"the live screen needs a terminal and {which} is not one; run it in a "
                "terminal, or use `infertop bench` in scripts and CI"
            )
    except UserError as e:
        print(f"infertop: error: {e}", file=sys.stderr)
        return 2
    from infertop.tui.app import InfertopApp

    session = Session(cfg, server=server, own_process=server is not None)
    app = InfertopApp(
        session, refresh_hz=args.refresh, handle_signals=True, low_bandwidth=args.low_bandwidth
    )
    return run_app(app, log_path(cfg))


def run_app(app: InfertopApp, log: Path, headless: bool = False) -> int:
    """Run the app with native stderr in the log; then print its farewell lines, or the one
    line of a crash. The status: the app's (non-zero after a crash)."""
    with native_stderr_to(log):
        app.run(headless=headless)
        app.session.stop(timeout=2.0)
    if app.crash:
        print(app.crash, file=sys.stderr)
        return app.return_code or 1
    lines, app.farewell = app.farewell, []  # said once (a signal's thread may say them too)
    for line in lines:
        print(line)
    return app.return_code or 0


@contextmanager
def native_stderr_to(path: Path) -> Iterator[None]:
    """Send file descriptor 2 to a log file while the screen is live: C++ libraries (Kineto
    prints a line at every profiler start/stop) would otherwise write over the UI."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        log = path.open("a")
    except OSError:
        yield  # an unwritable trace dir is refused before this; keep stderr as it is
        return
    saved = os.dup(2)
    # Textual draws on sys.__stderr__: point it at a copy of the terminal's descriptor
    encoding = getattr(sys.__stderr__, "encoding", None) or "utf-8"
    terminal = os.fdopen(os.dup(2), "w", encoding=encoding, errors="replace")
    old_dunder, old_stderr = sys.__stderr__, sys.stderr
    sys.__stderr__ = sys.stderr = terminal  # type: ignore[misc]  # Textual writes to it
    os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        sys.__stderr__, sys.stderr = old_dunder, old_stderr  # type: ignore[misc]
        terminal.close()
        log.close()
