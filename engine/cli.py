"""Command-line parsing shared by the TUI and the headless commands (`bench`, `presets`)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, NoReturn

from infertop.engine.config import (
    BACKENDS,
    DEFAULT_PRESET,
    DEVICES,
    DTYPES,
    RunConfig,
    human_count,
)
from infertop.engine.errors import UserError
from infertop.engine.presets import PRESETS
from infertop.engine.profiling.request import ACTIVITIES, STAGES, CaptureRequest


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
        shown = _shown(action.default).replace("%", "%%")  # argparse %-formats help text
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


def int_arg(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a whole number; use e.g. 1, 8, 128"
        ) from None


def seed_arg(text: str) -> int:
    value = int_arg(text)
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"{value} is out of range; use 0 to 2**63-1")
    return value


def positive_int(text: str) -> int:
    value = int_arg(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is invalid; use 1 or more")
    return value


def add_run_args(p: argparse.ArgumentParser, *, batch_default: list[int]) -> None:
    """The flags the live screen and `infertop bench` share."""
    p.add_argument(
        "--model",
        metavar="PRESET|DIR",
        default=DEFAULT_PRESET,
        help="preset name (see `infertop presets`) or a local Hugging Face directory",
    )
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="auto: MLX where Metal is available, torch otherwise",
    )
    p.add_argument(
        "--device", choices=DEVICES, default="auto", help="auto: CUDA, then NPU, then the CPU"
    )
    p.add_argument("--dtype", choices=DTYPES, default="float32", help="weights and activations")
    p.add_argument(
        "--threads",
        metavar="N",
        type=positive_int,
        default=None,
        help="CPU threads for the engine (torch.set_num_threads; for MLX, Accelerate's "
        "VECLIB_MAXIMUM_THREADS on macOS) (default: the library's own, shown in the header)",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="torch on CPU: compile the decode step ahead of time with AOTInductor (needs a "
        "C++ compiler; 5-40 s at load; batch-1 decode 10-20%% faster)",
    )
    p.add_argument(
        "--batch-size",
        metavar="N",
        type=positive_int,
        nargs="+",
        default=batch_default,
        help="batch sizes of the sweep",
    )
    p.add_argument(
        "--input-len",
        type=positive_int,
        nargs="+",
        default=[128],
        metavar="N",
        help="prompt lengths",
    )
    p.add_argument(
        "--output-len",
        metavar="N",
        type=positive_int,
        nargs="+",
        default=[32],
        help="tokens generated per sequence (1 prefill + output-len - 1 decode steps)",
    )
    p.add_argument(
        "--seed",
        type=seed_arg,
        default=42,
        metavar="N",
        help="seed of the prompts and dummy weights, 0 to 2**63-1",
    )
    p.add_argument(
        "--run-name", default="infertop", metavar="NAME", help="names the results and traces"
    )
    p.add_argument(
        "--trace-dir",
        metavar="DIR",
        default=os.environ.get("INFERTOP_TRACE_DIR", "traces"),
        help="where traces, exports and the log go "
        "(default: ./traces, or $INFERTOP_TRACE_DIR when set)",
    )
    p.add_argument(
        "--result-filename",
        metavar="FILE",
        default=None,
        help="append one JSON line per completed run to this file",
    )
    p.add_argument("--no-warmup", action="store_true", help="skip the untimed warmup run")


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
        threads=args.threads,
        seed=args.seed,
        run_name=args.run_name,
        trace_dir=args.trace_dir,
        result_filename=args.result_filename,
        warmup=not args.no_warmup,
        **extra,  # type: ignore[arg-type]
    )


def add_profile_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("profiling (the device's own profiler + infertop's timeline)")
    g.add_argument("--profile", action="store_true", help="capture a trace after the warmup")
    g.add_argument(
        "--profile-stage",
        choices=STAGES,
        default="all",
        help="capture only prefill or only decode steps",
    )
    g.add_argument(
        "--profile-start-step",
        metavar="K",
        type=non_negative_int,
        default=0,
        help="steps of the stage to let pass first",
    )
    g.add_argument(
        "--profile-steps",
        metavar="N",
        type=positive_int,
        default=None,
        help="stop after this many steps (default: the end of the first run, capped at ~150 "
        "layer-steps)",
    )
    g.add_argument(
        "--profile-activities",
        nargs="+",
        choices=ACTIVITIES,
        default=["cpu", "device", "timeline"],
        help="what to record",
    )
    g.add_argument(
        "--profile-record-shapes",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="record op input shapes",
    )
    g.add_argument("--profile-with-stack", action="store_true", help="record Python stacks")
    g.add_argument("--profile-memory", action="store_true", help="record tensor allocations")
    g.add_argument(
        "--profile-prefix", metavar="NAME", default=None, help="trace name (default: --run-name)"
    )


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


def bench_parser() -> OneLineParser:
    p = OneLineParser(
        prog="infertop bench",
        description="Headless benchmark with bench_one_batch.py's measurements and JSONL keys.",
    )
    add_run_args(p, batch_default=[1])
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
    args = bench_parser().parse_args(argv[1:])
    from infertop.engine.bench import run_bench

    try:
        request = profile_request(args)
    except UserError as e:
        print(f"infertop bench: error: {e}", file=sys.stderr)
        return 2
    return run_bench(run_config(args, profile=request))
