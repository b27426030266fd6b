"""Everything about a run that can be checked before the weights load: the backend and device,
the model's shape against the sweep, the trace directory and the result file.

The live screen and `infertop bench` both call `preflight` first, so bad input is the same
one line and exit status 2 from either, before a screen opens or a second is spent loading.
"""

from __future__ import annotations

from pathlib import Path

from infertop.engine.backends.server.probe import ServerInfo, probe
from infertop.engine.backends.server.runner import check_server_shape
from infertop.engine.config import ModelConfig, RunConfig, validate_shape
from infertop.engine.errors import UserError
from infertop.engine.footprint import DTYPE_BYTES, check_fits, model_fix, run_need
from infertop.engine.loader import choose_backend, metal_available, mlx_installed
from infertop.engine.profiling.controller import check_trace_dir
from infertop.engine.weights import resolve_model


def preflight(cfg: RunConfig, every_shape: bool = True, traces: bool = True) -> ModelConfig:
    """Raise a UserError naming the fix for the first thing that cannot work; return the
    model's config (read from the preset or the directory's config.json and headers).

    Memory: the weights plus every shape of the sweep must fit (`infertop bench`), or with
    `every_shape=False` the weights plus the smallest shape (the live screen, which skips a
    shape that does not fit when its turn comes and says so). `traces`: the trace directory
    is needed (bench without --profile writes none, and left an empty ./traces behind)."""
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
        kind = "metal" if metal_available() else "cpu"  # sets MTL_CAPTURE_ENABLED first
        from infertop.engine.backends.mlx.device import MlxDevice

        free = MlxDevice().free_bytes()
    else:
        from infertop.engine.backends.torch.devices import (
            select_device,  # imports torch: only for the torch backend
        )

        device = select_device(cfg.device)
        if cfg.compile and device.kind != "cpu":
            raise UserError(f"--compile runs on the CPU only (not {device.kind}); drop --compile")
        free, kind = device.free_bytes(), device.kind
    model, _ = resolve_model(cfg.model, cfg.dummy_weights)
    for b, i, o in cfg.sweep():
        validate_shape(b, i, o, model)
    check_memory(cfg, model, kind == "cpu", free, every_shape)
    check_outputs(cfg, traces)
    return model


# what --server replaces: the server has its model, weights, device and threads
NOT_WITH_SERVER = ("model", "backend", "device", "dtype", "threads", "compile")


def preflight_server(cfg: RunConfig) -> ServerInfo:
    """--server: the flags, the directories and the server itself (reached, its kind and
    model probed, the sweep checked against its context); a UserError naming the fix."""
    assert cfg.server is not None
    defaults = RunConfig()
    for name in NOT_WITH_SERVER:
        if getattr(cfg, name) != getattr(defaults, name):
            flag = RunConfig.__dataclass_fields__[name].metadata["flag"]
            raise UserError(
                f"{flag} does not apply with --server (the server has its own); drop it"
            )
    check_outputs(cfg)
    server_dir = cfg.server.server_trace_dir
    if server_dir is not None and not Path(server_dir).is_dir():
        raise UserError(
            f"--server-trace-dir {server_dir} is not a directory here; pass the directory the "
            "server writes its traces to (same host or a shared filesystem)"
        )
    info = probe(cfg.server)
    for b, i, o in cfg.sweep():
        check_server_shape(b, i, o, info)
    return info


def check_outputs(cfg: RunConfig, traces: bool = True) -> None:
    """The trace directory (where `traces`) and the result file take new files."""
    if traces:
        check_trace_dir(Path(cfg.trace_dir))
    if cfg.result_filename:
        check_result_file(Path(cfg.result_filename))


def check_memory(
    cfg: RunConfig, model: ModelConfig, on_cpu: bool, available: int, every_shape: bool
) -> None:
    """The weights and the sweep's shapes against what the device can give, before any of it
    is allocated (on Linux an allocation too big is not refused: the process is killed)."""
    if cfg.dtype not in DTYPE_BYTES:
        return  # an unknown dtype is refused, with its fix, when the engine loads
    # oneDNN may win the lm_head on a CPU (float32, and the half types where the CPU runs
    # them), and a tied one then keeps a packed copy: counted, since it is known only at load
    packed = on_cpu
    weights = run_need(model, cfg.dtype, [(1, 1, 1)], packed)
    check_fits(weights, available, f"{model.name} in {cfg.dtype}", model_fix(cfg.dtype))
    shapes = cfg.sweep()
    for b, i, o in shapes if every_shape else [min(shapes, key=lambda s: s[0] * (s[1] + s[2]))]:
        check_fits(
            run_need(model, cfg.dtype, [(b, i, o)], packed),
            available,
            f"{model.name} in {cfg.dtype} at batch {b}, input {i}, output {o}",
            "use a smaller --batch-size or shorter lengths",
        )


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
