"""An ahead-of-time compiled decode step for TorchLlama (torch's AOTInductor), CPU only.

Why: at batch 1 the eager step spends 20-40% beyond its weight matmuls on ~20 small ops
per layer and their Python dispatch. AOTInductor fuses those ops into C++ kernels and runs
the whole step from C++ (bench/RESULTS.md has the figures).

The compiled step shares everything with the eager model: the package is built without
its weights, which are then handed over "user managed" (no copy), and it writes the same KV
cache in place, so prefill stays eager and both paths can take turns on one cache. Batch
size and cache length are dynamic, so one compile serves a whole sweep.

Without its weights the package depends only on the model's shapes, the kernels chosen, the
dtype, torch and the CPU's instruction set, and this code: it is kept under that key in
$INFERTOP_CACHE_DIR (default ~/.cache/infertop), so the next launch of the same shape loads
it in seconds instead of compiling again (smollm2-135m: ~80 s here).

A new package is first loaded in a child process: on one torch build (2.11.0+cu130 on an
Intel Xeon) loading any CPU package killed the process with SIGSEGV, which no `except` can
catch, and the app would have lost what it had measured. Only a package that loaded there is
kept and loaded here.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import fields
from functools import cache, partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from infertop.engine.backends.torch import model as model_module
from infertop.engine.backends.torch.model import TorchLlama, decoder_layer, final_logits
from infertop.engine.errors import UserError
from infertop.engine.layer import Layer
from infertop.engine.user_cache import cache_root

EXAMPLE_BATCH, EXAMPLE_LEN = 2, 16  # export traces these; both dims stay symbolic
# Loads the package named by argv[1]: a crash here costs a child process, not the app. It
# calls the native loader that aoti_load_package ends in: importing torch._inductor as well
# took the probe from 2.3 to 6.7 s (2-core Intel Xeon, model 207). Another torch's loader
# may take other arguments, or live elsewhere: that torch goes the long way.
LOAD_PROBE_CODE = """
import sys, torch
try:
    torch._C._aoti.AOTIModelPackageLoader(sys.argv[1], "model", False, 1, -1)
except (TypeError, AttributeError):
    torch._inductor.aoti_load_package(sys.argv[1])
