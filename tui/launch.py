"""`infertop [flags]`: parse the run flags, build the session and open the live screen."""

from __future__ import annotations

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
        "--refresh", type=float, default=4.0, help="screen refreshes per second (default 4)"
    )
    p.add_argument("--no-warmup", action="store_true", help="skip the warmup run")
    return p


def launch(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if not 0.5 <= args.refresh <= 30:
        build_parser().error(f"--refresh {args.refresh} is out of range; use 0.5 to 30")
    from tui.app import InfertopApp

    session = Session(run_config(args, warmup=not args.no_warmup))
    app = InfertopApp(session, refresh_hz=args.refresh)
    code = app.run()
    session.stop(timeout=2.0)
    return code or 0
