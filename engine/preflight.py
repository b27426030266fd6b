"""Everything about a run that can be checked before the weights load: the backend and device,
the model's shape against the sweep, the trace directory and the result file.

The live screen and `infertop bench` both call `preflight` first, so bad input is the same
one line and exit status 2 from either, before a screen opens or a second is spent loading.
"""

from __future__ import annotations

from pathlib import Path

from engine.config import ModelConfig, RunConfig, validate_shape
from engine.errors import UserError
from engine.loader import choose_backend, mlx_installed
from engine.models.weights import resolve_model
from engine.profiling.controller import check_trace_dir


def preflight(cfg: RunConfig) -> ModelConfig:
    """Raise a UserError naming the fix for the first thing that cannot work; return the
    model's config (read from the preset or the directory's config.json and headers)."""
    if cfg.threads is not None and cfg.threads < 1:
        raise UserError(f"--threads {cfg.threads} is invalid; use 1 or more")
    backend = choose_backend(cfg.backend)
    if backend == "mlx":
        if cfg.compile:
            raise UserError("--compile is for the torch backend, not mlx; drop --compile")
        if not mlx_installed():
            raise UserError("--backend mlx: MLX is not installed; pip install 'infertop[mlx]'")
        if cfg.device not in ("auto", "cpu"):
            raise UserError(f"--backend mlx runs on Metal or the CPU; drop --device {cfg.device}")
    else:
        from engine.devices import select_device  # imports torch: only for the torch backend

        device = select_device(cfg.device)
        if cfg.compile and device.kind != "cpu":
            raise UserError(f"--compile runs on the CPU only (not {device.kind}); drop --compile")
    model, _ = resolve_model(cfg.model)
    for b, i, o in cfg.sweep():
        validate_shape(b, i, o, model)
    check_trace_dir(Path(cfg.trace_dir))
    if cfg.result_filename:
        check_result_file(Path(cfg.result_filename))
    return model


def check_result_file(path: Path) -> None:
    """The result file can be appended to (it is created, empty, if missing)."""
    if path.is_dir():
        raise UserError(f"--result-filename {path} is a directory; pass a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8"):
            pass
    except OSError as e:
        raise UserError(f"--result-filename {path}: {e.strerror}; pass a writable file") from None
