"""Model shapes (Hugging Face `config.json` fields, checked in one place) and RunConfig."""

from __future__ import annotations

import difflib
import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, NoReturn, get_args

from infertop.engine.backends.server.target import ServerTarget
from infertop.engine.errors import UserError
from infertop.engine.flags import flag, positive_int, seed_arg
from infertop.engine.profiling.sweep_capture import SweepCapture

SUPPORTED_MODEL_TYPES = ("llama", "qwen2", "qwen3", "mistral")
SUPPORTED_ROPE_TYPES = ("default", "llama3", "linear")
_REQUIRED = object()  # a field without a default


@dataclass(frozen=True)
class ModelConfig:
    """The fields of a Llama-family `config.json` that the engine needs."""

    model_type: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    max_position_embeddings: int
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    rope_scaling: dict[str, Any] | None = None
    tie_word_embeddings: bool = False
    attention_bias: bool = False  # q/k/v bias (Qwen2 always has it)
    qk_norm: bool = False  # per-head RMSNorm on q and k (Qwen3)
    sliding_window: int | None = None
    name: str = "model"

    @property
    def max_positions(self) -> int:
        """Longest sequence the engine will run (a sliding window caps full attention)."""
        if self.sliding_window:
            return min(self.max_position_embeddings, self.sliding_window)
        return self.max_position_embeddings

    def param_count(self) -> int:
        h, kv_dim = self.hidden_size, self.num_key_value_heads * self.head_dim
        q_dim = self.num_attention_heads * self.head_dim
        attn = h * (q_dim + 2 * kv_dim) + q_dim * h
        if self.attention_bias:
            attn += q_dim + 2 * kv_dim
        if self.qk_norm:
            attn += 2 * self.head_dim
        mlp = 3 * h * self.intermediate_size
        layer = attn + mlp + 2 * h
        embed = self.vocab_size * h
        head = 0 if self.tie_word_embeddings else self.vocab_size * h
        return embed + self.num_hidden_layers * layer + h + head

    def to_hf_dict(self) -> dict[str, Any]:
        """A `config.json` that Hugging Face and infertop both read."""
        d: dict[str, Any] = {
            "architectures": [_ARCHITECTURES[self.model_type]],
            "model_type": self.model_type,
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "head_dim": self.head_dim,
            "max_position_embeddings": self.max_position_embeddings,
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "rope_scaling": self.rope_scaling,
            "tie_word_embeddings": self.tie_word_embeddings,
            "hidden_act": "silu",
        }
        if self.model_type in ("llama", "qwen3"):
            d["attention_bias"] = self.attention_bias
        return d


_ARCHITECTURES = {
    "llama": "LlamaForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "qwen3": "Qwen3ForCausalLM",
    "mistral": "MistralForCausalLM",
}


