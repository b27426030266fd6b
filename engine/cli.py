"""Command-line parsing shared by the TUI and the headless commands (`bench`, `presets`)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from typing import Any, NoReturn

from infertop.engine.backends.server.target import ServerTarget, server_target
from infertop.engine.config import DEFAULT_PRESET, RunConfig, human_count
from infertop.engine.errors import UserError
from infertop.engine.flags import add_cli_args, from_cli_args
from infertop.engine.presets import PRESETS
from infertop.engine.profiling.request import CaptureRequest
from infertop.engine.profiling.sweep_capture import SweepCapture
from infertop.engine.sglang_flags import refused as sglang_refused


class OneLineParser(argparse.ArgumentParser):
    """Bad arguments print one line naming the fix and exit with status 2; every option's help
    shows its default."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        kw.setdefault("formatter_class", DefaultsFormatter)
        super().__init__(*args, **kw)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class DefaultsFormatter(argparse.RawDescriptionHelpFormatter):
    """Appends "(default: ...)" to each option's help unless the help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default is argparse.SUPPRESS or not action.option_strings:
            return text
        default = action.default
        if isinstance(action, argparse._StoreFalseAction):  # --no-warmup: off unless given
            default = not default
        shown = _shown(default).replace("%", "%%")  # argparse %-formats help text
        return f"{text} (default: {shown})"


def _shown(value: object) -> str:
    if value is None:
        return "none"
    if value is False:
        return "off"
    if value is True:
        return "on"
    if isinstance(value, list | tuple):
        return " ".join(str(v) for v in value)
    return str(value)


def add_run_args(p: argparse.ArgumentParser, defaults: Mapping[str, object]) -> None:
    """The flags the live screen and `infertop bench` share: RunConfig's (engine/config.py),
    with this parser's `defaults`."""
    add_cli_args(p, RunConfig, defaults)
    add_server_args(p)


def run_config(args: argparse.Namespace, **extra: Any) -> RunConfig:
    """The flags as a RunConfig (a UserError for a bad --server URL)."""
    return from_cli_args(RunConfig, args, server=server_target(args), **extra)


def add_server_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "a running server (vLLM, SGLang or OpenAI-compatible) instead of a model in this process"
    )
    add_cli_args(g, ServerTarget)


def add_profile_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("profiling (the device's own profiler + infertop's timeline)")
    g.add_argument(
        "--profile",
        action="store_true",
        help="capture every sweep point, in an extra run after its timed one",
    )
    add_cli_args(g, SweepCapture)
    add_cli_args(g, CaptureRequest)


def profile_request(args: argparse.Namespace) -> SweepCapture | None:
    if not args.profile:
        return None
    if not args.name:  # --profile-prefix defaults to --run-name
        args.name = args.run_name
    return from_cli_args(SweepCapture, args, capture=from_cli_args(CaptureRequest, args))


# bench_one_batch's defaults where a flag has its name; its traces go to
# $SGLANG_TORCH_PROFILER_DIR, so bench's do too when infertop's own variable is not set
BENCH_DEFAULTS: dict[str, object] = {
    "batch_sizes": [1],
    "input_lens": [1024],
    "output_lens": [16],
    "run_name": "default",
    "result_filename": "result.jsonl",
    "trace_dir": lambda: (
        os.environ.get("INFERTOP_TRACE_DIR")
        or os.environ.get("SGLANG_TORCH_PROFILER_DIR")
        or "traces"
    ),
}


def bench_parser() -> OneLineParser:
    p = OneLineParser(
        prog="infertop bench",
        description="Headless benchmark with bench_one_batch.py's measurements and JSONL keys.",
    )
    add_run_args(p, BENCH_DEFAULTS)
    add_profile_args(p)
    return p


def presets_parser() -> OneLineParser:
    return OneLineParser(prog="infertop presets", description="List the built-in model shapes.")


def presets_table() -> str:
    rows = [("name", "type", "layers", "hidden", "heads/kv", "vocab", "params")]
    for name, c in PRESETS.items():
        mark = " (default)" if name == DEFAULT_PRESET else ""
        rows.append(
            (
                name + mark,
                c.model_type,
                str(c.num_hidden_layers),
                str(c.hidden_size),
                f"{c.num_attention_heads}/{c.num_key_value_heads}",
                str(c.vocab_size),
                human_count(c.param_count()),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip() for r in rows
    )


def main(argv: list[str]) -> int:
    """Headless entry: `infertop bench ...` and `infertop presets` (argv[0] names which)."""
    if argv[0] == "presets":
        presets_parser().parse_args(argv[1:])
        print(presets_table())
        print(
            "\nWeights are seeded dummies with each model's exact shapes; pass a local "
            "Hugging Face directory to --model for real weights."
        )
        return 0
    line = sglang_refused(argv[1:])
    if line is not None:
        print(f"infertop bench: error: {line}", file=sys.stderr)
        return 2
    args = bench_parser().parse_args(argv[1:])
    from infertop.engine.bench import run_bench

    try:
        cfg = run_config(args, profile=profile_request(args))
    except UserError as e:
        print(f"infertop bench: error: {e}", file=sys.stderr)
        return 2
    return run_bench(cfg)
