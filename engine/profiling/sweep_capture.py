"""`infertop bench --profile`: which steps of each sweep point are captured, with
bench_one_batch.py's meaning and defaults.

Every sweep point is captured, in an extra run after its timed one (so the result file holds
no profiler overhead). `--profile-stage all` writes a prefill file (the run's one prefill step)
and a decode file (`--profile-steps` decode steps from decode step `--profile-start-step`,
by default output_len // 2 and 1 step, as in SGLang); `prefill` or `decode` writes only that
one."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from infertop.engine.errors import UserError
from infertop.engine.flags import flag, non_negative_int, positive_int
from infertop.engine.profiling.request import MAX_STEPS, STAGES, CaptureRequest, Stage

STAGE_HELP = "all: a prefill file and a decode file per sweep point; prefill or decode: that one"


@dataclass(frozen=True)
class SweepCapture:
    stage: Stage = field(
        default="all",
        metadata=flag("--profile-stage", STAGE_HELP, choices=STAGES),
    )
    start_step: int | None = field(
        default=None,
        metadata=flag(
            "--profile-start-step",
            "decode step (0-indexed) the decode capture starts at (default: output-len // 2, "
            "as in bench_one_batch)",
            metavar="K",
            type=non_negative_int,
        ),
    )
    steps: int | None = field(
        default=None,
        metadata=flag(
            "--profile-steps",
            f"decode steps to capture, 1 to {MAX_STEPS} (default: 1, as in bench_one_batch)",
            metavar="N",
            type=positive_int,
        ),
    )
    capture: CaptureRequest = CaptureRequest()  # what to record, and the traces' name

    def __post_init__(self) -> None:
        if self.steps is not None and not 1 <= self.steps <= MAX_STEPS:
            raise UserError(f"--profile-steps {self.steps} is invalid; use 1 to {MAX_STEPS}")

    def decode_start(self, output_len: int) -> int:
        return self.start_step if self.start_step is not None else output_len // 2

    def requests(self, output_len: int) -> list[CaptureRequest]:
        """The captures of one sweep point's profiled run, in the order they start."""
        out = []
        if self.stage in ("all", "prefill"):
            out.append(replace(self.capture, stage="prefill", start_step=0, steps=1))
        if self.stage in ("all", "decode") and self.missing_decode(output_len) is None:
            start = self.decode_start(output_len)
            out.append(
                replace(self.capture, stage="decode", start_step=start, steps=self.steps or 1)
            )
        return out

    def missing_decode(self, output_len: int) -> str | None:
        """Why a run of `output_len` has no decode step to capture, when it has none."""
        start = self.decode_start(output_len)
        if self.stage == "prefill" or start < output_len - 1:
            return None
        if output_len == 1:
            return "output length 1 has no decode step; use --output-len 2 or more"
        return (
            f"decode step {start} is past the {output_len - 1} decode steps of output length "
            f"{output_len}; lower --profile-start-step"
        )

    def whole_request(self) -> CaptureRequest:
        """One capture armed after the warmup (a server's profiler: it picks its own steps)."""
        return replace(self.capture, stage=self.stage, steps=self.steps)