def config_from_hf_dict(d: object, name: str, source: str) -> ModelConfig:
    """Build a ModelConfig from a parsed `config.json`, every field checked here (whole
    numbers positive, heads dividing the hidden size, an even head_dim, rope parameters
    present): a bad one is a UserError naming `source`, the field and the fix."""
    if not isinstance(d, dict):
        raise UserError(f"{source}: not a JSON object ({type(d).__name__}); fix config.json")
    f = Fields(d, source)
    model_type = d.get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise UserError(
            f"{source}: model_type {model_type!r} is not supported; "
            f"use a model of type {', '.join(SUPPORTED_MODEL_TYPES)}"
        )
    if d.get("hidden_act", "silu") not in ("silu", "swish"):
        raise UserError(f"{source}: hidden_act {d['hidden_act']!r} is not supported; use silu")
    hidden = f.whole("hidden_size")
    heads = f.whole("num_attention_heads")
    kv_heads = f.whole("num_key_value_heads", default=heads)
    if d.get("head_dim") is None and hidden % heads:
        f.fail("hidden_size", hidden, f"a multiple of num_attention_heads ({heads})")
    head_dim = f.whole("head_dim", default=hidden // heads)
    if head_dim % 2:
        f.fail("head_dim", head_dim, "even (rotary embeddings rotate pairs)")
    if heads % kv_heads:
        f.fail("num_attention_heads", heads, f"a multiple of num_key_value_heads ({kv_heads})")
    use_window = f.flag("use_sliding_window", True)
    sliding = f.whole("sliding_window", default=None) if use_window else None
    rope_theta, rope_scaling = _rope_fields(f)
    return ModelConfig(
        model_type=model_type,
        vocab_size=f.whole("vocab_size"),
        hidden_size=hidden,
        intermediate_size=f.whole("intermediate_size"),
        num_hidden_layers=f.whole("num_hidden_layers"),
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=head_dim,
        max_position_embeddings=f.whole("max_position_embeddings", default=2048),
        rms_norm_eps=f.number("rms_norm_eps", default=1e-6),
        rope_theta=rope_theta,
        rope_scaling=rope_scaling,
        tie_word_embeddings=f.flag("tie_word_embeddings", False),
        attention_bias=model_type == "qwen2" or f.flag("attention_bias", False),
        qk_norm=model_type == "qwen3",
        sliding_window=sliding,
        name=name,
    )


class Fields:
    """Typed reads of a config.json object; a bad value is one line naming the field."""

    LIMIT = 1 << 31  # no real size comes near; 1e400 (JSON for infinity) is caught here

    def __init__(self, d: dict[str, Any], source: str, prefix: str = "") -> None:
        self.d, self.source, self.prefix = d, source, prefix

    def fail(self, key: str, value: object, want: str) -> NoReturn:
        raise UserError(
            f"{self.source}: {self.prefix}{key} is {value!r}; it must be {want}; fix config.json"
        )

    def whole(self, key: str, default: int | None | object = _REQUIRED, minimum: int = 1) -> Any:
        """A whole number >= minimum (a float with no fraction counts); `default` when absent
        or null."""
        value = self.d.get(key)
        if value is None:
            if default is _REQUIRED:
                raise UserError(
                    f"{self.source}: missing field '{self.prefix}{key}'; "
                    "is this a Llama-family config?"
                )
            return default
        ok = isinstance(value, int) and not isinstance(value, bool)
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value, ok = int(value), True
        if not ok or not minimum <= value < self.LIMIT:
            self.fail(key, value, f"a whole number from {minimum} to {self.LIMIT - 1:,}")
        return value

    def number(self, key: str, default: float | object = _REQUIRED) -> Any:
        """A finite number > 0; `default` when absent or null."""
        value = self.d.get(key)
        if value is None:
            if default is _REQUIRED:
                raise UserError(
                    f"{self.source}: missing field '{self.prefix}{key}'; add it to config.json"
                )
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(key, value, "a number above 0")
        if not (math.isfinite(value) and value > 0):
            self.fail(key, value, "a finite number above 0")
        return float(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self.d.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(key, value, "true or false")
        return value


def _rope_fields(f: Fields) -> tuple[float, dict[str, Any] | None]:
    """Rope theta and scaling from either the classic or the transformers-5 layout."""
    d = f.d
    params = d.get("rope_parameters") or {}
    if not isinstance(params, dict):
        f.fail("rope_parameters", params, "an object")
    theta = f.number("rope_theta", default=None)
    if theta is None:
        theta = Fields(params, f.source, "rope_parameters.").number("rope_theta", default=1e4)
    scaling = d.get("rope_scaling") or None
    if scaling is None and params.get("rope_type", "default") != "default":
        scaling = {k: v for k, v in params.items() if k != "rope_theta"}
    if scaling is None:
        return theta, None
    if not isinstance(scaling, dict):
        f.fail("rope_scaling", scaling, "an object (or null)")
    kind = scaling.get("rope_type") or scaling.get("type") or "default"
    if kind not in SUPPORTED_ROPE_TYPES:
        raise UserError(
            f"{f.source}: rope scaling {kind!r} is not supported; "
            f"use a model with rope type {', '.join(SUPPORTED_ROPE_TYPES)}"
        )
    if kind == "default":
        return theta, None
    rope = Fields(scaling, f.source, "rope_scaling.")
    scaling = {**scaling, "rope_type": kind, "factor": rope.number("factor")}
    if kind == "llama3":
        for key in ("low_freq_factor", "high_freq_factor", "original_max_position_embeddings"):
            scaling[key] = rope.number(key)
        if scaling["high_freq_factor"] <= scaling["low_freq_factor"]:
            rope.fail("high_freq_factor", scaling["high_freq_factor"], "above low_freq_factor")
    return theta, scaling


def load_config_json(path: Path) -> object:
    """The parsed config.json; a missing, unreadable or malformed file is one line."""
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: not found; a model directory needs config.json") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory; config.json must be a file") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text; fix or re-download it") from None
    except json.JSONDecodeError as e:
        raise UserError(
            f"{path}: malformed JSON at line {e.lineno}; fix or re-download it"
        ) from None
    except OSError as e:
        raise UserError(f"{path}: {e.strerror}; check the file") from None


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice nearest to `word`, ignoring case and punctuation, if one is near enough."""

    def norm(s: str) -> str:
        return "".join(c for c in s.lower() if c.isalnum() or c == ".")

    by_norm = {norm(c): c for c in choices}
    if norm(word) in by_norm:
        return by_norm[norm(word)]
    prefixed = [c for n, c in by_norm.items() if norm(word) and n.startswith(norm(word))]
    if len(prefixed) == 1:
        return prefixed[0]
    found = difflib.get_close_matches(norm(word), list(by_norm), n=1, cutoff=0.75)
    return by_norm[found[0]] if found else None


def human_count(n: int) -> str:
    if n >= 1e9:
        return f"{n / 1e9:.2f}B"
    if n >= 1e6:
        return f"{n / 1e6:.1f}M"
    return f"{n / 1e3:.1f}K"


DEFAULT_PRESET = "smollm2-135m"  # engine/presets.py has it
DType = Literal["float32", "bfloat16", "float16"]
DeviceKind = Literal["cpu", "cuda", "npu", "metal"]  # what an engine runs on
Device = Literal["auto", "cpu", "cuda", "npu"]  # what --device picks (metal: --backend mlx)
Backend = Literal["auto", "torch", "mlx"]
DTYPES: tuple[DType, ...] = get_args(DType)
DEVICES: tuple[Device, ...] = get_args(Device)
BACKENDS: tuple[Backend, ...] = get_args(Backend)
LoadFormat = Literal["auto", "dummy"]
LOAD_FORMATS: tuple[LoadFormat, ...] = get_args(LoadFormat)


def dtype_arg(text: str) -> str:
    """--dtype: bench_one_batch's `auto` is float32 here (the dummy presets carry no dtype)."""
    return "float32" if text == "auto" else text


@dataclass(frozen=True)
class RunConfig:
    """What to run: the model, where, and the sweep of batch sizes and lengths."""

    # Each field's flag is declared on it (engine/flags.py): the live screen and
    # `infertop bench` both add them with add_cli_args.
    model: str = field(
        default=DEFAULT_PRESET,
        metadata=flag(
            "--model",
            "preset name (see `infertop presets`) or a local Hugging Face directory",
            aliases=("--model-path",),  # bench_one_batch's name
            metavar="PRESET|DIR",
        ),
    )
    load_format: LoadFormat = field(
        default="auto",
        metadata=flag(
            "--load-format",
            "dummy: seeded random weights with the model's shapes, from its config.json alone "
            "(as SGLang's); a preset always has them",
            choices=LOAD_FORMATS,
        ),
    )
    backend: Backend = field(
        default="auto",
        metadata=flag(
            "--backend", "auto: MLX where Metal is available, torch otherwise", choices=BACKENDS
        ),
    )
    device: Device = field(
        default="auto",
        metadata=flag("--device", "auto: CUDA, then NPU, then the CPU", choices=DEVICES),
    )
    dtype: DType = field(
        default="float32",
        metadata=flag(
            "--dtype",
            "weights and activations; auto (as in SGLang) is float32",
            choices=DTYPES,
            type=dtype_arg,
        ),
    )
    threads: int | None = field(
        default=None,
        metadata=flag(
            "--threads",
            "CPU threads for the engine (torch.set_num_threads; for MLX, Accelerate's "
            "VECLIB_MAXIMUM_THREADS on macOS) (default: torch on a CPU prefills on one per "
            "core, or as many as the cgroup's CPU quota allows, and decodes on the count "
            "that ran the step fastest at load; shown in the header)",
            metavar="N",
            type=positive_int,
        ),
    )
    compile: bool = field(
        default=False,
        metadata=flag(
            "--compile",
            "torch on CPU: compile the decode step ahead of time with AOTInductor (needs a "
            "C++ compiler; seconds to minutes the first time, kept in ~/.cache/infertop; "
            "batch-1 decode 10-20%% faster)",
            action="store_true",
        ),
    )
    batch_sizes: tuple[int, ...] = field(
        default=(1,),
        metadata=flag(
            "--batch-size", "batch sizes of the sweep", metavar="N", type=positive_int, nargs="+"
        ),
    )
    input_lens: tuple[int, ...] = field(
        default=(128,),
        metadata=flag("--input-len", "prompt lengths", metavar="N", type=positive_int, nargs="+"),
    )
    output_lens: tuple[int, ...] = field(
        default=(32,),
        metadata=flag(
            "--output-len",
            "tokens generated per sequence (1 prefill + output-len - 1 decode steps)",
            metavar="N",
            type=positive_int,
            nargs="+",
        ),
    )
    seed: int = field(
        default=42,
        metadata=flag(
            "--seed",
            "seed of the prompts and dummy weights, 0 to 2**63-1",
            metavar="N",
            type=seed_arg,
        ),
    )
    run_name: str = field(
        default="infertop",
        metadata=flag("--run-name", "names the results and traces", metavar="NAME"),
    )
    trace_dir: str = field(
        default="traces",
        metadata=flag(
            "--trace-dir",
            "where traces, exports and the log go (default: $INFERTOP_TRACE_DIR, else "
            "./traces; bench takes $SGLANG_TORCH_PROFILER_DIR before ./traces)",
            metavar="DIR",
            default=lambda: os.environ.get("INFERTOP_TRACE_DIR", "traces"),
        ),
    )
    result_filename: str | None = field(
        default=None,
        metadata=flag(
            "--result-filename",
            "append one JSON line per completed run to this file ('' for none)",
            metavar="FILE",
        ),
    )
    warmup: bool = field(
        default=True,
        metadata=flag("--no-warmup", "skip the untimed warmup run", action="store_false"),
    )
    profile: SweepCapture | None = None  # infertop bench --profile
    server: ServerTarget | None = None  # --server: drive it instead of loading a model

    @property
    def dummy_weights(self) -> bool:
        """--load-format dummy: a local directory's config.json alone, seeded weights."""
        return self.load_format == "dummy"

    def with_changes(self, **kw: Any) -> RunConfig:
        return replace(self, **kw)

    def sweep(self) -> list[tuple[int, int, int]]:
        """Every (batch_size, input_len, output_len) in the order bench_one_batch runs them."""
        return [
            (b, i, o) for b in self.batch_sizes for i in self.input_lens for o in self.output_lens
        ]


def validate_shape(batch_size: int, input_len: int, output_len: int, cfg: ModelConfig) -> None:
    """Raise a UserError naming the fix when a run shape cannot run on this model."""
    if batch_size < 1:
        raise UserError(f"batch size {batch_size} is invalid; use 1 or more")
    if input_len < 1:
        raise UserError(f"input length {input_len} is invalid; use 1 or more")
    if output_len < 1:
        raise UserError(f"output length {output_len} is invalid; use 1 or more")
    if input_len + output_len > cfg.max_positions:
        raise UserError(
            f"input {input_len} + output {output_len} exceeds {cfg.name}'s "
            f"{cfg.max_positions} positions; use shorter lengths"
        )


def kv_cache_bytes(cfg: ModelConfig, batch_size: int, seq_len: int, dtype_bytes: int) -> int:
    per_token = 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * cfg.head_dim
    return per_token * batch_size * seq_len * dtype_bytes
