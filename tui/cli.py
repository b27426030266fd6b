"""The `infertop` console script: headless subcommands go to the engine, the rest opens the TUI."""

from __future__ import annotations

import sys

from infertop.engine.config import closest

HEADLESS = ("bench", "presets")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in HEADLESS:
        from infertop.engine.cli import main as engine_main

        return engine_main(argv)
    if argv and not argv[0].startswith("-"):  # the live screen takes no positional argument
        guess = closest(argv[0], HEADLESS)
        hint = f"did you mean `infertop {guess}`? " if guess else ""
        print(
            f"infertop: error: unknown command {argv[0]!r}; {hint}(see infertop --help)",
            file=sys.stderr,
        )
        return 2
    from infertop.tui.launch import launch

    return launch(argv)


if __name__ == "__main__":
    sys.exit(main())
