"""How much memory a model and a run shape need, and how much the device has: checked before
anything is allocated.

On Linux a model or batch too big for RAM does not raise MemoryError: the kernel's
overcommit lets the allocation through and the OOM killer ends the process later, with no
message. So the engine estimates first and refuses with one line naming the fix.

The estimate (bench/RESULTS.md and tests/engine/test_footprint.py compare it with measured peaks):
weights (and the packed copy of a tied lm_head the oneDNN path keeps), the KV cache, and the
largest temporaries of one prefill layer plus the logits.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import psutil

from infertop.engine.config import ModelConfig, kv_cache_bytes
from infertop.engine.errors import UserError

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
SLACK = 64 << 20  # allocator and framework overhead of a load, measured at 20-50 MiB


@dataclass(frozen=True)
class Need:
    weights: int
    kv_cache: int
    activations: int

    @property
    def total(self) -> int:
        return self.weights + self.kv_cache + self.activations + SLACK


def weight_bytes(cfg: ModelConfig, dtype: str, packed_lm_head: bool = False) -> int:
    """The model's parameters; `packed_lm_head`: a tied lm_head also kept as a packed copy
    (torch on a CPU in float32 with the oneDNN kernel)."""
    size = DTYPE_BYTES[dtype]
    extra = cfg.vocab_size * cfg.hidden_size if packed_lm_head and cfg.tie_word_embeddings else 0
    return (cfg.param_count() + extra) * size


def activation_bytes(cfg: ModelConfig, batch_size: int, input_len: int, dtype: str) -> int:
    """The temporaries of one prefill layer, as the allocator holds them: hidden states and
    their norms and residual sums (6 x hidden), fused q/k/v with its rotated copies (4 x),
    the gate/up product, its activation and the product (5 x intermediate), and the last
    position's logits. Fitted on measured peaks (bench/RESULTS.md: 0.93-1.0)."""
    tokens = batch_size * input_len
    qkv = (cfg.num_attention_heads + 2 * cfg.num_key_value_heads) * cfg.head_dim
    per_token = 6 * cfg.hidden_size + 4 * qkv + 5 * cfg.intermediate_size
    logits = batch_size * cfg.vocab_size * 2
    return (tokens * per_token + logits) * DTYPE_BYTES[dtype]


def shape_need(cfg: ModelConfig, dtype: str, b: int, i: int, o: int) -> Need:
    """What one run shape adds on top of the weights."""
    kv = kv_cache_bytes(cfg, b, i + o, DTYPE_BYTES[dtype])
    return Need(0, kv, activation_bytes(cfg, b, i, dtype))


def run_need(
    cfg: ModelConfig, dtype: str, shapes: list[tuple[int, int, int]], packed: bool = False
) -> Need:
    """The weights plus the largest shape of the sweep (one shape's cache lives at a time)."""
    largest = max((shape_need(cfg, dtype, *s) for s in shapes), key=lambda n: n.total)
    return Need(weight_bytes(cfg, dtype, packed), largest.kv_cache, largest.activations)


def cpu_available_bytes() -> int:
    """What the system has available, capped by this process's address-space limit and its
    cgroup's memory limit (devices: engine/backends/*/device*.py, `free_bytes`)."""
    available = psutil.virtual_memory().available
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        available = min(available, max(soft - psutil.Process().memory_info().vms, 0))
    cgroup = _cgroup_room()
    return min(available, cgroup) if cgroup is not None else available


def _cgroup_room() -> int | None:
    """memory.max - memory.current of this process's cgroup (v2), None when unlimited."""
    try:
        line = Path("/proc/self/cgroup").read_text().splitlines()[0]
        base = Path("/sys/fs/cgroup") / line.split("::", 1)[1].lstrip("/")
        limit = (base / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(int(limit) - int((base / "memory.current").read_text()), 0)
    except (OSError, IndexError, ValueError):
        return None


def gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB"


def check_fits(need: Need, available: int, what: str, fix: str) -> None:
    """A UserError when `need` does not fit: `<what> needs ~X GB, Y GB available: <fix>`."""
    if need.total > available:
        raise UserError(f"{what} needs ~{gb(need.total)}, {gb(available)} available: {fix}")


def model_fix(dtype: str) -> str:
    if dtype == "float32":
        return "use --dtype bfloat16 or a smaller model"
    return "use a smaller model or free memory"


class Sized(Protocol):
    """What the shape check needs of an engine (engine.backend.Engine has it)."""

    @property
    def config(self) -> ModelConfig: ...
    @property
    def dtype_name(self) -> str: ...
    def free_memory(self) -> int: ...


def check_shape_fits(engine: Sized, b: int, i: int, o: int, held: int = 0) -> None:
    """A UserError when a run shape's KV cache and temporaries do not fit in what the device
    has now plus `held` (the cache the engine frees before allocating this one)."""
    dtype = engine.dtype_name if engine.dtype_name in DTYPE_BYTES else "float32"
    need = shape_need(engine.config, dtype, b, i, o)
    check_fits(
        need,
        engine.free_memory() + held,
        f"batch {b}, input {i}, output {o}",
        "use a smaller batch size or shorter lengths",
    )
