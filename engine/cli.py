"""Command-line parsing shared by the TUI and the headless commands (`bench`, `presets`)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn

from engine.config import BACKENDS, DEFAULT_PRESET, DEVICES, DTYPES, PRESETS, RunConfig, human_count
from engine.errors import UserError
from engine.profiling.request import ACTIVITIES, STAGES, CaptureRequest


class OneLineParser(argparse.ArgumentParser):
    """Bad arguments print one line naming the fix and exit with status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def int_arg(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a whole number; use e.g. 1, 8, 128"
        ) from None


def positive_int(text: str) -> int:
    value = int_arg(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is invalid; use 1 or more")
    return value


def add_run_args(p: argparse.ArgumentParser, *, batch_default: list[int]) -> None:
    p.add_argument(
        "--model",
        default=DEFAULT_PRESET,
        help=f"preset name (see `infertop presets`) or a local Hugging Face "
        f"directory (default {DEFAULT_PRESET})",
    )
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="auto: MLX where Metal is available, torch otherwise",
    )
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--dtype", choices=DTYPES, default="float32")
    p.add_argument(
        "--compile",
        action="store_true",
        help="torch on CPU: compile the decode step ahead of time with AOTInductor (needs a "
        "C++ compiler; 5-40 s at load; batch-1 decode 10-20%% faster)",
    )
    p.add_argument("--batch-size", type=positive_int, nargs="+", default=batch_default)
    p.add_argument("--input-len", type=positive_int, nargs="+", default=[128])
    p.add_argument("--output-len", type=positive_int, nargs="+", default=[32])
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--run-name", default="infertop")
    p.add_argument(
        "--trace-dir",
        default=os.environ.get("INFERTOP_TRACE_DIR", "traces"),
        help="where traces and logs go (default ./traces or $INFERTOP_TRACE_DIR)",
    )


def run_config(args: argparse.Namespace, **extra: object) -> RunConfig:
    return RunConfig(
        model=args.model,
        backend=args.backend,
        device=args.device,
        dtype=args.dtype,
        compile=args.compile,
        batch_sizes=tuple(args.batch_size),
        input_lens=tuple(args.input_len),
        output_lens=tuple(args.output_len),
        seed=args.seed,
        run_name=args.run_name,
        trace_dir=args.trace_dir,
        **extra,  # type: ignore[arg-type]
    )


def add_profile_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("profiling (the device's own profiler + infertop's timeline)")
    g.add_argument("--profile", action="store_true", help="capture a trace after the warmup")
    g.add_argument(
        "--profile-stage",
        choices=STAGES,
        default="all",
        help="capture only prefill or only decode steps (default all)",
    )
    g.add_argument(
        "--profile-start-step",
        type=non_negative_int,
        default=0,
        help="steps of the stage to let pass first",
    )
    g.add_argument(
        "--profile-steps",
        type=positive_int,
        default=None,
        help="stop after this many steps (default: the end of the first run)",
    )
    g.add_argument(
        "--profile-activities", nargs="+", choices=ACTIVITIES, default=["cpu", "device", "timeline"]
    )
    g.add_argument("--profile-record-shapes", action=argparse.BooleanOptionalAction, default=True)
    g.add_argument("--profile-with-stack", action="store_true")
    g.add_argument("--profile-memory", action="store_true")
    g.add_argument("--profile-prefix", default=None, help="trace name (default: --run-name)")


def profile_request(args: argparse.Namespace) -> CaptureRequest | None:
    if not args.profile:
        return None
    return CaptureRequest(
        name=args.profile_prefix or args.run_name,
        stage=args.profile_stage,
        start_step=args.profile_start_step,
        steps=args.profile_steps,
        activities=tuple(args.profile_activities),
        record_shapes=args.profile_record_shapes,
        with_stack=args.profile_with_stack,
        profile_memory=args.profile_memory,
    )


def non_negative_int(text: str) -> int:
    value = int_arg(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is invalid; use 0 or more")
    return value


def build_parser() -> OneLineParser:
    p = OneLineParser(prog="infertop", description="Live terminal profiler for LLM inference.")
    sub = p.add_subparsers(dest="command", parser_class=OneLineParser)
    bench = sub.add_parser("bench", help="headless benchmark (bench_one_batch.py compatible)")
    add_run_args(bench, batch_default=[1])
    bench.add_argument(
        "--result-filename", default=None, help="append one JSON line per run to this file"
    )
    bench.add_argument("--no-warmup", action="store_true", help="skip the warmup run")
    add_profile_args(bench)
    sub.add_parser("presets", help="list the built-in model shapes")
    return p


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


def main(argv: list[str] | None = None) -> int:
    """Headless entry: `infertop bench ...` and `infertop presets`."""
    args = build_parser().parse_args(argv)
    if args.command == "presets":
        print(presets_table())
        print(
            "\nWeights are seeded dummies with each model's exact shapes; pass a local "
            "Hugging Face directory to --model for real weights."
        )
        return 0
    if args.command == "bench":
        from engine.bench import run_bench

        try:
            request = profile_request(args)
        except UserError as e:
            print(f"infertop bench: error: {e}", file=sys.stderr)
            return 2
        cfg = run_config(
            args, result_filename=args.result_filename, warmup=not args.no_warmup, profile=request
        )
        return run_bench(cfg)
    build_parser().print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