"""
LOAD_PROBE = [sys.executable, "-c", LOAD_PROBE_CODE]
LAYER_FIELDS = [f.name for f in fields(Layer)]


class ExportedDecode(nn.Module):
    """One decode step over a static cache, written for export: the position is a tensor,
    new keys/values go in with index_copy_, and attention masks the positions past it
    instead of slicing the cache (a slice would depend on the position's value)."""

    def __init__(self, model: TorchLlama) -> None:
        super().__init__()
        self.model = model  # for its config and kernel; the tensors are registered below

        def param(t: torch.Tensor) -> nn.Parameter:
            return nn.Parameter(t, requires_grad=False)  # shares the tensor's storage

        self.embed = param(model.embed)
        self.norm = param(model.norm)
        self.lm_head = param(model.lm_head)
        self.layers = nn.ModuleList()
        for layer in model.layers:
            holder = nn.Module()
            for name, t in vars(layer).items():
                if t is not None:
                    holder.register_parameter(name, param(t))
            self.layers.append(holder)

    def forward(
        self,
        tokens: torch.Tensor,
        pos: torch.Tensor,
        k_cache: list[torch.Tensor],
        v_cache: list[torch.Tensor],
        cos_table: torch.Tensor,
        sin_table: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(next tokens (B, 1), logits (B, 1, V)) for tokens (B, 1) at position pos (1,)."""
        cfg, linears = self.model.cfg, self.model.graph_linears
        bsz = tokens.shape[0]
        nh, nkv, hd = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        cos, sin = cos_table.index_select(0, pos), sin_table.index_select(0, pos)
        visible = torch.arange(k_cache[0].shape[2], device=pos.device) <= pos

        def attend(
            q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kc: torch.Tensor, vc: torch.Tensor
        ) -> torch.Tensor:
            kc.index_copy_(2, pos, k.transpose(1, 2))
            vc.index_copy_(2, pos, v.transpose(1, 2))
            # (B, nkv, rep, hd) queries against (B, nkv, L, hd) keys: no head repeat
            scores = torch.matmul(q.reshape(bsz, nkv, nh // nkv, hd), kc.transpose(2, 3))
            scores = scores.mul(hd**-0.5).masked_fill(~visible, float("-inf"))
            return torch.matmul(scores.softmax(-1), vc).reshape(bsz, 1, nh * hd)

        x = F.embedding(tokens, self.embed)
        for holder, kc, vc in zip(self.layers, k_cache, v_cache, strict=True):
            # read through the module, so export sees parameters (not constants)
            layer = Layer(**{name: getattr(holder, name, None) for name in LAYER_FIELDS})
            x = decoder_layer(x, layer, cfg, linears, cos, sin, partial(attend, kc=kc, vc=vc))
        logits = final_logits(x, cfg, self.norm, self.lm_head, linears.lm_head)
        return logits.argmax(-1), logits


class CompiledDecode:
    """The AOTInductor-compiled ExportedDecode of one model, called like `model.forward` at T=1."""

    def __init__(
        self, model: TorchLlama, run: Callable[..., Any], seconds: float, cached: bool
    ) -> None:
        self.model = model
        self._run = run
        self.compile_seconds = seconds
        self.cached = cached  # loaded from the cache, not compiled

    @staticmethod
    def is_cached(model: TorchLlama) -> bool:
        return package_path(model).is_file()

    @classmethod
    def build(cls, model: TorchLlama) -> CompiledDecode:
        if model.device.type != "cpu":
            raise UserError(
                f"--compile runs on the CPU only (not {model.device.type}); drop --compile"
            )
        started = time.perf_counter()
        step = ExportedDecode(model)
        try:
            run, cached = _load_or_compile(step, model)
            params = dict(step.named_parameters())
            run.load_constants(
                {name: params[name] for name in run.get_constant_fqns()},
                check_full_update=True,
                user_managed=True,
            )
        except UserError:
            raise
        except Exception as exc:  # inductor raises many types; the cause is what matters
            text = str(exc).strip()
            cause = text.splitlines()[0][:160] if text else type(exc).__name__
            if "compiler" in f"{type(exc).__name__} {text}".lower():
                fix = "AOTInductor needs a working C++ compiler (g++ or clang++ on PATH, or $CXX)"
                msg = f"--compile failed ({cause}); {fix}: install one or drop --compile"
                raise UserError(msg) from exc
            raise UserError(f"--compile failed ({cause}); run without --compile") from exc
        return cls(model, run, time.perf_counter() - started, cached)

    def __call__(self, tokens: torch.Tensor, pos: int) -> tuple[torch.Tensor, torch.Tensor]:
        m = self.model
        at = torch.tensor([pos], device=m.device)
        tokens, logits = self._run(tokens, at, m.k_cache, m.v_cache, m.rope_cos, m.rope_sin)
        return tokens, logits


def package_path(model: TorchLlama) -> Path:
    """Where the compiled step of this model's shape and kernels is kept: keyed by all the
    package depends on (the weights' values are not in it)."""
    key = hashlib.sha256()
    for part in (
        torch.__version__,
        platform.machine(),
        torch.backends.cpu.get_cpu_capability(),
        str(model.dtype),
        repr(model.cfg),
        repr(sorted(model.kernel_names.items())),
        _code_text(),
    ):
        key.update(part.encode())
        key.update(b"\0")
    return cache_root() / "compiled-decode" / f"decode-{key.hexdigest()[:24]}.pt2"


@cache
def _code_text() -> str:
    """The code the package is compiled from (this file and the model's), read once: the
    key is asked for at the load stage and again by the build."""
    return Path(__file__).read_text() + Path(model_module.__file__).read_text()


def _load_or_compile(step: ExportedDecode, model: TorchLlama) -> tuple[Any, bool]:
    """The cached package when there is a good one (True), else a new compile, kept in the
    cache when it can be written."""
    path = package_path(model)
    if path.is_file():
        try:
            return torch._inductor.aoti_load_package(str(path)), True
        except Exception:  # a partial or foreign file: compile again over it
            path.unlink(missing_ok=True)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".part.pt2", delete=False) as f:
            part = Path(f.name)
    except OSError:  # a read-only cache: compile for this run only
        with tempfile.TemporaryDirectory(prefix="infertop-aoti-") as tmp:
            _compile(step, model, Path(tmp) / "decode.pt2")
            return load_new_package(Path(tmp) / "decode.pt2"), False
    try:
        _compile(step, model, part)
        run = load_new_package(part)
        os.replace(part, path)  # whole or not at all, also with two loads at once
    finally:
        part.unlink(missing_ok=True)
    return run, False


def load_new_package(path: Path) -> Any:
    """Load a package just compiled, once a child process has loaded it without dying."""
    probe = subprocess.run([*LOAD_PROBE, str(path)], capture_output=True, text=True)
    if probe.returncode < 0:
        name = signal.Signals(-probe.returncode).name
        raise UserError(
            f"--compile failed: loading the compiled step killed a test process ({name}) "
            f"with torch {torch.__version__} here; run without --compile (it is tested "
            "with torch 2.13)"
        )
    if probe.returncode != 0:
        lines = probe.stderr.strip().splitlines() or [f"exit status {probe.returncode}"]
        raise UserError(f"--compile failed ({lines[-1][:160]}); run without --compile")
    return torch._inductor.aoti_load_package(str(path))


def _compile(step: ExportedDecode, model: TorchLlama, package_path: Path) -> None:
    """Export with dynamic batch and cache length, compile without constants to
    `package_path`."""
    inductor_log = logging.getLogger("torch._inductor")
    level = inductor_log.level
    inductor_log.setLevel(logging.ERROR)  # its warnings would print on the user's terminal
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch-internal deprecations
            warnings.simplefilter("ignore", DeprecationWarning)
            exported = torch.export.export(
                step, example_inputs(model), dynamic_shapes=dynamic_shapes(model)
            )
            torch._inductor.aoti_compile_and_package(
                exported,
                package_path=str(package_path),
                inductor_configs={
                    "aot_inductor.package_constants_in_so": False,
                    # its parallel loops take the caller's thread count at each call: decode
                    # and prefill set their own (threads.py), and inductor would otherwise
                    # write a count other than the CPU count into the C++ code
                    "cpp.dynamic_threads": True,
                },
            )
    finally:
        inductor_log.setLevel(level)


def example_inputs(model: TorchLlama) -> tuple[Any, ...]:
    cfg = model.cfg
    kw: dict[str, Any] = {"dtype": model.dtype, "device": model.device}
    shape = (EXAMPLE_BATCH, cfg.num_key_value_heads, EXAMPLE_LEN, cfg.head_dim)
    caches = [[torch.zeros(shape, **kw) for _ in model.layers] for _ in "kv"]
    table = torch.zeros(EXAMPLE_LEN, cfg.head_dim, **kw)
    tokens = torch.zeros(EXAMPLE_BATCH, 1, dtype=torch.long, device=model.device)
    pos = torch.tensor([EXAMPLE_LEN - 1], device=model.device)
    return (tokens, pos, caches[0], caches[1], table, table.clone())


def dynamic_shapes(model: TorchLlama) -> tuple[Any, ...]:
    batch = torch.export.Dim("batch", min=1, max=1 << 16)
    length = torch.export.Dim("cache_len", min=2, max=max(model.cfg.max_positions, 2))
    cache = [{0: batch, 2: length} for _ in model.layers]
    return ({0: batch}, None, cache, list(cache), {0: length}, {0: length})
