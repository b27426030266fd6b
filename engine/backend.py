"""The interface every inference backend implements, so the runner, bench, TUI and timeline
work unchanged on torch and MLX."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from infertop.engine.config import DeviceKind, ModelConfig
from infertop.engine.events import EngineReady

LoadProgress = Callable[[int, int], None]  # (done, total) while loading


@dataclass(frozen=True)
class MemoryStats:
    """Bytes. On a CPU `allocated` is the process RSS; `reserved`/`peak` may repeat it."""

    allocated: int
    reserved: int
    peak: int


class Engine(Protocol):
    """A loaded model on a device, able to run a static batch through prefill and decode."""

    backend: str  # "torch", "torch, compiled" or "mlx"

    @property
    def kernel(self) -> str:
        """The matmul kernel chosen at load ("" where there is no choice)."""
        ...

    @property
    def kernel_choices(self) -> tuple[str, ...]:
        """Per projection: the kernel chosen and its timings."""
        ...

    @property
    def thread_choice(self) -> str:
        """The decode step's CPU thread count chosen at load, with its timings ("": none)."""
        ...

    @property
    def decode_ops(self) -> str:
        """How a decode step runs the ops between its matmuls, and why ("": not ours to say)."""
        ...

    @property
    def warnings(self) -> tuple[str, ...]:
        """What slows it that the user can mend, each a line naming the fix: a warning once
        loaded (the live screen and `infertop bench` show it)."""
        ...

    config: ModelConfig
    dtype_name: str

    @property
    def device_kind(self) -> DeviceKind:
        """What it runs on, which picks the profiler."""

    @property
    def device_name(self) -> str: ...

    @property
    def cpu_threads(self) -> int:
        """CPU threads the engine computes with (0: not known)."""
        ...

    def memory(self) -> MemoryStats: ...

    def free_memory(self) -> int:
        """Bytes the device can still give (checked before each new shape)."""

    def reset_peak_memory(self) -> None: ...

    def prepare(self, batch_size: int, max_len: int) -> None:
        """Allocate the KV cache for batch_size sequences of up to max_len tokens."""

    def random_prompts(self, batch_size: int, input_len: int, seed: int) -> Any:
        """A (batch_size, input_len) batch of token ids, the same for the same seed."""

    def prefill(self, tokens: Any) -> Any:
        """Run the prompts from position 0; return the greedy next tokens (B, 1)."""

    def decode(self, tokens: Any, pos: int) -> Any:
        """One step for (B, 1) tokens at position pos; return the greedy next tokens."""

    def wait(self, result: Any) -> None:
        """Block until `result` and all work before it have finished on the device."""

    def logits(self, tokens: Any, pos: int, all_positions: bool = False) -> Any:
        """Raw logits (for correctness tests); same placement rules as prefill/decode."""

    def release(self) -> None:
        """Free the KV cache (after an out-of-memory run, before a smaller one)."""


class Device(Protocol):
    """A backend's device: its name and memory (engine/backends/*/device*.py)."""

    @property
    def name(self) -> str: ...

    def memory(self) -> MemoryStats: ...

    def free_bytes(self) -> int: ...

    def reset_peak(self) -> None: ...


D = TypeVar("D", bound=Device)


class OnDevice(Generic[D]):
    """The Engine methods every backend answers from its device."""

    device: D

    @property
    def kernel(self) -> str:  # no choice of matmul kernel unless the backend makes one
        return ""

    @property
    def kernel_choices(self) -> tuple[str, ...]:
        return ()

    @property
    def thread_choice(self) -> str:  # the count is the library's unless the backend times it
        return ""

    @property
    def decode_ops(self) -> str:
        return ""

    @property
    def warnings(self) -> tuple[str, ...]:
        return ()

    @property
    def device_name(self) -> str:
        return self.device.name

    def memory(self) -> MemoryStats:
        return self.device.memory()

    def free_memory(self) -> int:
        return self.device.free_bytes()

    def reset_peak_memory(self) -> None:
        self.device.reset_peak()


def ready_event(engine: Engine) -> EngineReady:
    """What the UI header shows about a loaded engine."""
    cfg = engine.config
    return EngineReady(
        model_name=cfg.name,
        param_count=cfg.param_count(),
        dtype=engine.dtype_name,
        device_name=engine.device_name,
        backend=engine.backend,
        max_positions=cfg.max_positions,
        device_kind=engine.device_kind,
        layers=cfg.num_hidden_layers,
        threads=engine.cpu_threads,
        kernel=engine.kernel,
        kernel_choices=engine.kernel_choices,
        thread_choice=engine.thread_choice,
        decode_ops=engine.decode_ops,
    )
