"""Commands a consumer sends to the runner; applied at the next step boundary."""

from __future__ import annotations

from dataclasses import dataclass

from engine.config import RunConfig


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
    """Arm a capture (engine.profiling.request.CaptureRequest); it starts at a step boundary."""

    request: object


@dataclass(frozen=True)
class StopProfile(Command):
    pass
