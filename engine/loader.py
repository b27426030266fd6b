"""Pick the backend for a RunConfig and load its engine."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable

from infertop.engine.backend import Engine, LoadProgress
from infertop.engine.config import RunConfig
from infertop.engine.errors import UserError
from infertop.engine.profiling.metal_capture import enable_capture_env


def mlx_installed() -> bool:
    return importlib.util.find_spec("mlx") is not None


def metal_available() -> bool:
    """Probe Metal in a way that does not start it before MTL_CAPTURE_ENABLED is set."""
    if not mlx_installed():
        return False
    enable_capture_env()
    import mlx.core as mx

    return bool(mx.metal.is_available())


def choose_backend(requested: str) -> str:
    """auto: MLX where Metal is available (a Mac), torch otherwise."""
    if requested == "auto":
        return "mlx" if metal_available() else "torch"
    if requested not in ("torch", "mlx"):
        raise UserError(f"unknown backend {requested!r}; use auto, torch or mlx")
    return requested


def load_engine(
    cfg: RunConfig, progress: LoadProgress | None = None, stage: Callable[[str], None] | None = None
) -> Engine:
    backend = choose_backend(cfg.backend)
    if cfg.compile and backend != "torch":
        raise UserError(f"--compile is for the torch backend, not {backend}; drop --compile")
    if backend == "mlx":
        if not mlx_installed():
            raise UserError("--backend mlx: MLX is not installed; pip install 'infertop[mlx]'")
        if cfg.device not in ("auto", "cpu"):
            raise UserError(f"--backend mlx runs on Metal or the CPU; drop --device {cfg.device}")
        enable_capture_env()  # before mlx is imported: Metal reads it at start-up
        if cfg.threads is not None:  # Accelerate's BLAS on macOS (the Linux wheel's is serial)
            os.environ["VECLIB_MAXIMUM_THREADS"] = str(cfg.threads)
        from infertop.engine.backends.mlx.engine import MlxEngine

        return MlxEngine.load(cfg.model, cfg.dtype, cfg.seed, cfg.dummy_weights, progress)
    from infertop.engine.backends.torch.engine import TorchEngine

    engine = TorchEngine.load(
        cfg.model,
        cfg.device,
        cfg.dtype,
        cfg.seed,
        progress,
        cfg.dummy_weights,
        batches=(1, max(cfg.batch_sizes)),
        stage=stage,
        threads=cfg.threads,
    )
    if cfg.compile:
        if stage:
            stage(engine.compile_stage())
        engine.compile_decode((max(cfg.input_lens), max(cfg.output_lens)), cfg.batch_sizes)
    return engine
