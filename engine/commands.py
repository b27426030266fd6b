"""Commands a consumer sends to the runner; applied at the next step boundary."""

from __future__ import annotations

from dataclasses import dataclass

from infertop.engine.config import RunConfig, validate_shape
from infertop.engine.footprint import Sized, check_shape_fits
from infertop.engine.profiling.request import CaptureRequest


@dataclass(frozen=True)
class Command:
    pass


@dataclass(frozen=True)
class Pause(Command):
    pass


@dataclass(frozen=True)
class Resume(Command):
    pass


@dataclass(frozen=True)
class Stop(Command):
    pass


@dataclass(frozen=True)
class SetSweep(Command):
    """Replace the sweep from the next run on; None keeps that axis as it is."""

    batch_sizes: tuple[int, ...] | None = None
    input_lens: tuple[int, ...] | None = None
    output_lens: tuple[int, ...] | None = None

    def applied_to(self, cfg: RunConfig) -> RunConfig:
        return cfg.with_changes(
            batch_sizes=self.batch_sizes or cfg.batch_sizes,
            input_lens=self.input_lens or cfg.input_lens,
            output_lens=self.output_lens or cfg.output_lens,
        )


@dataclass(frozen=True)
class StartProfile(Command):
    """Arm a capture; it starts at a step boundary."""

    request: CaptureRequest


@dataclass(frozen=True)
class StopProfile(Command):
    pass


def checked_sweep(cmd: SetSweep, cfg: RunConfig, engine: Sized, held: int = 0) -> RunConfig:
    """The config `cmd` asks for, each new shape checked against the model's positions and
    the memory there is (a UserError naming the fix otherwise)."""
    new = cmd.applied_to(cfg)
    for b, i, o in new.sweep():
        if (b, i, o) not in cfg.sweep():  # the others were checked when they came in
            validate_shape(b, i, o, engine.config)
            check_shape_fits(engine, b, i, o, held)
    return new
