"""The `infertop` console script: headless subcommands go to the engine, the rest opens the TUI."""

from __future__ import annotations

import sys

HEADLESS = ("bench", "presets")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in HEADLESS or argv[:1] in (["-h"], ["--help"]):
        from engine.cli import main as engine_main

        return engine_main(argv)
    from tui.launch import launch

    return launch(argv)


if __name__ == "__main__":
    sys.exit(main())
