"""Pick the backend for a RunConfig and load its engine."""

from __future__ import annotations

from engine.backend import Engine, Progress
from engine.config import RunConfig


def load_engine(cfg: RunConfig, progress: Progress | None = None) -> Engine:
    from engine.torch_engine import TorchEngine

    return TorchEngine.load(cfg.model, cfg.device, cfg.dtype, seed=cfg.seed, progress=progress)
